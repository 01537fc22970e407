"""The README walkthrough, run as written against `reconcile emulator` on a free loopback port.

Blocks marked `<!-- walkthrough -->` run in order in one bash session in a temp folder, with the
venv's `reconcile` first on PATH; the `background` block is the emulator (the "second terminal").
Real clock throughout: `reconcile init` dates the example campaign from today.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reconciler.cli.main import build_parser
from reconciler.engagelab import PATH_PLAN_DETAIL

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- walkthrough(?:: (\w+))? -->\n```sh\n(.*?)```", re.S)
PORT = "8787"


def blocks() -> list[tuple[str, str]]:
    found = [(kind or "run", body) for kind, body in BLOCK.findall(README.read_text("utf-8"))]
    assert found, "README.md has no <!-- walkthrough --> blocks"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(bin_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENGAGELAB_", "RECONCILE_", "STAGING_", "PRODUCTION_"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the README's emulator command exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the README's emulator command never listened")


def api_calls(port: int) -> list[tuple[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/calls", timeout=5) as answer:
        calls = json.load(answer)["calls"]
    return [(c["method"], c["path"]) for c in calls]


def test_install_block_is_the_readme_first_command() -> None:
    first = README.read_text("utf-8").split("```sh\n", 1)[1].splitlines()[0]
    install = [body for kind, body in blocks() if kind == "install"]
    assert len(install) == 1
    assert install[0].startswith(first.removesuffix(" && .venv/bin/reconcile plan"))


@pytest.mark.slow
def test_walkthrough_runs_as_written_against_the_emulator(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "reconcile").exists(), f"no reconcile entry point in {bin_dir}"
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    port = free_port()
    env = clean_env(bin_dir)
    steps = blocks()
    background = [body for kind, body in steps if kind == "background"]
    assert len(background) == 1 and background[0].startswith("reconcile emulator")
    script = ["set -euo pipefail"]
    missing: list[str] = []
    for kind, body in steps:
        if kind != "run":
            continue
        for number, line in enumerate(body.replace(PORT, str(port)).splitlines()):
            word = re.match(r"reconcile\s+([a-z_]+)", line)
            if word and word.group(1) not in commands:  # a step whose command is not there yet
                missing.append(line)
                line = f"echo 'not yet available: {line}'"
            script += [f"echo '@@ {len(script)}.{number} {line.split()[0]}'", line]
    emulator = subprocess.Popen(
        ["bash", "-c", "exec " + background[0].replace(PORT, str(port))],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, emulator)
        run = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, f"walkthrough failed:\n{run.stdout}\n{run.stderr}"
        calls = api_calls(port)
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=10)
    outputs = re.split(r"^@@ .*\n", run.stdout, flags=re.M)[1:]
    said = dict(zip((ln for _, ln in _commands(script)), outputs, strict=True))
    assert "Plan: 4 to create, 0 to update" in said["reconcile plan", 0]
    assert "Apply complete: 4 applied" in said["reconcile apply --auto-approve", 0]
    edited = said["reconcile plan", 1]
    assert "0 to create, 1 to update, 0 to replace, 0 to delete" in edited
    assert '"Un cadeau de bienvenue" -> "Un petit cadeau"' in edited
    assert "Apply complete: 1 applied" in said["reconcile apply --auto-approve", 1]
    # The emulator's own log: one plan upsert, three creates, then exactly one PUT.
    changes = [(m, p) for m, p in calls if m != "GET"]
    assert changes[:4] == [("POST", "/v4/push_plan")] + [("POST", "/v4/schedules")] * 3
    assert [m for m, _ in changes[4:]] == ["PUT"]
    if missing:
        pytest.xfail(f"README steps whose command does not exist yet: {missing}")
    assert "welcome_series" in said["reconcile stats", 0]
    assert calls[-1][1].startswith(PATH_PLAN_DETAIL)  # figures served by the emulator


def _commands(script: list[str]) -> list[tuple[str, tuple[str, int]]]:
    """(marker, (command line, how many times it ran before)) for each marked line."""
    seen: dict[str, int] = {}
    found = []
    for marker, line in zip(script[1::2], script[2::2], strict=True):
        found.append((marker, (line, seen.get(line, 0))))
        seen[line] = seen.get(line, 0) + 1
    return found
