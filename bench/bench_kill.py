"""Randomized kill test: SIGKILL `reconcile apply` at random moments, rerun, check invariants.

Each iteration: a fresh emulator and project, an apply process killed after a random number of
API calls (or at a random instant, often inside a state write), then applies until converged.
Invariants: no name is ever live twice, no name is ever created twice, the remote matches the
specs, and a final apply makes zero calls. Usage: python bench/bench_kill.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler.emulator import Emulator, EmulatorConfig, FaultConfig  # noqa: E402
from tests.support.campaign import write_project  # noqa: E402
from tests.support.emulator import EMULATOR_NOW  # noqa: E402

ENTRY = "from reconciler.cli.main import entry; entry()"


# Reruns come after the create settle time (120 s): a create killed in flight may land late.
RERUN_AT = EMULATOR_NOW + timedelta(minutes=3)
CONFIRM_AT = RERUN_AT + timedelta(minutes=1)


def apply_argv(root: Path, base_url: str, now: datetime = EMULATOR_NOW) -> list[str]:
    return [
        sys.executable, "-c", ENTRY, "apply", "--root", str(root), "--base-url", base_url,
        "--now", now.isoformat(), "--auto-approve", "--quiet", "--parallelism", "3",
    ]  # fmt: skip


def iteration(rng: random.Random, env: dict[str, str], messages: int) -> str:
    faults = FaultConfig(rate_slow=0.5, slow_seconds=0.02, rate_lost=rng.choice([0.0, 0.1]))
    config = EmulatorConfig(app_key="k", master_secret="s", now=EMULATOR_NOW, faults=faults)
    with tempfile.TemporaryDirectory() as tmp, Emulator(config) as emu:
        root = Path(tmp)
        write_project(root, messages)
        argv = apply_argv(root, emu.base_url)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rng.random() < 0.5:
            target = rng.randint(0, messages + 1)
            deadline = time.monotonic() + 20
            while len(emu.calls()) < target and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            point = f"after {target} calls"
        else:
            delay = rng.uniform(0.2, 1.2)  # mostly inside startup, planning or a journal write
            time.sleep(delay)
            point = f"after {delay:.2f}s"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        emu.set_faults(FaultConfig())
        emu.set_now(RERUN_AT)
        argv = apply_argv(root, emu.base_url, RERUN_AT)
        for _ in range(5):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                break
        else:
            return f"FAIL ({point}): did not converge: {done.stdout}{done.stderr}"
        # A name adopted after an unknown outcome is confirmed unique by the next run's listing.
        emu.set_now(CONFIRM_AT)
        argv = apply_argv(root, emu.base_url, CONFIRM_AT)
        confirm = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if confirm.returncode != 0:
            return f"FAIL ({point}): the confirming run failed: {confirm.stdout}{confirm.stderr}"
        names = emu.names()
        created = [c for c in emu.calls() if c.method == "POST" and c.path == "/v4/schedules"]
        applied = sum(c.write_applied for c in created)
        mark = len(emu.calls())
        again = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if set(names) != {f"msg_{i:02d}" for i in range(messages)}:
            return f"FAIL ({point}): remote names {sorted(names)}"
        if max(names.values()) != 1 or applied != messages:
            return f"FAIL ({point}): duplicate: {applied} creates applied for {messages} names"
        if again.returncode != 0 or len(emu.calls()) != mark:
            extra = [(c.method, c.path, c.status) for c in emu.calls()[mark:]]
            return f"FAIL ({point}): a converged apply made calls {extra}:\n{again.stdout}"
        return f"ok ({point})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", type=int, default=None, help="run just iteration N")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "ENGAGELAB_APP_KEY": "k", "ENGAGELAB_MASTER_SECRET": "s"}
    env["PYTHONPATH"] = str(REPO)
    failures = 0
    started = time.monotonic()
    for i in range(args.iterations):
        if args.only is not None and i != args.only:
            rng.choice([0.0, 0.1])  # replay the draws of a skipped iteration
            rng.randint(0, args.messages + 1) if rng.random() < 0.5 else rng.uniform(0.2, 1.2)
            continue
        result = iteration(rng, env, args.messages)
        failures += not result.startswith("ok")
        if not result.startswith("ok") or i % 20 == 0:
            print(f"  #{i}: {result}", flush=True)
    print(f"{args.iterations} kill iterations, {failures} failures, "
          f"{time.monotonic() - started:.0f} s")  # fmt: skip
    print("PASS" if failures == 0 else "FAIL")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
