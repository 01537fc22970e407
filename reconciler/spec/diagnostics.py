"""Diagnostics for spec and template files: Issue records, pydantic errors in our words. Pure.

An Issue is a problem whose line and column may not be known yet (they are recovered from the
file only on the error path); pydantic's errors become `what; expected`, with the closest key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.spec.yamlsrc import Path


class Issue:
    """A problem found before its line/column is known; resolved to a Problem on the error path."""

    __slots__ = ("col", "file", "hint", "key", "line", "message", "path", "warning")

    def __init__(
        self,
        file: str,
        path: Path,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        warning: bool = False,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self.file, self.path, self.message, self.hint = file, path, message, hint
        self.key, self.warning, self.line, self.col = key, warning, line, col


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}


def kind_of(value: Any) -> str:
    """A value described for a message: `text 'abc'`, `number 5`, `a list`..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    return "a list" if isinstance(value, list) else "a mapping"


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for step in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if fields is None or step not in fields:
            return []
        annotation = fields[step].annotation
        args = getattr(annotation, "__args__", (annotation,))
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}))


def issues_from(
    error: ValidationError, file: str, base: Path, model: type[BaseModel], raw: Any
) -> list[Issue]:
    """Translate pydantic errors to `what; expected` issues at `base + loc`."""
    out: list[Issue] = []
    seen: set[tuple[Path, str]] = set()
    for item in error.errors(include_url=False):
        kind, value = item["type"], item.get("input")
        loc = _data_path(raw, item["loc"], missing=kind == "missing")
        path = base + loc
        if kind == "extra_forbidden" and loc:
            name = str(loc[-1])
            known = _known_keys(model, loc)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            issue = Issue(file, path, f"unknown key {name!r}", hint, key=True)
        elif kind == "missing" and loc:
            issue = Issue(file, base + loc[:-1], f"missing key {loc[-1]!r}", f"add {loc[-1]}: ...")
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            issue = Issue(file, path, f"{kind_of(value)} is not allowed", f"expected {expected}")
        elif kind == "value_error":
            what, _, hint = str(item["msg"]).removeprefix("Value error, ").partition("; ")
            issue = Issue(file, path, what, hint)
        elif kind in _TYPE_NAMES:
            hint = f"expected {_TYPE_NAMES[kind]}"
            if isinstance(value, bool | int | float) and kind == "string_type":
                hint += " (YAML reads yes/no/on/off and numbers as such; quote the value)"
            issue = Issue(file, path, f"got {kind_of(value)}", hint)
        else:
            issue = Issue(file, path, str(item["msg"]), "")
        if (issue.path, issue.message) not in seen:  # union members repeat the same complaint
            seen.add((issue.path, issue.message))
            out.append(issue)
    return _collapse_union_noise(out)


def _data_path(raw: Any, loc: tuple[Any, ...], *, missing: bool) -> Path:
    """The steps of a pydantic loc that exist in the data (unions add member names like `str`)."""
    path: list[str | int] = []
    current = raw
    for index, step in enumerate(loc):
        in_dict = isinstance(current, dict) and step in current
        in_list = isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current)
        if in_dict or in_list:
            current = current[step]
        elif missing and index == len(loc) - 1 and isinstance(step, str):
            pass  # the absent key a `missing` error names
        else:
            continue
        path.append(step)
    return tuple(path)


def _collapse_union_noise(issues: list[Issue]) -> list[Issue]:
    """`a: str | list[str]` given a number yields one complaint per member: keep the first."""
    out: list[Issue] = []
    paths: set[Path] = set()
    for issue in issues:
        if issue.message.startswith("got ") and issue.path in paths:
            continue
        paths.add(issue.path)
        out.append(issue)
    return out
