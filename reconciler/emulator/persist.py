"""Saving and loading the emulator's store to one JSON file, atomically. Does file I/O.

Written to a temporary sibling, fsynced, then renamed: a crash never leaves half a file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.atomicfile import atomic_write
from reconciler.emulator.store import Plan, Schedule, Store

FORMAT_VERSION = 1


def _at(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def snapshot(store: Store) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "counter": store.counter,
        "plans": [
            {
                "plan_id": p.plan_id,
                "description": p.description,
                "created_at": _at(p.created_at),
                "last_used_at": _at(p.last_used_at),
                "count": p.count,
            }
            for p in store.plans.values()
        ],
        "schedules": [
            {**s.as_api(), "created_at": _at(s.created_at), "expires_at": _at(s.expires_at)}
            for s in store.schedules.values()
        ],
    }


def restore(store: Store, data: dict[str, Any]) -> None:
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported emulator data format {data.get('format_version')!r}")
    store.counter = int(data["counter"])
    store.plans = {}
    for p in data["plans"]:
        created = _parse(p["created_at"])
        assert created is not None
        store.plans[p["plan_id"]] = Plan(
            p["plan_id"], p["description"], created, _parse(p["last_used_at"]), p["count"]
        )
    store.schedules = {}
    for s in data["schedules"]:
        created, expires = _parse(s["created_at"]), _parse(s["expires_at"])
        assert created is not None and expires is not None
        store.schedules[s["schedule_id"]] = Schedule(
            s["schedule_id"], s["name"], s["enabled"], s["trigger"], s["push"], created, expires
        )


def save(store: Store, path: Path) -> None:
    data = json.dumps(snapshot(store), ensure_ascii=False, indent=1).encode("utf-8")
    atomic_write(path, data)


def load(store: Store, path: Path) -> bool:
    """Restore from `path` if it exists; False when there is no file yet. ValueError if corrupt."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        restore(store, json.loads(raw))
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an emulator data file: {error}") from None
    return True
