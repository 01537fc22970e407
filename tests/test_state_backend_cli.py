"""The state backends through the CLI: PostgreSQL under apply (a server restart mid-run),
history, show --serial, restore, migrate both ways, init-backend, where, and the errors a user
meets (no psycopg, no connection string, a password that must never be shown)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.cli.main import main
from reconciler.errors import ExitCode
from reconciler.state.store import StateStore
from tests.support.campaign import NOW, apply, schedule_created, write_project
from tests.support.emulator import EMULATOR_NOW, EmulatorHandle
from tests.support.postgres import STATE_URL_ENV, Backend, PostgresServer

REPO = Path(__file__).resolve().parents[1]
LATER = (EMULATOR_NOW + timedelta(minutes=3)).isoformat()


def state(root: Path, *argv: str) -> int:
    return main(["state", *argv, "--root", str(root), "--now", NOW])


def names(emu: EmulatorHandle) -> dict[str, int]:
    return emu.names()


def test_apply_then_reapply_makes_zero_calls_and_writes_no_state_file(
    env: EmulatorHandle, tmp_path: Path, pg_backend: Backend
) -> None:
    backend = pg_backend
    write_project(tmp_path, 3)
    backend.configure(tmp_path)
    assert apply(env, tmp_path) == ExitCode.OK
    calls = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert len(env.calls()) == calls
    assert not (tmp_path / "state").exists()  # the state is in the database only
    loaded = backend.store().load()
    assert sorted(loaded.schedules) == ["msg_00", "msg_01", "msg_02"]


@pytest.mark.slow
def test_a_server_restart_mid_apply_stops_the_run_and_the_rerun_converges(
    env: EmulatorHandle, tmp_path: Path, pg_backend: Backend, postgres: PostgresServer
) -> None:
    backend = pg_backend
    env.set_faults(rate_slow=1.0, slow_seconds=0.1)
    write_project(tmp_path, 12)
    backend.configure(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from reconciler.cli.main import entry; entry()",
            "apply",
            "--root",
            str(tmp_path),
            "--base-url",
            env.base_url,
            "--now",
            NOW,
            "--auto-approve",
            "--quiet",
            "--parallelism",
            "2",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while sum(c.method == "POST" for c in env.calls()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    postgres.restart()  # every session is cut, the apply's included, and its lock with it
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.ERROR, stderr
    assert "nothing more can be recorded in this run" in stderr
    assert "Traceback" not in stderr
    created_before = sum(c.write_applied for c in env.calls() if c.method == "POST")
    assert created_before < 13  # it stopped: not every create was made
    env.set_faults()
    env.set_now(datetime.fromisoformat(LATER))
    assert apply(env, tmp_path, now=LATER) == ExitCode.OK
    confirm = (EMULATOR_NOW + timedelta(minutes=4)).isoformat()
    env.set_now(datetime.fromisoformat(confirm))
    assert apply(env, tmp_path, now=confirm) == ExitCode.OK
    live = names(env)
    assert set(live) == {f"msg_{i:02d}" for i in range(12)}
    assert all(count == 1 for count in live.values()), live
    posts = [c for c in env.calls() if c.method == "POST" and c.path == "/v4/schedules"]
    assert sum(c.write_applied for c in posts) == 12  # never a second create of any name
    calls = len(env.calls())
    assert apply(env, tmp_path, now=confirm) == ExitCode.OK
    assert len(env.calls()) == calls


def test_two_keys_never_block_each_other(pg_backend: Backend) -> None:
    pg = pg_backend
    other = Backend("postgres", pg.root, url=pg.url, project=pg.project + "-other")
    mine, theirs = pg.store(), other.store()
    with mine.lock("one"), theirs.lock("two"):
        pass


def test_history_show_serial_and_restore_through_the_cli(
    env: EmulatorHandle,
    tmp_path: Path,
    backend: Backend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 2)
    backend.configure(tmp_path)
    assert apply(env, tmp_path) == ExitCode.OK
    first = backend.store().load()
    write_project(tmp_path, 3)  # one more message
    assert apply(env, tmp_path) == ExitCode.OK
    capsys.readouterr()
    assert state(tmp_path, "history") == 0
    listed = capsys.readouterr().out
    assert f"{first.serial}" in listed and "(current)" in listed
    if backend.kind == "postgres":
        assert "reconcile apply by " in listed  # who wrote each snapshot
    assert state(tmp_path, "show", "--serial", str(first.serial)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(shown["schedules"]) == ["msg_00", "msg_01"]
    current = backend.store().load()
    # Off a terminal, restore shows the plan and needs --auto-approve: nothing changes.
    assert state(tmp_path, "restore", "--serial", str(first.serial)) == ExitCode.ERROR
    captured = capsys.readouterr()
    assert "schedule.msg_02" in captured.out  # the plan: the next apply would create it again
    assert "schedule.msg_02 (remote id" in captured.err  # and the warning names its live id
    assert backend.store().load() == current
    assert state(tmp_path, "restore", "--serial", str(first.serial), "--auto-approve") == 0
    restored = backend.store().load()
    assert restored.serial == current.serial + 1  # a new serial: older saved plans are refused
    assert sorted(restored.schedules) == ["msg_00", "msg_01"]
    assert restored.target == current.target


def test_restore_is_refused_while_a_write_is_pending(tmp_path: Path, backend: Backend) -> None:
    from reconciler.state.model import Intent, IntentRecorded

    backend.configure(tmp_path)
    write_project(tmp_path, 1)
    store = backend.store()
    at = EMULATOR_NOW
    with store.lock("test"):
        state0 = store.load()
        from tests.support.campaign import schedule_created

        s1 = store.append(state0, [schedule_created("a")])
        store.write(s1)
        intent = Intent(action="create", digest="sha256:y", started_at=at)
        store.append(s1, [IntentRecorded(name="b", plan_id="p", intent=intent)])
    os.environ.setdefault("ENGAGELAB_APP_KEY", "k")
    assert state(tmp_path, "restore", "--serial", "1", "--auto-approve") == ExitCode.ERROR
    assert backend.store().load().schedules["b"].intent is not None


def test_migrate_file_to_postgres_and_back_keeps_every_record(
    env: EmulatorHandle,
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECONCILE_STATE_URL", pg_url)
    write_project(tmp_path, 3)
    assert apply(env, tmp_path) == ExitCode.OK
    file_state = StateStore(tmp_path / "state" / "default.json").load()
    project = "mig-" + os.urandom(4).hex()
    capsys.readouterr()
    assert state(tmp_path, "migrate", "--to", "postgres", "--project", project) == 0
    said = capsys.readouterr().out
    assert f'state = {{ url_env = "RECONCILE_STATE_URL", project = "{project}" }}' in said
    # The source is intact but marked: using it by mistake is refused, with where it went.
    assert (tmp_path / "state" / "default.json").exists()
    assert main(["plan", "--root", str(tmp_path), "--now", NOW]) == ExitCode.ERROR
    assert "was moved to postgres" in capsys.readouterr().err
    # Point the environment at the database: the plan is empty, nothing lost.
    (tmp_path / "reconcile.toml").write_text(
        "[environments.default]\n"
        f'state = {{ url_env = "RECONCILE_STATE_URL", project = "{project}" }}\n',
        encoding="utf-8",
    )
    assert state(tmp_path, "where") == 0
    assert capsys.readouterr().out == f"postgres {project}/default ($RECONCILE_STATE_URL)\n"
    assert main(["plan", "--root", str(tmp_path), "--now", NOW, "--detailed-exitcode"]) == 0
    calls = len(env.calls())
    assert apply(env, tmp_path) == ExitCode.OK
    assert len(env.calls()) == calls
    # A target holding another lineage is refused; the source stays in use.
    stranger = tmp_path / "stranger.json"
    store = StateStore(stranger)
    from tests.support.campaign import schedule_created

    with store.lock("t"):
        store.append(store.load(), [schedule_created("zz")])
    assert state(tmp_path, "migrate", "--to", f"file:{stranger}") == ExitCode.ERROR
    assert "already holds another state" in capsys.readouterr().err
    # And back to the file (the same lineage, older serial there): accepted, mark cleared.
    assert state(tmp_path, "migrate", "--to", f"file:{tmp_path / 'state' / 'default.json'}") == 0
    back = StateStore(tmp_path / "state" / "default.json").load()
    assert back.lineage == file_state.lineage
    assert back.schedules.keys() == file_state.schedules.keys()
    assert main(["plan", "--root", str(tmp_path), "--now", NOW]) == ExitCode.ERROR
    assert "was moved to file" in capsys.readouterr().err  # the database copy is marked now


def test_init_backend_creates_the_schema_and_is_idempotent(
    postgres: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = postgres.new_database()
    monkeypatch.setenv("RECONCILE_STATE_URL", url)
    assert state(tmp_path, "init-backend") == 0
    assert "version 0 -> 1" in capsys.readouterr().out
    assert state(tmp_path, "init-backend") == 0
    assert "up to date (schema version 1)" in capsys.readouterr().out
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE reconcile_schema SET version = 99")
    assert state(tmp_path, "init-backend") == ExitCode.ERROR
    assert "newer than this reconcile knows" in capsys.readouterr().err


def test_a_newer_schema_is_refused_before_any_state_is_read(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.new_database()
    monkeypatch.setenv(STATE_URL_ENV, url)
    backend = Backend("postgres", tmp_path, url=url, project="p")
    backend.store().load()  # the first use migrates
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE reconcile_schema SET version = 2")
    from reconciler.errors import StateError

    with pytest.raises(StateError, match="schema version 2, newer"):
        backend.store().load()


def test_the_key_is_bound_to_the_appkey_the_state_was_applied_with(pg_backend: Backend) -> None:
    pg = pg_backend
    from reconciler.errors import StateError
    from reconciler.state.model import Target, TargetBound

    store = pg.store()
    with store.lock("t"):
        state = store.append(store.load(), [schedule_created("a")])
        other = Target(base_url="https://x", app_key_fingerprint="sha256:other")
        with pytest.raises(StateError, match="applied with AppKey sha256:other"):
            store.append(state, [TargetBound(target=other)])
    # Rows copied by hand under another key are refused on reading, too.
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        body = conn.execute(
            "SELECT s.body FROM reconcile_snapshots s JOIN reconcile_states h USING (key) "
            "WHERE h.project = %s ORDER BY s.serial DESC LIMIT 1",
            (pg.project,),
        ).fetchone()
        assert body is not None
        forged = json.loads(zlib.decompress(body[0]))
        forged["target"] = other.model_dump(mode="json")
        conn.execute(
            "UPDATE reconcile_snapshots s SET body = %s FROM reconcile_states h "
            "WHERE s.key = h.key AND h.project = %s",
            (zlib.compress(json.dumps(forged).encode()), pg.project),
        )
        conn.execute(
            "DELETE FROM reconcile_journal j USING reconcile_states h "
            "WHERE j.key = h.key AND h.project = %s",
            (pg.project,),
        )
        conn.execute(
            "UPDATE reconcile_states SET serial = snapshot_serial WHERE project = %s",
            (pg.project,),
        )
    with pytest.raises(StateError, match="bound to AppKey sha256:other"):
        pg.store().load()


def test_missing_psycopg_names_the_extra(tmp_path: Path, pg_backend: Backend) -> None:
    pg = pg_backend
    pg.configure(tmp_path)
    write_project(tmp_path, 1)
    code = (
        "import sys; sys.modules['psycopg'] = None\nfrom reconciler.cli.main import entry; entry()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "plan", "--root", str(tmp_path), "--now", NOW],
        env={**os.environ, "PYTHONPATH": str(REPO), "ENGAGELAB_APP_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.ERROR
    assert "pip install 'engagelab-reconcile[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_name_the_variable_never_the_connection_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    (tmp_path / "reconcile.toml").write_text(
        '[environments.default]\nstate = { url_env = "MY_STATE_URL", project = "p" }\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("ENGAGELAB_APP_KEY", "k")
    monkeypatch.delenv("MY_STATE_URL", raising=False)
    assert main(["plan", "--root", str(tmp_path), "--now", NOW]) == ExitCode.ERROR
    assert "MY_STATE_URL is not set" in capsys.readouterr().err
    secret = "hunter2-s3cret"
    with_port = f"postgresql://reconcile:{secret}@127.0.0.1:9/db"  # port 9: nothing listens
    monkeypatch.setenv("MY_STATE_URL", with_port)
    assert main(["plan", "--root", str(tmp_path), "--now", NOW]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL state database ($MY_STATE_URL)" in err
    assert secret not in err and with_port not in err


def test_the_config_refuses_a_connection_string_in_the_file(tmp_path: Path) -> None:
    from reconciler.config.toml import parse_config
    from reconciler.errors import ConfigError

    text = '[environments.prod]\nstate = { url = "postgresql://u:pw@h/db", project = "p" }\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "reconcile.toml")
    assert "never go in files" in str(caught.value)
    assert "pw@" not in str(caught.value)
    with pytest.raises(ConfigError, match="project"):
        parse_config('[environments.prod]\nstate = { url_env = "X" }\n', "reconcile.toml")


def test_the_lock_timeout_flag_parses_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli.common import parse_duration

    assert parse_duration("90") == 90
    assert parse_duration("1m30s") == 90
    assert parse_duration("2h") == 7200
    with pytest.raises(SystemExit):
        main(["apply", "--root", str(tmp_path), "--lock-timeout", "soon"])
    assert "is not a duration" in capsys.readouterr().err


def test_a_killed_apply_leaves_the_lock_free_and_the_holder_reported(
    env: EmulatorHandle, tmp_path: Path, pg_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    pg = pg_backend
    env.set_faults(rate_slow=1.0, slow_seconds=0.2)
    write_project(tmp_path, 6)
    pg.configure(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from reconciler.cli.main import entry; entry()",
            "apply",
            "--root",
            str(tmp_path),
            "--base-url",
            env.base_url,
            "--now",
            NOW,
            "--auto-approve",
            "--quiet",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not env.calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    env.set_faults()
    env.set_now(datetime.fromisoformat(LATER))
    capsys.readouterr()
    assert apply(env, tmp_path, "--lock-timeout", "10s", now=LATER) == ExitCode.OK
    assert f"pid {proc.pid}" in capsys.readouterr().err  # the holder that did not finish


def test_a_broken_state_is_listed_and_restored_through_the_cli(
    env: EmulatorHandle, tmp_path: Path, pg_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    pg_backend.configure(tmp_path)
    write_project(tmp_path, 1)
    assert apply(env, tmp_path) == ExitCode.OK
    first = pg_backend.store().load()
    write_project(tmp_path, 2)
    assert apply(env, tmp_path) == ExitCode.OK
    with psycopg.connect(pg_backend.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE reconcile_snapshots s SET body = '{' FROM reconcile_states h "
            "WHERE s.key = h.key AND s.serial = h.snapshot_serial AND h.project = %s",
            (pg_backend.project,),
        )
    capsys.readouterr()
    assert state(tmp_path, "list") == ExitCode.ERROR
    assert "restore --serial N --force" in capsys.readouterr().err
    assert state(tmp_path, "history") == 0  # readable although the current snapshot is not
    assert f"{first.serial} " in capsys.readouterr().out
    serial = str(first.serial)
    assert state(tmp_path, "restore", "--serial", serial, "--auto-approve") == ExitCode.ERROR
    assert "add --force" in capsys.readouterr().err
    assert state(tmp_path, "restore", "--serial", serial, "--auto-approve", "--force") == 0
    captured = capsys.readouterr()
    assert "cannot be read" in captured.err and "schedule.msg_01" in captured.out
    assert sorted(pg_backend.store().load().schedules) == ["msg_00"]
