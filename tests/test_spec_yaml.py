"""Unit tests for reconciler.spec.yamlsrc: safe loading, refusals with positions, line recovery."""

from __future__ import annotations

import pytest

from reconciler.spec.yamlsrc import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_STRING_CHARS,
    Locator,
    YamlProblem,
    load,
)


def refusal(data: bytes) -> YamlProblem:
    with pytest.raises(YamlProblem) as caught:
        load(data)
    return caught.value


def test_plain_values_and_positions_of_shallow_nodes() -> None:
    loaded = load(b"a: 1\nb: [x, 2.5, true, null]\nc: {d: e}\n")
    assert loaded.value == {"a": 1, "b": ["x", 2.5, True, None], "c": {"d": "e"}}
    assert loaded.marks[("b", 1)] == (2, 8)
    assert loaded.mark(("c", "d", "deeper")) == (3, 8)  # falls back to the deepest known


def test_timestamps_stay_text() -> None:
    assert load(b"t: 2025-12-28 09:00:00\nd: 2025-12-28\n").value == {
        "t": "2025-12-28 09:00:00",
        "d": "2025-12-28",
    }


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        (b"a: &x [1]\nb: *x\n", (1, 4), "aliases"),
        (b"a: 1\na: 2\n", (2, 1), "duplicate key 'a'"),
        (b"a: 1\n\xff\xfe\n", (2, 1), "not UTF-8"),
        (b"a: b\x00c\n", (1, 5), "control character"),
        (b"a: [1, 2\n", (2, 1), "invalid YAML"),
        (b"a: !!python/object:os.system x\n", (1, 4), "tag"),
        (b"a: !custom x\n", (1, 4), "tag"),
        (b"{[1]: 2}\n", (1, 2), "keys must be plain text"),
        (b"a: .inf\n", (1, 4), "finite"),
        (b"a: 1\n---\nb: 2\n", (2, 1), "invalid YAML"),
    ],
)
def test_refusals_carry_a_position(data: bytes, where: tuple[int, int], words: str) -> None:
    problem = refusal(data)
    assert (problem.line, problem.col) == where
    assert words in problem.message


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    assert "aliases" in refusal("\n".join(lines).encode()).message


def test_size_caps() -> None:
    assert "bytes" in refusal(b"a: " + b"x" * MAX_FILE_BYTES).message
    big = refusal(b"a: " + b"x" * (MAX_STRING_CHARS + 1))
    assert "characters" in big.message and (big.line, big.col) == (1, 4)
    assert "number is too long" in refusal(b"a: " + b"9" * 100).message


def test_deep_nesting_is_refused() -> None:
    data = ("a:\n" + "".join("  " * i + "- \n" for i in range(1, MAX_DEPTH + 3))).encode()
    deep = "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2)
    for text in (data, f"a: {deep}\n".encode()):
        problem = refusal(text)
        assert "nested too deeply" in problem.message or "invalid YAML" in problem.message


def test_bom_and_empty_documents() -> None:
    assert load(b"\xef\xbb\xbfa: 1\n").value == {"a": 1}
    assert load(b"").value is None
    assert load(b"# only a comment\n").value is None


def test_locator_finds_keys_values_and_block_scalars() -> None:
    data = b"plan:\n  id: x\nmessages:\n  - name: m\n    alert: |\n      line one\n"
    locator = Locator(data)
    assert locator.locate(("messages", 0, "name")) == (4, 11)
    assert locator.locate(("messages", 0, "name"), key=True) == (4, 5)
    assert locator.locate(("messages", 0, "missing", "deeper")) == (4, 5)
    assert locator.locate(("messages", 7)) == (4, 3)
    assert locator.text_start(("messages", 0, "alert")) == (6, 1)
    assert Locator(b"a: [").locate(("a",)) == (1, 1)
