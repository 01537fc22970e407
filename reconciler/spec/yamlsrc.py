"""Safe YAML loading for specs and templates, and line/column recovery for diagnostics. Pure.

Fast path: libyaml composes nodes in C and a small walker turns them into plain values, refusing
aliases, duplicate keys, non-string keys, unknown tags, huge strings and deep nesting. Line and
column of an arbitrary path are recovered only on the error path, by composing the file again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024  # [ours] a spec or template file is text a person reviews
MAX_STRING_CHARS = 10_000  # [ours] any single value; a whole push body is at most 4000 bytes
MAX_DEPTH = 32  # [ours] specs nest five levels deep; more is a mistake or an attack

Path = tuple[str | int, ...]

_T = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _TIMESTAMP = _T + "str", _T + "map", _T + "seq", _T + "timestamp"
# Timestamps stay text: `backup_time: 2025-12-28 09:00:00` unquoted must mean what it says.
_SCALAR_TAGS = frozenset({_T + "int", _T + "float", _T + "bool", _T + "null"})


class YamlProblem(Exception):
    """The file cannot be loaded at all; `line`/`col` are 1-based."""

    def __init__(self, line: int, col: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line, self.col, self.message, self.hint = line, col, message, hint


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded document plus the 1-based position of each node at depth <= 2 (cheap to keep)."""

    value: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def mark(self, path: Path) -> tuple[int, int]:
        for cut in range(len(path), -1, -1):
            found = self.marks.get(path[:cut])
            if found is not None:
                return found
        return (1, 1)


def decode(data: bytes) -> str:
    """UTF-8 text without a BOM, or a YamlProblem at the first bad byte."""
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(1, 1, f"file is {len(data)} bytes", f"at most {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, col = _offset_to_line_col(data[: error.start].decode("utf-8", "replace"))
        raise YamlProblem(
            line, col, "not UTF-8 text (binary data?)", "save the file as UTF-8 text"
        ) from None
    return text.removeprefix("\ufeff")


def load(data: bytes) -> Loaded:
    """Parse one YAML document into plain dicts/lists/scalars; YamlProblem on any refusal."""
    text = decode(data)
    root = _compose(text)
    return _Walker(may_alias="&" in text or "*" in text).build(root)


class Locator:
    """Finds line/column of paths in one file; composes it (slow path) once, on first use."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._root: Node | None = None
        self._composed = False

    def _tree(self) -> Node | None:
        if not self._composed:
            self._composed = True
            try:
                self._root = _compose(decode(self._data))
            except YamlProblem:
                self._root = None
        return self._root

    def node(self, path: Sequence[str | int]) -> tuple[Node | None, tuple[int, int], bool]:
        """(node at path or None, 1-based mark of it or its deepest parent, found exactly)."""
        node = self._tree()
        if node is None:
            return None, (1, 1), False
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        for step in path:
            child: Node | None = None
            if isinstance(node, MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
            elif isinstance(node, SequenceNode) and isinstance(step, int):
                child = node.value[step] if 0 <= step < len(node.value) else None
            if child is None:
                return node, where, False
            node = child
            where = (node.start_mark.line + 1, node.start_mark.column + 1)
        return node, where, True

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based line/column of `path` (of its key when `key`), or of its deepest parent."""
        if key and path:
            parent, where, found = self.node(path[:-1])
            if found and isinstance(parent, MappingNode):
                for key_node, _ in parent.value:
                    if getattr(key_node, "value", None) == path[-1]:
                        return (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return where
        return self.node(path)[1]

    def text_start(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Where a scalar's text begins: the line after the indicator for `|` and `>` blocks."""
        node, (line, col), found = self.node(path)
        if found and isinstance(node, ScalarNode) and node.style in ("|", ">"):
            return (line + 1, 1)
        return (line, col)


class _Loader(yaml.CSafeLoader):
    """libyaml asks Python to resolve every plain scalar's tag; most are text, decided here fast."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Quoted scalars (implicit[0] false) are always text; so is plain text whose first
        # character no implicit resolver (bool, int, float, null, ...) claims.
        if kind is ScalarNode and (not implicit[0] or (value and value[0] not in _IMPLICIT_FIRST)):
            return _STR
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


# First characters that some implicit resolver (bool, int, float, null, ...) may claim.
_IMPLICIT_FIRST = frozenset(c for c in yaml.SafeLoader.yaml_implicit_resolvers if c is not None)


def _compose(text: str) -> Node | None:
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(error.problem or error.context or "invalid YAML").split())
        raise YamlProblem(line, col, f"invalid YAML: {what}", "fix the YAML syntax") from None
    except yaml.reader.ReaderError as error:
        line, col = _offset_to_line_col(text[: error.position])
        char = error.character
        shown = repr(chr(char) if isinstance(char, int) else char)
        raise YamlProblem(
            line, col, f"control character {shown} is not allowed in YAML", "remove it"
        ) from None
    except yaml.YAMLError as error:
        what = " ".join(str(error).split())[:200]
        raise YamlProblem(1, 1, f"invalid YAML: {what}", "fix the YAML syntax") from None
    finally:
        loader.dispose()


class _Walker:
    def __init__(self, *, may_alias: bool) -> None:
        self.may_alias = may_alias
        self.seen: set[int] = set()
        self.marks: dict[Path, tuple[int, int]] = {}

    def build(self, root: Node | None) -> Loaded:
        if root is None:
            return Loaded(None, {(): (1, 1)})
        value = self.walk(root, ())
        return Loaded(value, self.marks)

    def fail(self, node: Node, message: str, hint: str) -> YamlProblem:
        return YamlProblem(node.start_mark.line + 1, node.start_mark.column + 1, message, hint)

    def walk(self, node: Node, path: Path) -> Any:
        if len(path) <= 2:
            self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if self.may_alias:
            if id(node) in self.seen:
                raise self.fail(
                    node, "YAML anchors and aliases (&a, *a) are not allowed", "write it out"
                )
            self.seen.add(id(node))
        if len(path) > MAX_DEPTH:
            raise self.fail(node, "nested too deeply", f"at most {MAX_DEPTH} levels")
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, MappingNode) and node.tag == _MAP:
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR):
                    raise self.fail(key_node, "keys must be plain text", "quote the key")
                if key_node.value in out:
                    raise self.fail(
                        key_node, f"duplicate key {key_node.value!r}", "keep only one of them"
                    )
                out[key_node.value] = self.walk(value_node, (*path, key_node.value))
            return out
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        raise self.fail(node, f"YAML tag {node.tag!r} is not allowed", "use plain YAML values")

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        text: str = node.value
        if tag in (_STR, _TIMESTAMP):
            if len(text) > MAX_STRING_CHARS:
                raise self.fail(
                    node, f"value is {len(text)} characters", f"at most {MAX_STRING_CHARS}"
                )
            return text
        if tag not in _SCALAR_TAGS:
            raise self.fail(node, f"YAML tag {tag!r} is not allowed", "use plain YAML values")
        if len(text) > 64:
            raise self.fail(node, "number is too long", "at most 64 characters")
        constructor = yaml.SafeLoader.yaml_constructors[tag]
        value = constructor(_SCALAR_LOADER, node)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, f"{text!r} is not a finite number", "use an ordinary number")
        return value


_SCALAR_LOADER = yaml.SafeLoader("")  # the safe constructors for int/float/bool/null need a self


def _offset_to_line_col(prefix: str) -> tuple[int, int]:
    line = prefix.count("\n") + 1
    col = len(prefix) - (prefix.rfind("\n") + 1) + 1
    return line, col
