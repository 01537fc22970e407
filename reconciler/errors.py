"""The one user-facing error family and the process exit codes it maps to.

Pure: no I/O. Every error a user can act on derives from ReconcileError; the CLI maps
`exit_code` to the process status and prints `str(error)` (never a traceback unless --debug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from reconciler.engagelab import CODE_MAYBE_NOT_FOUND


class ExitCode(IntEnum):
    """Process exit codes; documented in README.md. Never renumber one that shipped."""

    OK = 0
    ERROR = 1
    CHANGES = 2  # only with --detailed-exitcode
    STALE_PLAN = 3
    EXPIRED_PLAN = 4
    LOCKED = 5
    UNSAFE_PLAN = 6
    BLOCKED = 7  # a send-time or quota gate stopped the apply before its first call
    RETRIES_EXHAUSTED = 8
    PARTIAL_APPLY = 9
    INTERRUPTED = 130


class ReconcileError(Exception):
    """Base of every error meant for the user: the message says what is wrong and what to do."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    """Control characters from spec keys or values shown escaped: a newline in a key must not
    start a new line in CI logs, where `::error::` at a line start is a workflow command."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One spec/template problem at a source location: `file:line:col: path: what; expected`."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        tail = f"; {self.hint}" if self.hint else ""
        kind = "warning: " if self.warning else ""
        return _visible(f"{where}: {kind}{what}{tail}")

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.col, self.path, self.message)


class SpecError(ReconcileError):
    """All problems found in specs and templates, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        errors = [p for p in self.problems if not p.warning]
        lines = [str(p) for p in self.problems]
        noun = "error" if len(errors) == 1 else "errors"
        lines.append(f"{len(errors)} {noun} in specs; nothing was planned or sent.")
        super().__init__("\n".join(lines))


class StateError(ReconcileError):
    """The state file cannot be used as it is (corrupt, truncated, newer version, ...)."""


class StateLockedError(ReconcileError):
    exit_code = ExitCode.LOCKED


class StalePlanError(ReconcileError):
    exit_code = ExitCode.STALE_PLAN


class ExpiredPlanError(ReconcileError):
    exit_code = ExitCode.EXPIRED_PLAN


class UnsafePlanError(ReconcileError):
    exit_code = ExitCode.UNSAFE_PLAN


class BlockedError(ReconcileError):
    """A safety gate (send time, horizon, quota) refused the plan before any API call."""

    exit_code = ExitCode.BLOCKED


class ConfigError(ReconcileError):
    """Bad command-line or environment configuration (credentials, data center, ...)."""


class ApiError(ReconcileError):
    """An EngageLab call failed. [ours] One type for every API failure, so callers branch on
    fields, not classes: `outcome_unknown` means the request may have taken effect (look the
    resource up before trying again); `not_found` is a 404 or code 8104; `gated` means the
    caller's guard refused an attempt, which was never sent (`attempts` counts those sent).

    The message names the method and path only: never headers, credentials or the host.
    """

    def __init__(
        self,
        method: str,
        path: str,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retryable: bool = False,
        outcome_unknown: bool = False,
        not_found: bool = False,
        attempts: int = 1,
        exhausted: bool = False,
        gated: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.not_found = not_found
        self.attempts = attempts
        self.exhausted = exhausted
        self.gated = gated
        self.exit_code = ExitCode.RETRIES_EXHAUSTED if exhausted else ExitCode.ERROR
        where = f"{method} {path}"
        codes = [f"HTTP {status}"] if status is not None else []
        codes += [f"code {code}"] if code is not None else []
        text = f"{where}: {', '.join(codes)}: {message}" if codes else f"{where}: {message}"
        if exhausted:
            text += f" (gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
        elif attempts > 1:
            text += f" (after {attempts} attempts)"
        if outcome_unknown:
            text += "; the outcome is unknown: look the resource up before trying again"
        super().__init__(text)
        self.text = text
        self.message = message  # EngageLab's own message; str(self) is the full sentence

    def __str__(self) -> str:
        return self.text

    @property
    def maybe_not_found(self) -> bool:
        """HTTP 400 with code 8100: JPush v3's "schedule request is not exist", and also the code
        of every other schedule refusal. "Gone" only if the listing agrees (the caller asks)."""
        return self.status == 400 and self.code == CODE_MAYBE_NOT_FOUND

    def __repr__(self) -> str:
        return (
            f"ApiError({self.method} {self.path}, status={self.status}, code={self.code}, "
            f"retryable={self.retryable}, outcome_unknown={self.outcome_unknown}, "
            f"not_found={self.not_found}, attempts={self.attempts}, gated={self.gated})"
        )
