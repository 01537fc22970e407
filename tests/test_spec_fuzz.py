"""Property test: random and mutated spec and template files yield SpecError, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import SpecError
from reconciler.settings import Settings
from reconciler.spec.loader import Sources, build_desired

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 11, 20, 12, tzinfo=UTC)
SPEC = "specs/promo_year_end_2025.yaml"
SPEC_BYTES = (ROOT / SPEC).read_bytes()
TEMPLATES = {
    p.relative_to(ROOT).as_posix(): p.read_bytes()
    for p in sorted((ROOT / "templates").glob("flash_sale*/*.yaml"))
}
TOKENS = [
    b": ",
    b"- ",
    b"\n",
    b"  ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"!!python/name:os.system",
    b"!!binary ",
    b"'",
    b'"',
    b"|",
    b">",
    b"#",
    b"~",
    b"null",
    b"yes",
    b"no",
    b"1e400",
    b"0x1F",
    b"2025-12-28 09:00:00",
    b"now",
    b"{{ x }}",
    b"{% for %}",
    b"{{ ''.__class__ }}",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\t",
    b"name",
    b"plan",
    b"messages",
    b"trigger",
    b"series",
    b"vars",
    b"\xe5\xb9\xb4",
    b"languages",
    b"audience",
    b"template",
    b"x" * 300,
    b"9" * 70,
    b"---\n",
    b"<<: ",
]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "dup_line"]))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "replace":
            data[at : at + 1] = draw(st.sampled_from(TOKENS))
        else:
            lines = bytes(data).split(b"\n")
            line = draw(st.integers(0, len(lines) - 1))
            lines.insert(line, lines[line])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def check(spec: bytes, templates: dict[str, bytes]) -> None:
    try:
        desired = build_desired(Sources({SPEC: spec}, templates), Settings(), NOW)
    except SpecError as error:
        assert error.problems, "a SpecError always says what is wrong"
        for problem in error.problems:
            assert problem.line >= 1 and problem.col >= 1
            assert str(problem).startswith(problem.file + ":")
        return
    assert all(s.digest.startswith("sha256:") for s in desired.schedules.values())


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(spec=st.binary(max_size=600))
def test_random_bytes_give_only_spec_errors(spec: bytes) -> None:
    check(spec, TEMPLATES)


@FUZZ
@given(spec=st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join))
def test_random_token_soup_gives_only_spec_errors(spec: bytes) -> None:
    check(spec, TEMPLATES)


@FUZZ
@given(spec=mutated(SPEC_BYTES))
def test_mutated_example_spec_gives_only_spec_errors(spec: bytes) -> None:
    check(spec, TEMPLATES)


@FUZZ
@given(
    name=st.sampled_from(sorted(TEMPLATES)),
    data=st.data(),
)
def test_mutated_templates_give_only_spec_errors(name: str, data: st.DataObject) -> None:
    templates = dict(TEMPLATES)
    templates[name] = data.draw(mutated(TEMPLATES[name]))
    check(SPEC_BYTES, templates)


def test_the_unmutated_inputs_are_valid() -> None:
    desired = build_desired(Sources({SPEC: SPEC_BYTES}, TEMPLATES), Settings(), NOW)
    assert len(desired.schedules) == 6
