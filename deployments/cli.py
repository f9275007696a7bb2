"""The ``lightbox`` command line.

    lightbox run MANIFEST --out DIR [--template white_studio] [--profile amazon-main ...]
                 [--diffusion-dir DIR] [--database-url URL] [--batch-name NAME] [--verbose]
    lightbox report DIR [--state exported|rejected|failed|held ...]
    lightbox models fetch [--model-dir DIR]
    lightbox models check [--model-dir DIR] [--diffusion-dir DIR] [--template NAME]
    lightbox gc [--data-dir DIR] [--database-url URL] [--older-than-days 30] [--dry-run]
    lightbox --version

Exit codes:
    0    ran: the batch completed, whatever its SKUs did (report.json says which and why);
         for ``models check``: every weight is there
    1    the batch ran and ended Failed (e.g. more SKUs failed than --max-failed-share);
         the summary and report.json are still written
    2    refused before anything started: a usage error, or a preflight check (missing
         manifest, lifestyle weights, database, Prefect API, output folder, profile) with
         one line naming the fix; for ``models check``: a weight is missing or unreadable
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deployments.cli_run import add_run_parser

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lightbox")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"lightbox {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_parser(commands)

    report = commands.add_parser("report", help="a batch's per-SKU summary from DIR/report.json")
    report.add_argument("dir", type=Path, help="the run's --out folder (or a report.json)")
    report.add_argument(
        "--state",
        action="append",
        choices=["exported", "rejected", "failed", "held", "approved"],
        help="only SKUs in this state (repeatable)",
    )

    models = commands.add_parser("models", help="model weights")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = models_sub.add_parser("fetch", help="fetch registry weights and verify checksums")
    fetch.add_argument("--model-dir", type=Path, default=Path(".lightbox/models"))
    fetch.add_argument("names", nargs="*", help="weight names (default: all registry-sourced)")
    check = models_sub.add_parser("check", help="verify every weight a template needs (exit 2 if any is missing)")
    check.add_argument("--model-dir", type=Path, default=Path(".lightbox/models"))
    check.add_argument("--diffusion-dir", type=Path, help="lifestyle weights: DIR/inpaint, DIR/controlnet_depth, ...")
    check.add_argument("--template", default="white_studio", help="the scene template to check for")
    check.add_argument("--templates-dir", type=Path, help="extra template YAML files")
    check.add_argument("--segmenter", default="u2netp")
    check.add_argument("--upscaler", default="auto")

    gc = commands.add_parser("gc", help="remove work files no open SKU needs (tasks/gc.py)")
    gc.add_argument("--data-dir", type=Path, default=Path(".lightbox"), help="the runs' data dir")
    gc.add_argument("--database-url", help="catalog DB (default: SQLite under --data-dir)")
    gc.add_argument(
        "--older-than-days", type=float, default=30.0, help="keep work written more recently than this (default 30)"
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "models":
            if args.models_command == "check":
                from deployments.cli_models import check_models

                return check_models(args)
            return _fetch(args)
        if args.command == "gc":
            return _gc(args)
        if args.command == "report":
            from deployments.cli_report import show_report

            return show_report(args)
        from deployments.cli_run import run

        return run(args)
    except KeyboardInterrupt:
        sys.stderr.write("lightbox: interrupted\n")
        return EXIT_INTERRUPTED


def _gc(args) -> int:
    from catalog.db import DatabaseUnavailable, check_url, sqlite_url
    from tasks.gc import collect_garbage

    data_dir = args.data_dir.resolve()
    if args.database_url is None and not (data_dir / "catalog.db").is_file():
        sys.stderr.write(
            f"lightbox: no catalog database at {data_dir / 'catalog.db'} (pass --data-dir or --database-url)\n"
        )
        return 2
    try:
        url = check_url(args.database_url or sqlite_url(data_dir / "catalog.db"))
        report = collect_garbage(
            data_dir,
            url,
            Path(os.environ.get("PREFECT_LOCAL_STORAGE_PATH", data_dir / "results")),
            older_than_days=args.older_than_days,
            dry_run=args.dry_run,
        )
    except (ValueError, DatabaseUnavailable) as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2
    verb = "would remove" if args.dry_run else "removed"
    sys.stdout.write(
        f"{verb} {len(report.removed_folders)} work folder(s) and {report.removed_records} cache "
        f"record(s), {report.freed_bytes / 2**20:.1f} MiB; kept {report.kept_in_use} in use by open "
        f"SKUs and {report.kept_recent} written in the last {args.older_than_days:g} days\n"
    )
    return 0


def _fetch(args) -> int:
    from imaging.weights import FetchError, fetch_weights

    try:
        paths = fetch_weights(args.model_dir, args.names or None)
    except (FetchError, FileNotFoundError, KeyError) as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2
    for path in paths:
        sys.stdout.write(f"ok  {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
