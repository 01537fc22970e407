"""Template files (`templates/<name>/<lang>.yaml`): lookup, compilation and per-message rendering.

Pure: works on file contents handed in. Each language file is parsed and compiled once; problems
point at the template file and line, and name the schedule that needed the copy.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.spec.diagnostics import Issue
from reconciler.spec.model import Message, parse_template
from reconciler.spec.sandbox import Compiled, Renderer, TemplateTextError
from reconciler.spec.yamlsrc import Locator, YamlProblem, load

TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")  # [ours] no dots, no slashes
# Copy fields a template may set, by path in the file; the key in `copy` is the dotted path.
FIELDS: tuple[tuple[str, ...], ...] = (
    ("title",),
    ("alert",),
    ("android", "title"),
    ("android", "alert"),
    ("ios", "title"),
    ("ios", "subtitle"),
    ("ios", "alert"),
    ("hmos", "title"),
    ("hmos", "alert"),
)


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    path: tuple[str, ...]
    compiled: Compiled


@dataclass(frozen=True, slots=True)
class _LanguageFile:
    rel: str
    fields: tuple[_Field, ...]


class TemplateBook:
    """All template language files of a project, loaded on first use."""

    def __init__(self, files: Mapping[str, bytes], issues: list[Issue]) -> None:
        self._files = files
        self._issues = issues
        self._renderer = Renderer()
        self._cache: dict[str, _LanguageFile | None] = {}
        self._locators: dict[str, Locator] = {}
        self._reported: set[tuple[str, ...]] = set()
        self._names = sorted({rel.split("/")[1] for rel in files})

    def first_time(self, *key: str) -> bool:
        """True once per key: a template's problem is reported once, not once per message."""
        if key in self._reported:
            return False
        self._reported.add(key)
        return True

    def used_files(self) -> dict[str, bytes]:
        return {rel: self._files[rel] for rel in self._cache if rel in self._files}

    def render(self, message: Message, languages: list[str]) -> dict[str, dict[str, str]] | None:
        """language -> copy key -> rendered text, or None after recording the issues."""
        name = str(message.fields["template"])
        where = message.where("template")
        if not TEMPLATE_NAME_RE.match(name):
            self._issues.append(
                Issue(
                    message.file,
                    where,
                    f"template name {name[:80]!r} is not allowed",
                    "lower-case letters, digits, _ and -; it names a folder in templates/",
                )
            )
            return None
        if name not in self._names:
            close = difflib.get_close_matches(name, self._names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self._issues.append(
                Issue(
                    message.file,
                    where,
                    f"no template named {name!r}",
                    f"{hint}create templates/{name}/<lang>.yaml",
                )
            )
            return None
        values = message.fields.get("vars") or {}
        out: dict[str, dict[str, str]] = {}
        ok = True
        for lang in languages:
            rel = f"templates/{name}/{lang}.yaml"
            language_file = self._language_file(rel)
            if language_file is None:
                if rel not in self._files:
                    self._issues.append(
                        Issue(
                            message.file,
                            where,
                            f"template {name!r} has no {lang!r} copy",
                            f"create {rel}, or remove {lang} from languages",
                        )
                    )
                ok = False
                continue
            copy = self._render_file(language_file, message, values)
            if copy is None:
                ok = False
            else:
                out[lang] = copy
        return out if ok else None

    def _language_file(self, rel: str) -> _LanguageFile | None:
        if rel in self._cache:
            return self._cache[rel]
        self._cache[rel] = None
        data = self._files.get(rel)
        if data is None:
            return None
        try:
            loaded = load(data)
        except YamlProblem as problem:
            self._issues.append(
                Issue(rel, (), problem.message, problem.hint, line=problem.line, col=problem.col)
            )
            return None
        raw = parse_template(rel, loaded.value, self._issues)
        if raw is None:
            return None
        fields: list[_Field] = []
        ok = True
        for path in FIELDS:
            text = raw.get(path[0]) if len(path) == 1 else (raw.get(path[0]) or {}).get(path[1])
            if text is None:
                continue
            try:
                fields.append(_Field(".".join(path), path, self._renderer.compile(text)))
            except TemplateTextError as error:
                self._issue(rel, path, error.lineno, error.message, error.hint)
                ok = False
        self._cache[rel] = language_file = _LanguageFile(rel, tuple(fields)) if ok else None
        return language_file

    def _render_file(
        self, language_file: _LanguageFile, message: Message, values: Mapping[str, Any]
    ) -> dict[str, str] | None:
        copy: dict[str, str] = {}
        ok = True
        user = f"schedule {message.name} ({message.file})"
        for item in language_file.fields:
            needed = item.compiled.variables
            missing = (
                [] if needed.keys() <= values.keys() else [v for v in needed if v not in values]
            )
            for var in missing:
                key = (language_file.rel, item.key, var)
                if key not in self._reported:
                    self._reported.add(key)
                    self._issue(
                        language_file.rel,
                        item.path,
                        item.compiled.variables[var],
                        f"undefined variable {var!r}",
                        f"set vars.{var} for {user}, or remove it from the template",
                    )
                ok = False
            if missing:
                continue
            try:
                text = item.compiled.render(values)
            except TemplateTextError as error:
                self._issue(
                    language_file.rel,
                    item.path,
                    error.lineno,
                    f"{error.message} (rendering {user})",
                    error.hint,
                )
                ok = False
                continue
            if text:
                copy[item.key] = text
            elif item.key == "alert":
                self._issue(
                    language_file.rel,
                    item.path,
                    1,
                    f"alert is empty for {user}",
                    "every language needs alert text",
                )
                ok = False
        return copy if ok else None

    def _issue(self, rel: str, path: tuple[str, ...], lineno: int, message: str, hint: str) -> None:
        locator = self._locators.setdefault(rel, Locator(self._files[rel]))
        line, col = locator.text_start(path)
        if lineno > 1:
            line, col = line + lineno - 1, 1
        self._issues.append(Issue(rel, path, message, hint, line=line, col=col))
