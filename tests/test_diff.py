"""Unit tests for field diffs: natural paths, one entry per changed leaf, stable order."""

from __future__ import annotations

import pytest

from reconciler.diff import DiffOp, FieldDiff, diff_bodies, natural_path
from tests.support.plans import COPY, body


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ["push", "body", "options", "multi_language", "fr", "alert"],
            "options.multi_language.fr.alert",
        ),
        (["push", "body", "notification", "android", "title"], "notification.android.title"),
        (["push", "to", "tag", 1], "to.tag[1]"),
        (["trigger", "intelligent", "backup_time"], "trigger.intelligent.backup_time"),
        (["push", "body", "notification", "ios", "thread-id"], "notification.ios.thread-id"),
        (["push", "custom_args", "a.b"], "custom_args['a.b']"),
        (["push"], "push"),
        (["plan_description"], "plan_description"),
    ],
)
def test_natural_path(parts: list[str | int], expected: str) -> None:
    assert natural_path(parts) == expected


def test_equal_bodies_have_no_diffs() -> None:
    assert diff_bodies(body("a"), body("a")) == ()


def test_one_language_edit_is_one_leaf() -> None:
    edited = {**COPY, "fr": {**COPY["fr"], "alert": "Soldes !"}}
    assert diff_bodies(body("a"), body("a", copy=edited)) == (
        FieldDiff(
            path="options.multi_language.fr.alert",
            op=DiffOp.CHANGED,
            before=COPY["fr"]["alert"],
            after="Soldes !",
        ),
    )


def test_added_and_removed_languages_carry_the_whole_copy() -> None:
    more = {**COPY, "es": {"title": "Oferta", "alert": "¡Ya!"}}
    added = diff_bodies(body("a"), body("a", copy=more))
    assert [(d.path, d.op, d.after) for d in added] == [
        ("options.multi_language.es", DiffOp.ADDED, {"alert": "¡Ya!", "title": "Oferta"})
    ]
    removed = diff_bodies(body("a", copy=more), body("a"))
    assert [(d.path, d.op, d.after) for d in removed] == [
        ("options.multi_language.es", DiffOp.REMOVED, None)
    ]


def test_list_items_and_trigger_kind_changes_read_naturally() -> None:
    before = body("a", tags=["x", "y"])
    after = body("a", tags=["x", "z", "w"], trigger={"single": {"time": "2025-12-20 10:00:00"}})
    got = [(d.path, d.op) for d in diff_bodies(before, after)]
    assert got == [
        ("to.tag[1]", DiffOp.CHANGED),
        ("to.tag[2]", DiffOp.ADDED),
        ("trigger.intelligent", DiffOp.REMOVED),
        ("trigger.single", DiffOp.ADDED),
    ]


def test_type_change_is_a_change() -> None:
    assert diff_bodies({"a": 1}, {"a": "1"}) == (
        FieldDiff(path="a", op=DiffOp.CHANGED, before=1, after="1"),
    )


def test_list_indexes_sort_numerically() -> None:
    before = {"l": list(range(12))}
    after = {"l": [*range(10), 100, 110]}
    assert [d.path for d in diff_bodies(before, after)] == ["l[10]", "l[11]"]
