"""Unit tests for reconciler.spec.sandbox: the sandbox, strict variables, and the fast path."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.spec.sandbox import MAX_OUTPUT_CHARS, Renderer, TemplateTextError


def render(text: str, **values: object) -> str:
    return Renderer().compile(text).render(values)


def refused(text: str, **values: object) -> TemplateTextError:
    with pytest.raises(TemplateTextError) as caught:
        render(text, **values)
    return caught.value


def test_variables_filters_and_conditions() -> None:
    assert render("-{{ d }}% on {{ p | upper }}", d=30, p="shoes") == "-30% on SHOES"
    text = "{% if n > 1 %}{{ n }} items{% else %}one item{% endif %}"
    assert render(text, n=3) == "3 items" and render(text, n=1) == "one item"
    assert render("{{ name | default('friend') }}", name="Ana") == "Ana"
    assert render("  padded\n") == "padded"


def test_no_autoescape_for_plain_text() -> None:
    assert render("{{ a }} & <b>", a="Tom & Jerry") == "Tom & Jerry & <b>"


def test_variables_are_listed_with_their_line() -> None:
    compiled = Renderer().compile("Hi {{ a }}\n{% if b %}{{ c.d }}{% endif %}")
    assert dict(compiled.variables) == {"a": 1, "b": 2, "c": 2}


def test_undefined_is_an_error_even_inside_expressions() -> None:
    error = refused("{{ user.name }}", user={})
    assert "has no attribute 'name'" in error.message or "undefined" in error.message


def test_syntax_error_carries_the_line() -> None:
    error = refused("line one\n{{ oops ")
    assert error.lineno == 2 and "syntax error" in error.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "call"),
        ("{{ x.__class__ }}", "sandbox"),
        ("{{ x.__globals__ }}", "no attribute"),
        ("{% for i in range(10) %}{{ i }}{% endfor %}", "loop"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macro"),
        ("{% include 'x' %}", "include"),
        ("{% extends 'x' %}", "extends"),
        ("{% import 'x' as y %}", "import"),
        ("{% set s = x %}{{ s }}", "Assign"),
        ("{{ lipsum() }}", "call"),
        ("{{ 'a' * 100000000 }}", "longer than"),
        ("{{ x * 100000 }}", "longer than"),
        ("{{ 2 ** 100000 }}", "exponent"),
        ("{{ '%999999999d' % 1 }}", "formatting"),
        ("{{ x | center(100000000) }}", "filter 'center'"),
        ("{{ x | format(1) }}", "filter 'format'"),
        ("{{ x | attr('__class__') }}", "filter 'attr'"),
    ],
)
def test_hostile_templates_are_refused_fast(text: str, words: str) -> None:
    started = time.perf_counter()
    error = refused(text, x="abc")
    assert words in error.message
    assert time.perf_counter() - started < 1.0


def test_output_is_capped() -> None:
    error = refused("{{ a ~ a ~ a }}", a="x" * 2000)
    assert str(MAX_OUTPUT_CHARS) in error.hint or str(MAX_OUTPUT_CHARS) in error.message


def test_each_distinct_text_is_compiled_once() -> None:
    renderer = Renderer()
    first = renderer.compile("Hi {{ a | upper }}")
    assert renderer.compile("Hi {{ a | upper }}") is first
    assert first.render({"a": "x"}) == "Hi X" and first.render({"a": "y"}) == "Hi Y"


_names = st.sampled_from(["a", "b", "n"])
# Control and format characters are refused in copy (tested above), so leave them out here.
_printable = st.characters(blacklist_characters="{}%#", blacklist_categories=("Cc", "Cf", "Cs"))
_text = st.text(alphabet=_printable, max_size=20)
_values = st.one_of(
    st.integers(),
    st.text(alphabet=_printable, max_size=10),
    st.floats(allow_nan=False),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.one_of(_text, _names.map(lambda n: "{{ " + n + " }}")), max_size=6),
    values=st.fixed_dictionaries({"a": _values, "b": _values, "n": _values}),
)
def test_fast_path_renders_exactly_like_jinja(parts: list[str], values: dict[str, object]) -> None:
    text = "".join(parts)
    fast = Renderer().compile(text).render(values)
    # A no-op filter forces the same text through Jinja itself.
    slow = Renderer().compile(text + "{{ '' | lower }}").render(values)
    assert fast == slow


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # join multiplies lengths: the first oversized intermediate is refused, not built
        ("{{ (('x'*4000)|join('y'*4000))|join('z'*4000) }}", "join gives more than"),
        ("{{ (('a'*4000)|join(' '*4000))|wordcount }}", "join gives more than"),
        ("{{ ('ab'*2000)|list|join('--') }}", "join gives more than"),
        ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nests too deeply"),
        ('{{ "\\x1b]0;owned\\x07" }}', r"control character U\+001B"),
        ("{{ '\\u202e' }}evil", r"control character U\+202E"),
    ],
)
def test_amplification_recursion_and_control_characters_are_refused(text: str, words: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateTextError, match=words):
        Renderer().compile(text).render({})
    assert time.perf_counter() - started < 2  # refused before any large allocation


def test_plain_copy_with_a_control_character_is_refused_too() -> None:
    with pytest.raises(TemplateTextError, match=r"U\+0007"):
        Renderer().compile("ring\x07").render({})
    assert Renderer().compile("two\nlines").render({}) == "two\nlines"


@pytest.mark.parametrize(
    ("text", "values", "kind"),
    [
        ("{{ ''.join }}", {}, "a function or method"),
        ("{{ x.upper }}", {"x": "abc"}, "a function or method"),
        ("{{ d.items }}", {"d": {"a": 1}}, "a function or method"),
        ("{{ ''.join | upper }}", {}, "a function or method"),  # filters print what they get
        ("{{ 'a' ~ x.lower }}", {"x": "abc"}, "a function or method"),
        ("{{ [x.lower] | join }}", {"x": "abc"}, "a function or method"),
        ("{{ x['upper'] | string }}", {"x": "abc"}, "a function or method"),
        ("{{ x | list }}", {"x": "ab"}, "a list"),
        ("{{ (1, 2) }}", {}, "a list"),
        ("Hi {{ x }}", {"x": [1, 2]}, "a list"),  # the fast path, too
        ("Hi {{ x }}", {"x": {"a": 1}}, "a mapping"),
        ("Hi {{ x }}", {"x": None}, "null"),
        ("{{ x | first }}", {"x": [None]}, "null"),
    ],
)
def test_only_text_reaches_the_copy(text: str, values: dict[str, object], kind: str) -> None:
    error = refused(text, **values)
    assert error.message.startswith(f"this expression yields {kind}")
    assert error.message.endswith(", not text")
    assert "0x" not in error.message


def test_a_non_text_expression_is_reported_at_its_line() -> None:
    assert refused("Hello\n\n{{ x }} and {{ x.lower }}", x="a").lineno == 3
    assert refused("one\n{{ x }}", x=[1]).lineno == 2


def test_scalars_are_text() -> None:
    values = {"s": "a", "i": 3, "f": 1.5, "b": True}
    assert render("{{ s }} {{ i }} {{ f }} {{ b }}", **values) == "a 3 1.5 True"
    assert render("{{ s | upper }} {{ i + 1 }} {{ l | join('-') }}", l=[1, 2], **values) == (
        "A 4 1-2"
    )


def test_self_is_reserved() -> None:
    error = refused("Hi {{ self | upper }}", self="x")  # Jinja's own object, not the variable
    assert "reserved" in error.message
    assert "reserved" in refused("Hi {{ self }}", self="x").message  # the fast path alike
