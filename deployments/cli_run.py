"""``lightbox run``: preflight, the batch flow in this process with progress, the summary.

Exit codes are in deployments/cli.py's docstring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_PROFILES = ["amazon-main", "shopify", "transparent"]

EXAMPLES = """examples:
  lightbox run examples/catalog/manifest.csv --out out/demo
  lightbox run photos.zip --out out/shoes --profile amazon-main --profile shopify --upscaler lanczos
  lightbox run catalog.csv --out out/kitchen --template marble_counter --diffusion-dir /models/sdxl
  lightbox run catalog.csv --out out/nightly --database-url postgresql+psycopg://lightbox@db/catalog

After a run: OUT/report.json and report.html (per SKU), OUT/contact_sheet.png, the images
under OUT/<sku>/, Prefect's log in OUT/lightbox.log; `lightbox report OUT` prints a table.
Exit codes: 0 ran, 1 the batch ended Failed, 2 refused before start, 130 interrupted.
"""


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_run_parser(commands) -> None:
    run = commands.add_parser(
        "run",
        help="process a catalog: images + report out",
        description="Process a catalog: cut out, stage, upscale, QC and export every SKU, then report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("manifest", type=Path, help="CSV (sku,image[,title,template,priority]), folder or ZIP")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--template", default="white_studio", help="default scene template")
    run.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        help=f"export profile, repeatable (default: {' '.join(DEFAULT_PROFILES)})",
    )
    catalog = run.add_mutually_exclusive_group()
    catalog.add_argument("--database-url", help="catalog DB (default: SQLite under --data-dir)")
    catalog.add_argument(
        "--catalog-block",
        metavar="NAME",
        help="the catalog DB of a saved CatalogDatabase block (loaded from PREFECT_API_URL's server, "
        "as deployed runs load it; its password stays out of the run's parameters)",
    )
    run.add_argument("--batch-name", help="batch name (default: the manifest's name)")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".lightbox"),
        help="work files, caches and the SQLite DB (default: ./.lightbox)",
    )
    run.add_argument("--model-dir", type=Path, help="weights (default: DATA_DIR/models)")
    run.add_argument(
        "--model-store-block",
        metavar="NAME",
        help="weights, segmenter, upscaler, device and lifestyle weights of a saved ModelStore block "
        "(not with --model-dir, --segmenter or --upscaler: the block sets them)",
    )
    run.add_argument(
        "--diffusion-dir",
        type=Path,
        help="lifestyle weights in the diffusers layout: DIR/inpaint, DIR/controlnet_depth, "
        "DIR/controlnet_canny, DIR/depth, DIR/clip (check with `lightbox models check`)",
    )
    run.add_argument(
        "--review-policy", default="auto", choices=["auto"], help="auto: QC passes are approved, QC failures rejected"
    )
    run.add_argument(
        "--segmenter", help="u2netp (the default, bundled), birefnet-general or rmbg-1.4 (weights you supply)"
    )
    run.add_argument(
        "--upscaler",
        choices=["auto", "lanczos", "realesrgan-x4plus-ncnn", "realesrgan-x4plus"],
        help="default: auto",
    )
    run.add_argument("--max-attempts", type=int, default=3, help="renders per SKU before QC gives up")
    run.add_argument(
        "--max-failed-share",
        type=_share,
        default=0.2,
        help="the batch ends Failed (exit 1) when more than this share of its SKUs failed (default 0.2)",
    )
    run.add_argument("--templates-dir", type=Path, help="extra template YAML files")
    run.add_argument(
        "--profiles-dir",
        type=Path,
        help="extra or changed export profiles: one YAML file per profile, named after it",
    )
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
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines here too")


def _refuse(message: object) -> int:
    sys.stderr.write(f"lightbox: {' '.join(str(message).split())}\n")  # always one line
    return 2


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


def _diffusion(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    if not path.is_dir():
        raise ValueError(f"--diffusion-dir {path} is not a folder (expected DIR/inpaint, DIR/controlnet_depth, ...)")
    from imaging.weights_check import diffusion_layout

    return diffusion_layout(path)


def _catalog(args, data_dir: Path) -> dict:
    """The catalog: a CatalogDatabase block's name, or the URL given (SQLite by default)."""
    from catalog.db import check_url, sqlite_url

    if args.catalog_block:
        return {"catalog_block": args.catalog_block}
    return {"database_url": check_url(args.database_url or sqlite_url(data_dir / "catalog.db"))}


