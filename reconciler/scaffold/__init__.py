"""The files `reconcile init` writes (package data under files/), rendered for one day. Pure.

Names starting with `dot-` become dotfiles (`dot-github/` -> `.github/`): package data tools skip
real dotfiles. `@@TODAY@@`, `@@DATE_<n>@@` (today + n days), `@@VERSION@@` and `@@INSTALL@@` (what
CI installs: see `pinned_install`) are filled in, so the example campaign never expires and the CI
workflows install this very version, from a source nobody else can change under them.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable

from reconciler import DIST_NAME, __version__
from reconciler.errors import ConfigError

_TOKEN = re.compile(r"@@([A-Z]+)(?:_([0-9]+))?@@")
DEFAULT_INSTALL = f"{DIST_NAME}=={__version__}"
_NAME = re.escape(DIST_NAME)
# What a CI job that holds the EngageLab secrets may install: our own distribution, pinned so that
# nobody can change what it gets: an exact release, a git commit, or an archive with its hash.
_PINNED = (
    re.compile(rf"{_NAME}==[0-9][0-9A-Za-z.+!-]*"),
    re.compile(rf"{_NAME} @ git\+https://[^\s@#]+@[0-9a-f]{{40}}"),
    re.compile(rf"{_NAME} @ https://[^\s#]+#sha256=[0-9a-f]{{64}}"),
)


def pinned_install(spec: str) -> str:
    """`spec` if it names our distribution at one fixed version; else a ConfigError with the fix."""
    if any(p.fullmatch(spec) for p in _PINNED):
        return spec
    raise ConfigError(
        f"--install {spec!r} is not pinned: the CI jobs run it with the EngageLab secrets, so it "
        f"must be one of `{DIST_NAME}==X.Y.Z`, `{DIST_NAME} @ git+https://HOST/ORG/REPO@<40-hex "
        f"commit>` or `{DIST_NAME} @ https://.../FILE.whl#sha256=<64-hex hash>` (a branch or a "
        "tag can be moved, and another name may be somebody else's package)"
    )


def scaffold(today: date, install: str = DEFAULT_INSTALL) -> dict[str, str]:
    """Relative POSIX path -> text, for every file of a new campaign repository."""
    pinned_install(install)
    out: dict[str, str] = {}
    for rel, text in _walk(files("reconciler.scaffold") / "files", ""):
        out[target_path(rel)] = render(text, today, install)
    return dict(sorted(out.items()))


def target_path(rel: str) -> str:
    return "/".join("." + p[4:] if p.startswith("dot-") else p for p in rel.split("/"))


def render(text: str, today: date, install: str = DEFAULT_INSTALL) -> str:
    def one(match: re.Match[str]) -> str:
        name, days = match.group(1), match.group(2)
        if name == "DATE" and days is not None:
            return (today + timedelta(days=int(days))).isoformat()
        if name == "TODAY" and days is None:
            return today.isoformat()
        if name == "VERSION" and days is None:
            return __version__
        if name == "INSTALL" and days is None:
            return install
        raise ValueError(f"unknown scaffold placeholder {match.group(0)}")

    return _TOKEN.sub(one, text)


def _walk(node: Traversable, prefix: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                found.extend(_walk(child, rel + "/"))
        else:
            found.append((rel, child.read_text(encoding="utf-8")))
    return found
