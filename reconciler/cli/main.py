"""`reconcile` entry point: parse argv, dispatch to one command module, map errors to exit codes.

Each command lives in reconciler/cli/<name>.py with `register(subparsers)`; `run(args) -> int` is
bound with `set_defaults(func=...)`. This is the only layer that prints.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence

from reconciler import __version__
from reconciler import engagelab as api
from reconciler.errors import ExitCode, ReconcileError

# Order is the order shown in --help. A module that does not exist yet is simply not offered.
COMMANDS = (
    "validate",
    "render",
    "plan",
    "show",
    "apply",
    "refresh",
    "import_cmd",
    "state",
    "stats",
    "timeline",
    "init",
    "emulator",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconcile",
        description="Campaign-as-code for EngageLab push: validate, render, plan and apply.",
    )
    parser.add_argument("--version", action="version", version=f"reconcile {__version__}")
    # Also accepted before the command (`reconcile --debug plan`); commands take it after too.
    parser.add_argument("--debug", dest="debug_before", action="store_true", help="tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        # A misspelt or missing command module fails here, loudly (never a silent skip).
        module = importlib.import_module(f"reconciler.cli.{name}")
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.ERROR)
    debug = bool(getattr(args, "debug", False) or getattr(args, "debug_before", False))
    try:
        return int(func(args))
    except ReconcileError as error:
        if debug:
            print(redact(traceback.format_exc(), args), end="", file=sys.stderr)
        print(redact(f"error: {error}", args), file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`reconcile render | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as error:
        if debug:  # the traceback, redacted like every other message (never re-raised raw)
            print(redact(traceback.format_exc(), args), end="", file=sys.stderr)
        message = f"internal error: {type(error).__name__}: {error}"
        print(
            f"{redact(message, args)}\n"
            "This is a bug in reconcile; rerun with --debug for the traceback.",
            file=sys.stderr,
        )
        return int(ExitCode.ERROR)


_MIN_SECRET = 4  # shorter values would blank out ordinary words; the client redacts likewise


def credential_values(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """The credential values in the environment, longest first: the app key and master secret
    (ENGAGELAB_* and the variables the selected environment names), and each Basic token."""
    names = [api.ENV_APP_KEY, api.ENV_MASTER_SECRET]
    cached = getattr(args, "_environment", None)  # set by cli.common.environment(), if it ran
    env = cached[0] if isinstance(cached, tuple) and cached else None
    if env is not None:
        names += [env.app_key_env, env.master_secret_env]
    keys = {environ.get(n, "").strip() for n in names[0::2]} - {""}
    secrets = {environ.get(n, "").strip() for n in names[1::2]} - {""}
    values = keys | secrets
    if env is not None and env.state_url_env:  # the state's connection string, and its password
        url = environ.get(env.state_url_env, "").strip()
        values |= {url, *_url_secrets(url)} - {""}
    for key in keys:
        for secret in secrets:
            values.add(base64.b64encode(f"{key}:{secret}".encode()).decode("ascii"))
    return sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True)


def _url_secrets(url: str) -> list[str]:
    """The password in a connection string's user-info (up to its last @: a password may hold
    an unencoded @), and each piece of it."""
    import re

    match = re.search(r"://([^/?#]*)@", url)
    if not match:
        return []
    password = match.group(1).partition(":")[2]  # the user name is not a secret
    return [password, *(piece for piece in password.split("@") if len(piece) >= _MIN_SECRET)]


def redact(text: str, args: argparse.Namespace | None = None) -> str:
    """`text` with every credential value of the environment replaced by ***."""
    for value in credential_values(args):
        text = text.replace(value, "***")
    return text


def entry() -> None:
    raise SystemExit(main())
