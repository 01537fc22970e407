"""The files `reconcile init` writes (package data under files/), rendered for one day. Pure.

Names starting with `dot-` become dotfiles (`dot-github/` -> `.github/`): package data tools skip
real dotfiles. `@@TODAY@@`, `@@DATE_<n>@@` (today + n days) and `@@VERSION@@` are filled in, so
the example campaign never expires and the CI workflows install this very version.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable

from reconciler import __version__

_TOKEN = re.compile(r"@@([A-Z]+)(?:_([0-9]+))?@@")


def scaffold(today: date) -> dict[str, str]:
    """Relative POSIX path -> text, for every file of a new campaign repository."""
    out: dict[str, str] = {}
    for rel, text in _walk(files("reconciler.scaffold") / "files", ""):
        out[target_path(rel)] = render(text, today)
    return dict(sorted(out.items()))


def target_path(rel: str) -> str:
    return "/".join("." + p[4:] if p.startswith("dot-") else p for p in rel.split("/"))


def render(text: str, today: date) -> str:
    def one(match: re.Match[str]) -> str:
        name, days = match.group(1), match.group(2)
        if name == "DATE" and days is not None:
            return (today + timedelta(days=int(days))).isoformat()
        if name == "TODAY" and days is None:
            return today.isoformat()
        if name == "VERSION" and days is None:
            return __version__
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
