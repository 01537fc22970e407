"""What only the PostgreSQL backend has to get right: its database session, its schema, its key.

Found by an adversarial review against a real server; each test fails on the code before its
fix. A pooler in transaction mode is simulated by handing a store the very server session that
already holds the lock (what pgbouncer does with one server connection), or another one.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state.model import Target, TargetBound
from reconciler.state.pg import PgLocation, PgStateStore, lock_id
from tests.support.campaign import schedule_created
from tests.support.postgres import Backend, PostgresServer


def test_a_session_shared_through_a_pooler_never_grants_the_lock_twice(
    pg_backend: Backend,
) -> None:
    store = pg_backend.store()
    assert isinstance(store, PgStateStore)
    shared = psycopg.connect(pg_backend.url, autocommit=True)
    try:
        shared.execute("SELECT pg_advisory_lock(%s)", (lock_id(store.location.key),))
        store._conn = shared  # the pooler hands this client the session that holds the lock
        with (
            pytest.raises(StateLockedError, match="pooler in transaction mode"),
            store.lock("reconcile apply"),
        ):
            pass
    finally:
        shared.close()


def test_a_write_reaching_another_session_than_the_lock_is_refused(pg_backend: Backend) -> None:
    store = pg_backend.store()
    assert isinstance(store, PgStateStore)
    with store.lock("reconcile apply"):
        state = store.append(store.load(), [schedule_created("a")])
        held = store._conn
        store._conn = psycopg.connect(pg_backend.url, autocommit=True)  # the pooler switched
        try:
            with pytest.raises(StateError, match="another database session"):
                store.append(state, [schedule_created("b")])
        finally:
            store.close()
            store._conn = held
    assert sorted(pg_backend.store().load().schedules) == ["a"]


def test_commits_are_synchronous_and_dead_clients_are_noticed_whatever_the_database_says(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as admin:
        database = url.rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off'.encode())
        admin.execute(f'ALTER DATABASE "{database}" SET idle_session_timeout = 1000'.encode())
    location = PgLocation(
        url=url, url_env="X", project="p", environment="e", app_key_fingerprint="sha256:x"
    )
    store = PgStateStore(location)
    with store.lock("t"):
        conn = store._connection()
        shown = {
            name: conn.execute(f"SHOW {name}".encode()).fetchone()
            for name in ("synchronous_commit", "idle_session_timeout", "tcp_keepalives_idle")
        }
    assert shown == {
        "synchronous_commit": ("on",),
        "idle_session_timeout": ("0",),
        "tcp_keepalives_idle": ("10",),
    }


def test_a_fresh_database_survives_many_first_uses_at_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    failures: list[BaseException] = []

    def first_use(n: int) -> None:
        location = PgLocation(
            url=url, url_env="X", project=f"p{n}", environment="e", app_key_fingerprint="sha256:x"
        )
        store = PgStateStore(location)
        try:
            with store.lock("t"):
                store.append(store.load(), [schedule_created("a")])
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


def test_nothing_is_written_under_a_key_for_a_state_of_another_appkey(
    pg_backend: Backend,
) -> None:
    other = Target(base_url="https://push.api.engagelab.cc", app_key_fingerprint="sha256:other")
    source = Backend("file", pg_backend.root / "source").store()
    with source.lock("t"):
        source.append(source.load(), [TargetBound(target=other), schedule_created("a")])
    snapshot, entries = source.export()
    assert snapshot is not None
    target = pg_backend.store()
    with target.lock("t"):
        with pytest.raises(StateError, match="applied with AppKey sha256:other"):
            target.adopt(snapshot, entries)
        with pytest.raises(StateError, match="applied with AppKey sha256:other"):
            target.append(target.load(), [TargetBound(target=other)])
    assert not pg_backend.store().exists()


def test_a_broken_current_snapshot_can_be_listed_and_restored_with_force(
    pg_backend: Backend,
) -> None:
    store = pg_backend.store()
    with store.lock("t"):
        first = store.append(store.load(), [schedule_created("a")])
        store.write(first)
        second = store.append(first, [schedule_created("b")])
        store.write(second)
    with psycopg.connect(pg_backend.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reconcile_snapshots s SET body = 'garbage' FROM reconcile_states h "
            "WHERE s.key = h.key AND s.serial = h.snapshot_serial AND h.project = %s",
            (pg_backend.project,),
        )
    broken = pg_backend.store()
    with pytest.raises(StateError, match="truncated or corrupt"):
        broken.load()
    assert [entry.serial for entry in broken.history()][-2:] == [first.serial, second.serial]
    assert broken.load_serial(first.serial) == first
    with broken.lock("t"):
        restored = broken.replace_unreadable(first)
    assert restored.serial == second.serial + 1
    again = pg_backend.store().load()
    assert again == restored and sorted(again.schedules) == ["a"]


def test_kept_history_is_never_rewritten(pg_backend: Backend) -> None:
    store = pg_backend.store()
    with store.lock("t"):
        state = store.append(store.load(), [schedule_created("a")])
        store.write(state, run="first")
        store.write(state, run="again")  # nothing new: the kept row stays as it was
    assert [e.run for e in pg_backend.store().history() if e.serial == state.serial] == ["first"]


def test_a_password_with_an_at_sign_never_shows_in_an_error() -> None:
    secret = "S3cr@3tPw"
    location = PgLocation(
        url=f"postgresql://u:{secret}@127.0.0.1:9/db",
        url_env="MY_URL",
        project="p",
        environment="e",
        app_key_fingerprint="sha256:x",
    )
    with pytest.raises(StateError) as caught:
        PgStateStore(location).load()
    message = str(caught.value)
    assert "$MY_URL" in message
    for piece in (secret, "3tPw", "S3cr", f"u:{secret}"):
        assert piece not in message, message


def test_the_lock_id_is_stable_and_distinct_per_key() -> None:
    keys = [f"p{n}/e/sha256:{uuid.uuid4().hex[:16]}" for n in range(1000)]
    ids = {lock_id(key) for key in keys}
    assert len(ids) == len(keys)
    assert lock_id("a/b/c") == lock_id("a/b/c")
    assert all(-(2**63) <= value < 2**63 for value in ids)
