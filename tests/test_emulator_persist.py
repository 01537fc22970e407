"""Persistence across restarts, and the `reconcile emulator` command as a real subprocess."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from reconciler.emulator import Emulator, EmulatorConfig
from tests.support.emulator import EmulatorHandle, sample_schedule


def test_state_survives_a_restart(
    make_emulator: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    data = tmp_path / "emulator.json"
    first = make_emulator(data_file=data)
    first.request("POST", "/v4/push_plan", {"plan_id": "promo", "plan_description": "d"})
    sid = first.request("POST", "/v4/schedules", sample_schedule("a")).json()["schedule_id"]
    first.request("PUT", f"/v4/schedules/{sid}", {"enabled": False})
    first.server.stop()
    second = make_emulator(data_file=data)
    got = second.request("GET", f"/v4/schedules/{sid}").json()[0]
    assert (got["name"], got["enabled"]) == ("a", False)
    plans = second.request("GET", "/v4/push_plan/list").json()["push_plan_info"]
    assert [p["plan_id"] for p in plans] == ["promo"]
    # Ids keep counting after the restart instead of repeating.
    new = second.request("POST", "/v4/schedules", sample_schedule("b")).json()["schedule_id"]
    assert new != sid
    assert not list(tmp_path.glob(".emulator.json.*"))  # no temporary files left behind


def test_corrupt_data_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    data.write_text("{not json")
    try:
        Emulator(EmulatorConfig("k", "s", data_file=data))
    except ValueError as error:
        assert "not an emulator data file" in str(error)
    else:
        raise AssertionError("a corrupt data file was accepted")
    assert data.read_text() == "{not json"


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    env = {**os.environ, "ENGAGELAB_APP_KEY": "cli-key", "ENGAGELAB_MASTER_SECRET": "cli-SECRET"}
    args = ["--port", "0", "--now", "2025-11-20T12:00:00+00:00", "--data", str(tmp_path / "d.json")]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from reconciler.cli.main import entry; entry()", "emulator", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("EngageLab emulator listening on http://127.0.0.1:")
        port = int(banner.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        token = base64.b64encode(b"cli-key:cli-SECRET").decode()
        body = json.dumps(sample_schedule("from_cli"))
        conn.request("POST", "/v4/schedules", body, {"Authorization": f"Basic {token}"})
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert "cli-SECRET" not in banner + stdout + stderr
    saved = json.loads((tmp_path / "d.json").read_text())
    assert [s["name"] for s in saved["schedules"]] == ["from_cli"]