def _models(args, data_dir: Path) -> dict:
    """The weights and backends: a ModelStore block's, or the options' (defaults filled)."""
    if args.model_store_block:
        given = [
            f"--{n.replace('_', '-')}" for n in ("model_dir", "segmenter", "upscaler") if getattr(args, n) is not None
        ]
        if given:
            raise ValueError(f"{' and '.join(given)} given beside --model-store-block, which sets them")
        return {"model_store_block": args.model_store_block}
    return {
        "model_dir": (args.model_dir or data_dir / "models").resolve(),
        "segmenter": args.segmenter or "u2netp",
        "upscaler": args.upscaler or "auto",
    }


def run(args) -> int:
    started = time.time()
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    # Prefect reads its settings and logging config when first imported: set ours before that.
    from deployments.cli_logging import configure

    log_file = configure(out, verbose=args.verbose)
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(data_dir / "results"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.settings import PREFECT_API_URL

    from catalog.db import DatabaseUnavailable, check_url
    from catalog.manifest import ManifestError
    from imaging.errors import WeightsMissing
    from imaging.profile_files import load_profile_files
    from tasks.preflight import check_prefect_api, preflight
    from tasks.records import RunSettings
    from tasks.settings import resolve_settings

    profiles = args.profiles or DEFAULT_PROFILES
    try:
        named = RunSettings(
            data_dir=data_dir,
            **_catalog(args, data_dir),
            **_models(args, data_dir),
            max_attempts=args.max_attempts,
            templates_dir=args.templates_dir.resolve() if args.templates_dir else None,
            thresholds=_thresholds(args.thresholds),
            work_store=args.work_store,
            diffusion=_diffusion(args.diffusion_dir),
            profiles=load_profile_files(args.profiles_dir.resolve()) if args.profiles_dir else {},
        )
        if not named.resolved:  # blocks live on a server: a temporary one has none
            if not PREFECT_API_URL.value():
                raise ValueError("a block is loaded from a Prefect server: set PREFECT_API_URL (`make up` prints it)")
            check_prefect_api(PREFECT_API_URL.value())
        settings = resolve_settings(named)  # what a deployed run's load_settings does
        database_url = check_url(settings.database_url)
        preflight(
            settings,
            args.template,
            profiles,
            manifest=args.manifest,
            out_dir=out,
            prefect_api_url=PREFECT_API_URL.value(),
        )
    except (ValueError, WeightsMissing, DatabaseUnavailable) as exc:
        return _refuse(exc)

    out.mkdir(parents=True, exist_ok=True)
    from deployments.progress import ProgressPrinter, ProgressWatcher
    from flows.catalog_batch import catalog_batch

    name = args.batch_name or args.manifest.stem
    options = dict(
        manifest=str(args.manifest.resolve()),
        out_dir=str(out),
        settings=named,  # block names, not their values: the flow loads them (tasks/settings.py)
        name=name,
        template=args.template,
        profiles=profiles,
        review_policy=args.review_policy,
        shard_size=args.shard_size,
        max_failed_share=args.max_failed_share,
    )

    printer = ProgressPrinter(sys.stdout, live=sys.stdout.isatty())
    watcher = ProgressWatcher(database_url, name, printer)
    from deployments.cli_logging import set_live_line

    set_live_line(printer.clear if printer.live else None)
    watcher.start()
    try:
        state = catalog_batch(**options, return_state=True)
    finally:
        watcher.stop()
        set_live_line(None)
    return _finish(state, out, log_file, started, (ManifestError, DatabaseUnavailable))


def _finish(state, out: Path, log_file: Path, started: float, refusals: tuple[type, ...]) -> int:
    """The summary from OUT/report.json, and the exit code from the flow's final state."""
    report = _fresh_report(out / "report.json", started)
    if report is not None:
        _summary(report, out, log_file)
    if state.is_completed():
        return 0
    if report is None:
        error = state.result(raise_on_failure=False)
        if isinstance(error, refusals):  # the batch could not start (a manifest it cannot read)
            return _refuse(error)
        sys.stderr.write(f"lightbox: the batch ended {state.name}: {_one_line(state.message)}; see {log_file}\n")
        return 1
    sys.stderr.write(f"lightbox: {_one_line(state.message) or f'the batch ended {state.name}'}\n")
    return 1


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _fresh_report(path: Path, started: float) -> dict | None:
    """report.json when this run wrote it (not one left by an earlier run into OUT)."""
    try:
        if path.stat().st_mtime < started - 1:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _summary(report: dict, out: Path, log_file: Path) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items())
    sys.stdout.write(
        f"batch {report['batch_id']}: {counts} in {report['wall_seconds']:.1f} s\n"
        f"images:        {out}/<sku>/<profile>.<ext>\n"
        f"contact sheet: {out / 'contact_sheet.png'}\n"
        f"report:        {out / 'report.json'}\n"
        f"QC report:     {out / 'report.html'}\n"
        f"log:           {log_file}\n"
        f"per SKU:       lightbox report {out}\n"
    )
    sys.stdout.flush()
