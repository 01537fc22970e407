"""A local EngageLab-compatible API server for tests, benchmarks and trying the tool offline.

Public surface: Emulator, EmulatorConfig, FaultConfig, ScriptedFault, CallRecord, ANSWER_VARIANTS,
parse_answers.
"""

from reconciler.emulator.config import (
    ANSWER_VARIANTS,
    CallRecord,
    EmulatorConfig,
    FaultConfig,
    ScriptedFault,
    parse_answers,
)
from reconciler.emulator.server import Emulator

__all__ = [
    "ANSWER_VARIANTS",
    "CallRecord",
    "Emulator",
    "EmulatorConfig",
    "FaultConfig",
    "ScriptedFault",
    "parse_answers",
]
