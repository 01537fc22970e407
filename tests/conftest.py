"""Shared pytest configuration: golden-file checking with `--update-goldens`, shared fixtures."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Imported here, at a shallow stack depth, on purpose: CPython 3.11.7 fails with "AST constructor
# recursion depth mismatch" when pytest's assertion rewriter first compiles hypothesis from deep
# inside its terminal-summary hook.
from hypothesis import settings

# Property tests are derandomized so CI runs are repeatable; no deadline on a loaded 2-core box.
settings.register_profile("reconcile", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("reconcile")

pytest_plugins = ["tests.support.emulator", "tests.support.postgres"]

Golden = Callable[[Path, str], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """`golden(path, actual)`: compare with the file, or rewrite it with --update-goldens."""
    update = bool(request.config.getoption("--update-goldens"))

    def check(path: Path, actual: str) -> None:
        if update or not path.exists():
            if not update:
                pytest.fail(f"golden file {path} is missing; run pytest --update-goldens")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"{path} differs; if intended, run pytest --update-goldens"

    return check


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the same on a laptop and under CI: `CI=true` (which changes what `apply`
    accepts) is set only by the tests that are about it."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture(autouse=True)
def _unfreeze_gc() -> Iterator[None]:
    """`plan` and `apply` call gc.freeze() for speed; run in-process by a test, that must not
    leak into the next one (older hypothesis releases warn when the collector cannot see their
    objects, and `filterwarnings = error` makes that a failure)."""
    yield
    gc.unfreeze()
