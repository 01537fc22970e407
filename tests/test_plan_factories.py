"""The plan factories of tests/support/plans.py build what the loader builds."""

from __future__ import annotations

from reconciler.canonical import digest
from tests.support.plans import COPY, record, sched


def test_factory_bodies_digest_like_the_loader_and_carry_every_language() -> None:
    s = sched("a", copy={**COPY, "es": {"title": "Oferta", "alert": "¡Ya!"}})
    assert s.digest == digest(s.body)
    assert sorted(s.body["push"]["body"]["options"]["multi_language"]) == ["en", "es", "fr"]
    assert record(s).digest == s.digest
