"""The ``lightbox`` command line.

    lightbox run MANIFEST --out DIR [--template white_studio] [--profile amazon-main ...]
                 [--database-url URL] [--batch-name NAME]
    lightbox models fetch [--model-dir DIR]
    lightbox gc [--data-dir DIR] [--database-url URL] [--older-than-days 30] [--dry-run]

``run`` exits 0 when the batch completed (even if some SKUs failed: report.json says which
and why) and non-zero with a one-line reason when the batch itself could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PROFILES = ["amazon-main", "shopify", "transparent"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightbox", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="process a catalog: images + report out")
    run.add_argument("manifest", type=Path, help="CSV (sku,image[,title,template,priority]), folder or ZIP")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--template", default="white_studio", help="default scene template")
    run.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        help=f"export profile, repeatable (default: {' '.join(DEFAULT_PROFILES)})",
    )
    run.add_argument("--database-url", help="catalog DB (default: SQLite under --data-dir)")
    run.add_argument("--batch-name", help="batch name (default: the manifest's name)")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".lightbox"),
        help="work files, caches and the SQLite DB (default: ./.lightbox)",
    )
    run.add_argument("--model-dir", type=Path, help="weights (default: DATA_DIR/models)")
    run.add_argument(
        "--review-policy", default="auto", choices=["auto"], help="auto: QC passes are approved, QC failures rejected"
    )
    run.add_argument(
        "--segmenter", default="u2netp", help="u2netp (bundled), birefnet-general or rmbg-1.4 (weights you supply)"
    )
    run.add_argument(
        "--upscaler", default="auto", choices=["auto", "lanczos", "realesrgan-x4plus-ncnn", "realesrgan-x4plus"]
    )
    run.add_argument("--max-attempts", type=int, default=3, help="renders per SKU before QC gives up")
    run.add_argument("--templates-dir", type=Path, help="extra template YAML files")
    run.add_argument("--shard-size", type=int, default=25)
    run.add_argument(
        "--work-store",
        metavar="BLOCK",
        help="keep work files in S3: a saved S3Destination block, lightbox-s3-destination/<name> "
        "(default: DATA_DIR/work on this machine)",
    )
    run.add_argument(
        "--thresholds",
        type=Path,
        help="QC thresholds to change (YAML or JSON: QcThresholds fields, e.g. "
        "'source_enlargement: {warn: 5, fail: 6}'); the rest stay as calibrated",
    )

    models = commands.add_parser("models", help="model weights")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = models_sub.add_parser("fetch", help="fetch registry weights and verify checksums")
    fetch.add_argument("--model-dir", type=Path, default=Path(".lightbox/models"))
    fetch.add_argument("names", nargs="*", help="weight names (default: all registry-sourced)")

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
    if args.command == "models":
        return _fetch(args)
    if args.command == "gc":
        return _gc(args)
    return _run(args)


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


def _thresholds(path: Path | None) -> dict:
    """QcThresholds fields from a YAML/JSON file, checked now (a typo fails before any SKU)."""
    if path is None:
        return {}
    import yaml
    from pydantic import ValidationError

    from quality.thresholds import QcThresholds

    try:
        fields = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--thresholds {path}: cannot read it ({exc.__class__.__name__})") from None
    if not isinstance(fields, dict):
        raise ValueError(f"--thresholds {path}: expected a mapping of QcThresholds fields")
    try:
        QcThresholds(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"--thresholds {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return fields


def _run(args) -> int:
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Prefect reads its settings when first imported: set ours before that.
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(data_dir / "results"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from catalog.db import DatabaseUnavailable, check_url, sqlite_url
    from catalog.manifest import ManifestError
    from imaging.errors import WeightsMissing
    from tasks.preflight import preflight
    from tasks.records import RunSettings

    try:
        database_url = check_url(args.database_url or sqlite_url(data_dir / "catalog.db"))
        settings = RunSettings(
            data_dir=data_dir,
            database_url=database_url,
            model_dir=(args.model_dir or data_dir / "models").resolve(),
            upscaler=args.upscaler,
            segmenter=args.segmenter,
            max_attempts=args.max_attempts,
            templates_dir=args.templates_dir.resolve() if args.templates_dir else None,
            thresholds=_thresholds(args.thresholds),
            work_store=args.work_store,
        )
        profiles = args.profiles or DEFAULT_PROFILES
        preflight(settings, args.template, profiles)
    except (ValueError, WeightsMissing, DatabaseUnavailable) as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2

    from flows.catalog_batch import catalog_batch

    try:
        report = catalog_batch(
            manifest=str(args.manifest.resolve()),
            out_dir=str(args.out.resolve()),
            settings=settings,
            name=args.batch_name or args.manifest.stem,
            template=args.template,
            profiles=profiles,
            review_policy=args.review_policy,
            shard_size=args.shard_size,
        )
    except (ManifestError, DatabaseUnavailable) as exc:
        sys.stderr.write(f"lightbox: {exc}\n")
        return 2
    out = args.out.resolve()
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items())
    sys.stdout.write(
        f"batch {report['batch_id']}: {counts} in {report['wall_seconds']:.1f} s\n"
        f"images:        {out}/<sku>/<profile>.<ext>\n"
        f"contact sheet: {out / 'contact_sheet.png'}\n"
        f"report:        {out / 'report.json'}\n"
        f"QC report:     {out / 'report.html'}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
