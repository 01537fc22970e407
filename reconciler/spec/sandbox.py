"""Jinja2 rendering of template copy, in a locked-down sandbox. Pure (no I/O); the only jinja2 user.

Templates arrive by pull request, so they are hostile until proven otherwise: the immutable sandbox
blocks Python internals, StrictUndefined turns a missing variable into an error, and an allowlist of
syntax and filters rules out loops, calls and output-amplifying operations (a push alert is short).
Only text reaches the copy: every `{{ }}` must yield a string, a number or a boolean, and no
attribute read may yield a function, class or module (calls are refused, so it could only be
printed: a memory address that changes on every run).
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_OUTPUT_CHARS = 4000  # [ours] the whole push body is at most 4000 bytes
# No {% set %}/{% with %}: with `~` they could double a string once per line.

_ALLOWED_NODES_TEXT = """
    Template Output TemplateData Const Name Getattr Getitem Slice Filter Test CondExpr If
    Compare Operand And Or Not Neg Pos Concat Add Sub Mul Div FloorDiv Mod Pow Tuple List Dict
    Pair Keyword FilterBlock ScopedEvalContextModifier
"""
_ALLOWED_NODES = frozenset(_ALLOWED_NODES_TEXT.split())
_ALLOWED_FILTERS_TEXT = """
    abs capitalize count d default e escape first float int join last length list lower max
    min round string striptags sum title trim truncate upper wordcount
"""
_ALLOWED_FILTERS = frozenset(_ALLOWED_FILTERS_TEXT.split())


# C0 controls but tab and newline, DEL and C1, and the bidi embeddings, overrides and isolates
# that can make copy read differently from what a reviewer sees (LRM/RLM marks stay allowed:
# right-to-left copy needs them and they cannot reorder text).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_copy(text: str) -> str:
    """`text` unchanged, or TemplateTextError naming its first control character."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise TemplateTextError(
            f"copy contains the control character U+{ord(bad.group()):04X}",
            "remove it: it can hide or reorder text on devices and in review",
        )
    return text


class TemplateTextError(Exception):
    """A template that cannot be compiled or rendered; `lineno` is 1-based inside the text."""

    def __init__(self, message: str, hint: str, lineno: int = 1) -> None:
        super().__init__(message)
        self.message, self.hint, self.lineno = message, hint, lineno


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and (not isinstance(right, int) or abs(right) > 64 or _big(left)):
            raise SecurityError("exponent too large")
        if op == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed")
        result = _BINOPS[op](left, right)
        if isinstance(result, str | list | tuple) and len(result) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"result longer than {MAX_OUTPUT_CHARS} characters")
        return result


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": lambda a, b: _safe_mul(a, b),
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}


def _big(value: Any) -> bool:
    return isinstance(value, int | float) and abs(value) > 10**12


def _safe_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
        if sized and len(seq) * count > MAX_OUTPUT_CHARS:
            raise SecurityError(f"result longer than {MAX_OUTPUT_CHARS} characters")
    return left * right


