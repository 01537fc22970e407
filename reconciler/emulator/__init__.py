"""A local EngageLab-compatible API server for tests, benchmarks and trying the tool offline.

Public surface: Emulator, EmulatorConfig, FaultConfig, ScriptedFault, CallRecord.
"""

from reconciler.emulator.config import CallRecord, EmulatorConfig, FaultConfig, ScriptedFault
from reconciler.emulator.server import Emulator

__all__ = ["CallRecord", "Emulator", "EmulatorConfig", "FaultConfig", "ScriptedFault"]
