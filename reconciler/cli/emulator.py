"""`reconcile emulator`: run the local EngageLab-compatible API in the foreground until Ctrl-C.

Credentials come from the environment, else from fixed demo values the banner tells the user to
export. A secret the user supplied is never printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from reconciler.cli.common import err, out, resolve_now
from reconciler.emulator import (
    ANSWER_VARIANTS,
    Emulator,
    EmulatorConfig,
    FaultConfig,
    parse_answers,
)
from reconciler.engagelab import (
    ENV_APP_KEY,
    ENV_BASE_URL,
    ENV_MASTER_SECRET,
    SCHEDULE_QUOTA_DEFAULT,
)
from reconciler.errors import ConfigError

DEMO_APP_KEY = "demo-app-key"
DEMO_MASTER_SECRET = "demo-master-secret"  # noqa: S105  a published demo value, not a secret


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emulator",
        help="run a local EngageLab-compatible API (no account needed)",
        description="Serve a local EngageLab-compatible API until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8787, help="port (0 = any free port)")
    parser.add_argument("--app-key", default=None, help=f"default: ${ENV_APP_KEY} or a demo key")
    parser.add_argument(
        "--master-secret", default=None, help=f"default: ${ENV_MASTER_SECRET} or a demo secret"
    )
    parser.add_argument("--data", type=Path, default=None, help="persist the account to FILE")
    parser.add_argument("--schedule-quota", type=int, default=SCHEDULE_QUOTA_DEFAULT)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s (429 above)")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="probability of a fault per request, spread over 429, 23008, 5xx and lost responses",
    )
    parser.add_argument(
        "--answers",
        default="",
        help="answer variants: 'sdk' (all) or a comma list of "
        + ", ".join(ANSWER_VARIANTS)
        + " (default: the documented shapes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and random faults")
    parser.add_argument("--now", default=None, help="pin the emulator clock (ISO 8601, offset)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> tuple[EmulatorConfig, bool]:
    """The config, and whether the demo credentials are in use (so the banner may show them)."""
    app_key = args.app_key or os.environ.get(ENV_APP_KEY)
    secret = args.master_secret or os.environ.get(ENV_MASTER_SECRET)
    demo = not app_key and not secret
    if demo:
        app_key, secret = DEMO_APP_KEY, DEMO_MASTER_SECRET
    if not app_key or not secret:
        raise ConfigError(
            "give both an app key and a master secret (options or environment), or neither"
        )
    if args.schedule_quota < 1:
        raise ConfigError(f"--schedule-quota must be positive, not {args.schedule_quota}")
    if args.rate_limit is not None and args.rate_limit <= 0:
        raise ConfigError(f"--rate-limit must be positive, not {args.rate_limit}")
    if args.data is not None and not args.data.parent.is_dir():
        raise ConfigError(f"--data {args.data}: the folder {args.data.parent} does not exist")
    if not 0 <= args.fault_rate <= 1:
        raise ConfigError(f"--fault-rate is a probability from 0 to 1, not {args.fault_rate}")
    try:
        answers = parse_answers(args.answers)
    except ValueError as error:
        raise ConfigError(f"--answers: {error}") from None
    share = args.fault_rate / 4
    faults = FaultConfig(rate_429=share, rate_23008=share, rate_5xx=share, rate_lost=share)
    config = EmulatorConfig(
        app_key=app_key,
        master_secret=secret,
        schedule_quota=args.schedule_quota,
        rate_limit=args.rate_limit,
        seed=args.seed,
        now=resolve_now(args) if args.now else None,
        data_file=args.data,
        faults=faults,
        answers=answers,
    )
    return config, demo


def run(args: argparse.Namespace) -> int:
    config, demo = build_config(args)
    try:
        emulator = Emulator(config)
    except ValueError as error:
        raise ConfigError(f"cannot load --data: {error}") from None
    try:
        url = emulator.start(args.host, args.port)
    except OSError as error:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        out(f"EngageLab emulator listening on {url}")
        out(f"  export {ENV_BASE_URL}={url}")
        if demo:
            out(f"  export {ENV_APP_KEY}={DEMO_APP_KEY}")
            out(f"  export {ENV_MASTER_SECRET}={DEMO_MASTER_SECRET}")
        else:
            out(f"  credentials: ${ENV_APP_KEY} / ${ENV_MASTER_SECRET} as given")
        if config.answers:
            out(f"  answer variants: {', '.join(sorted(config.answers))}")
        out(f"  control: {url}/_emulator/calls, /names, /reset, /faults, /clock, /answers")
        out("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
    err("emulator stopped")
    return 0