def _capped(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, refusing any result longer than the copy limit.

    Filters are a way round the operator checks (`join` multiplies a string's length by its
    separator's), so every intermediate value is held to the same bound as the output.
    """

    @functools.wraps(fn)  # keeps Jinja's pass_context/pass_environment markers
    def capped(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, str | list | tuple) and len(result) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"{name} gives more than {MAX_OUTPUT_CHARS} characters")
        return result

    return capped


_TEXT_FILTER = "__reconcile_text__"  # wraps every {{ }} output; not nameable by a template
_DATA_FILTER = "__reconcile_data__"  # wraps every attribute and item read; not nameable either


def _text_only(value: Any, lineno: int) -> Any:
    """`value` if it prints as text (str, int, float, bool), else TemplateTextError at `lineno`.

    None prints "None", a list or mapping prints Python syntax, any other object its repr: none
    of that is copy. An Undefined is passed on, for Jinja's own strict-undefined policy.
    """
    if isinstance(value, str | int | float | Undefined):
        return value
    kind, hint = _non_text(value)
    raise TemplateTextError(f"this expression yields {kind}, not text", hint, lineno)


def _data_only(value: Any, lineno: int) -> Any:
    """`value` if it is data (what YAML vars hold), else TemplateTextError at `lineno`.

    Filters such as `string`, `upper` or `join`, and `~`, print whatever they get, so a method
    read as `x.upper` is refused where it is read, not only where it is output.
    """
    if value is None or isinstance(value, str | int | float | list | tuple | dict | Undefined):
        return value
    kind, hint = _non_text(value)
    raise TemplateTextError(f"this expression yields {kind}, not text", hint, lineno)


def _non_text(value: Any) -> tuple[str, str]:
    if value is None:
        return "null", "give it a value in vars, or use | default('...', true)"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list", "make text of it with | join(', '), or pick one item with | first"
    if isinstance(value, Mapping):
        return "a mapping", "pick one of its values, e.g. {{ name.key }}"
    if inspect.isclass(value):
        kind = "a class"
    elif inspect.ismodule(value):
        kind = "a module"
    elif callable(value):
        kind = "a function or method"
    else:
        kind = f"a {type(value).__name__} object"
    return kind, "calls are not allowed in push copy: use a variable, or a filter such as | upper"


def _environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters = {k: _capped(k, v) for k, v in env.filters.items() if k in _ALLOWED_FILTERS}
    env.filters[_TEXT_FILTER] = _text_only
    env.filters[_DATA_FILTER] = _data_only
    env.tests = dict(env.tests)
    env.globals = {}
    return env


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled template text; `variables` maps each free variable to its first line."""

    render_fn: Callable[[Mapping[str, Any]], str] | None
    static: str
    variables: Mapping[str, int]

    def render(self, values: Mapping[str, Any]) -> str:
        """The rendered text, stripped of surrounding whitespace; TemplateTextError otherwise."""
        if self.render_fn is None:
            return self.static  # checked when compiled
        try:
            text = self.render_fn(values)
        except UndefinedError as error:
            raise TemplateTextError(str(error.message), "pass it in vars") from None
        except SecurityError as error:
            raise TemplateTextError(
                f"refused by the sandbox: {error}", "keep copy simple"
            ) from None
        except (TemplateError, ArithmeticError, TypeError, ValueError, RecursionError) as error:
            raise TemplateTextError(f"cannot render: {error}", "fix the template") from None
        if len(text) > MAX_OUTPUT_CHARS:
            raise TemplateTextError(
                f"renders to {len(text)} characters", f"at most {MAX_OUTPUT_CHARS}"
            )
        return check_copy(text.strip())


class Renderer:
    """Compiles each distinct template text once and caches it."""

    def __init__(self) -> None:
        self._env = _environment()
        self._cache: dict[str, Compiled] = {}

    def compile(self, text: str) -> Compiled:
        found = self._cache.get(text)
        if found is None:
            found = self._cache[text] = self._compile(text)
        return found

    def _compile(self, text: str) -> Compiled:
        if "{" not in text:  # no Jinja syntax at all: skip the engine entirely
            return Compiled(None, check_copy(text.strip()), {})
        try:
            tree = self._env.parse(text)
        except TemplateSyntaxError as error:
            raise TemplateTextError(
                f"template syntax error: {error.message}", "fix the Jinja2 syntax", error.lineno
            ) from None
        except RecursionError:
            raise TemplateTextError(
                "template nests too deeply to compile", "write simpler expressions"
            ) from None
        variables: dict[str, int] = {}
        for node in tree.find_all(nodes.Node):
            name = type(node).__name__
            if name not in _ALLOWED_NODES:
                raise TemplateTextError(
                    f"{_describe(node)} is not allowed in push copy",
                    "use {{ variables }}, filters and {% if %} only",
                    node.lineno,
                )
            if isinstance(node, nodes.Filter):
                filter_name = str(node.name)
                if filter_name not in _ALLOWED_FILTERS:
                    raise TemplateTextError(
                        f"filter {filter_name!r} is not allowed",
                        f"use one of {', '.join(sorted(_ALLOWED_FILTERS))}",
                        node.lineno,
                    )
            if isinstance(node, nodes.Name) and node.name == "self":
                raise TemplateTextError(
                    "'self' is a reserved name in Jinja2 templates",
                    "give the variable another name",
                    node.lineno,
                )
            if isinstance(node, nodes.Name) and node.ctx == "load":
                variables.setdefault(node.name, node.lineno)
        simple = _simple_parts(tree)
        if simple is not None:
            return Compiled(_join_parts(simple), "", variables)
        tree = _Guard().visit(tree)
        try:
            template = self._env.from_string(tree)
        except TemplateError as error:
            raise TemplateTextError(f"template error: {error}", "fix the template") from None
        except RecursionError:
            raise TemplateTextError(
                "template nests too deeply to compile", "write simpler expressions"
            ) from None

        def render(values: Mapping[str, Any]) -> str:
            # Template.render minus its dict copy and traceback rewriting (errors are caught).
            plain = values if isinstance(values, dict) else dict(values)
            return "".join(template.root_render_func(template.new_context(plain, shared=True)))

        return Compiled(_memoized(render, tuple(variables)), "", variables)


def _guarded(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [nodes.Const(node.lineno)], [], None, None, lineno=node.lineno)


class _Guard(NodeTransformer):
    """Every attribute/item read through `_data_only`, every `{{ }}` value through `_text_only`.

    Run after the allowlist check, so a template can never name these filters itself.
    """

    def visit_Getattr(self, node: nodes.Getattr) -> nodes.Node:
        inner = self.generic_visit(node)
        assert isinstance(inner, nodes.Expr)
        return _guarded(inner, _DATA_FILTER)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        inner = self.generic_visit(node)
        assert isinstance(inner, nodes.Expr)
        return _guarded(inner, _DATA_FILTER)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        output = self.generic_visit(node)
        assert isinstance(output, nodes.Output)
        output.nodes = [
            child if isinstance(child, nodes.TemplateData) else _guarded(child, _TEXT_FILTER)
            for child in output.nodes
        ]
        return output


def _simple_parts(tree: nodes.Template) -> tuple[tuple[bool, str, int], ...] | None:
    """Text and bare `{{ name }}` only: (is_variable, text, line) parts, rendered without Jinja.

    Jinja would output str(value) for each name (autoescape off, text values only), so joining
    the parts gives the same text at a tenth of the cost; anything richer goes through Jinja.
    """
    parts: list[tuple[bool, str, int]] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append((False, node.data, node.lineno))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                parts.append((True, node.name, node.lineno))
            else:
                return None
    return tuple(parts)


def _join_parts(parts: tuple[tuple[bool, str, int], ...]) -> Callable[[Mapping[str, Any]], str]:
    # str.format with an empty spec gives format(v, "") == str(v) for str, int, float and bool.
    pattern = "".join(
        "{}" if is_var else text.replace("{", "{{").replace("}", "}}") for is_var, text, _ in parts
    )
    names = [(text, line) for is_var, text, line in parts if is_var]

    def render(values: Mapping[str, Any]) -> str:
        return pattern.format(*[_text_only(values[name], line) for name, line in names])

    return render


def _memoized(
    render: Callable[..., str], names: tuple[str, ...]
) -> Callable[[Mapping[str, Any]], str]:
    """Series and shared vars repeat: cache by the values of the variables the text uses."""
    cache: dict[tuple[Any, ...], str] = {}

    def cached(values: Mapping[str, Any]) -> str:
        key = tuple((type(values[n]), values[n]) for n in names if n in values)
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable values (lists, mappings): render every time
            return render(values)
        text = cache[key] = render(values)
        return text

    return cached


def _describe(node: nodes.Node) -> str:
    words = {
        "For": "a {% for %} loop",
        "Macro": "a {% macro %}",
        "Call": "a function or method call",
        "Include": "{% include %}",
        "Extends": "{% extends %}",
        "Import": "{% import %}",
        "FromImport": "{% from ... import %}",
        "CallBlock": "a {% call %} block",
    }
    return words.get(type(node).__name__, f"Jinja2 {type(node).__name__}")
