"""`reconcile init [DIR]`: scaffold a campaign repository. Writes files; never overwrites one.

Writes specs, templates, state/, reconcile.toml, a README for the campaign team and the CI
workflows (GitHub Actions and GitLab CI). The example campaign's dates are relative to today.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import metadata
from pathlib import Path

from reconciler import DIST_NAME
from reconciler.cli.common import NOW_ENV, err, out, resolve_now
from reconciler.errors import ConfigError, ExitCode
from reconciler.scaffold import DEFAULT_INSTALL, pinned_install, scaffold


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init",
        help="start a campaign repository: specs, templates, config, README and CI workflows",
        description="Write a new campaign repository into DIR (default: .). Existing files are "
        "kept, never overwritten, so it is safe to run in a repository you already have.",
    )
    parser.add_argument("dir", nargs="?", type=Path, default=Path(), metavar="DIR")
    parser.add_argument(
        "--now",
        default=os.environ.get(NOW_ENV),
        help="the day the example campaign's dates count from (default: today)",
    )
    parser.add_argument(
        "--install",
        metavar="SPEC",
        help=f"what the CI workflows install, pinned: `{DIST_NAME}==X.Y.Z`, a git+https URL at a "
        "40-hex commit, or a wheel URL with #sha256= (default: where this reconcile came from, "
        f"else {DEFAULT_INSTALL})",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def installed_source() -> str:
    """The pinned spec this very reconcile was installed from (PEP 610 direct_url.json).

    A git install at a commit gives that URL and commit; a wheel URL with its hash gives both.
    An install from an index, or from a local folder, gives the exact release of our name."""
    try:
        raw = metadata.distribution(DIST_NAME).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return DEFAULT_INSTALL
    try:
        where = json.loads(raw) if raw else {}
    except ValueError:
        return DEFAULT_INSTALL
    url = where.get("url", "") if isinstance(where, dict) else ""
    vcs = where.get("vcs_info") if isinstance(where, dict) else None
    archive = where.get("archive_info") if isinstance(where, dict) else None
    candidates = []
    if isinstance(vcs, dict) and vcs.get("vcs") == "git":
        candidates.append(f"{DIST_NAME} @ git+{url}@{vcs.get('commit_id', '')}")
    if isinstance(archive, dict):
        sha = (archive.get("hashes") or {}).get("sha256", "")
        candidates.append(f"{DIST_NAME} @ {url}#sha256={sha}")
    for spec in candidates:
        try:
            return pinned_install(spec)
        except ConfigError:
            pass
    return DEFAULT_INSTALL


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    install = pinned_install(args.install) if args.install else installed_source()
    written, kept = [], []
    for rel, text in scaffold(resolve_now(args).date(), install).items():
        path = root / rel
        if path.exists():
            kept.append(rel)
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8", newline="\n") as file:
                file.write(text)
        except OSError as error:
            raise ConfigError(f"cannot write {path}: {error.strerror}") from None
        written.append(rel)
    for rel in written:
        out(f"  wrote {rel}")
    for rel in kept:
        err(f"  kept  {rel} (exists; not overwritten)")
    where = "" if root == Path() else f"cd {root} && "
    out(
        f"Campaign repository ready in {root}: {len(written)} file(s) written, {len(kept)} kept.\n"
        f"Next: {where}reconcile validate && reconcile plan   (no account needed)\n"
        "Read README.md there for the pull-request workflow and the CI setup.\n"
        f"CI installs: {install}"
    )
    return int(ExitCode.OK)
