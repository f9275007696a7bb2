"""Submit a catalog to the running stack: now, or in the next off-peak window.

    python -m deployments.submit MANIFEST [--name NAME] [--urgent | --backfill]
        [--template white_studio] [--profile amazon-main ...] [--large-batch 200]
        [--deployment catalog-batch/on-demand]

Each batch is planned with ``catalog.offpeak`` (the window is prefect.yaml's
``definitions.offpeak``, the one the nightly schedule uses): ``--urgent`` runs now on the
``urgent`` queue; ``--backfill`` waits for the window on the ``backfill`` queue; a batch of
at least ``--large-batch`` SKUs submitted during the day is scheduled for the next window;
a smaller one runs now on ``standard``. Rows of a CSV manifest whose ``priority`` is
``urgent`` go at once to the urgent queue as a batch of their own, the rest as planned: the
two manifests are written next to yours (``<name>.urgent-<hash>.csv`` and
``<name>.rest-<hash>.csv``, so image paths stay relative to the same folder).

Needs ``PREFECT_API_URL`` (``make up`` prints it). The manifest path must be readable by
the workers (one machine, or a shared volume).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

import yaml

from catalog.manifest import ManifestError, load_manifest
from catalog.offpeak import OffPeakWindow
from catalog.unzip import remove_unpacked

ROOT = Path(__file__).resolve().parents[1]


def offpeak_window(prefect_yaml: Path = ROOT / "prefect.yaml") -> OffPeakWindow:
    offpeak = yaml.safe_load(prefect_yaml.read_text())["definitions"]["offpeak"]
    return OffPeakWindow(time.fromisoformat(offpeak["start"]), time.fromisoformat(offpeak["end"]), offpeak["timezone"])


def split_urgent(manifest: Path, encoding: str, urgent_rows: set[int]) -> tuple[Path, Path]:
    """Two CSVs next to ``manifest``: its urgent data rows, and every other row."""
    rows = list(csv.reader(io.StringIO(manifest.read_bytes().decode(encoding), newline="")))
    header, data = rows[0], rows[1:]
    parts = {
        "urgent": [r for n, r in enumerate(data, 1) if n in urgent_rows],
        "rest": [r for n, r in enumerate(data, 1) if n not in urgent_rows],
    }
    paths = []
    for part, part_rows in parts.items():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *part_rows])
        data_bytes = buffer.getvalue().encode("utf-8")
        path = manifest.with_name(f"{manifest.stem}.{part}-{hashlib.sha256(data_bytes).hexdigest()[:8]}.csv")
        path.write_bytes(data_bytes)
        paths.append(path)
    return paths[0], paths[1]


def plan_parts(path: Path, args: argparse.Namespace, window: OffPeakWindow, now: datetime) -> list[dict]:
    """[{manifest, name, skus, plan}] for the batches this submission becomes."""
    manifest = load_manifest(path, unpack_dir=Path(args.unpack_dir))
    remove_unpacked([manifest.unpacked] if manifest.unpacked else [])  # only counted here; the batch unpacks its own
    urgent_rows = {e.row for e in manifest.entries if e.problem is None and e.priority == "urgent"}
    name = args.name or path.stem
    if args.urgent or args.backfill or not urgent_rows or len(urgent_rows) == len(manifest.entries):
        urgent = args.urgent or bool(urgent_rows)
        plan = window.plan_run(
            now, len(manifest.entries), urgent, args.large_batch, backfill=args.backfill and not urgent
        )
        return [{"manifest": path, "name": name, "skus": len(manifest.entries), "plan": plan}]
    if path.suffix.lower() != ".csv":
        raise ManifestError(
            "urgent rows inside a ZIP: unpack it and submit the CSV, or pass --urgent to run the whole catalog now"
        )
    urgent_csv, rest_csv = split_urgent(path, manifest.encoding, urgent_rows)
    rest = len(manifest.entries) - len(urgent_rows)
    return [
        {
            "manifest": urgent_csv,
            "name": f"{name}-urgent",
            "skus": len(urgent_rows),
            "plan": window.plan_run(now, len(urgent_rows), True, args.large_batch),
        },
        {"manifest": rest_csv, "name": name, "skus": rest, "plan": window.plan_run(now, rest, False, args.large_batch)},
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deployments.submit", description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", type=Path)
    p.add_argument("--name", help="batch name (default: the manifest's name)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--urgent", action="store_true", help="the whole catalog now, urgent queue")
    when.add_argument("--backfill", action="store_true", help="the off-peak window, backfill queue")
    p.add_argument("--template", default="white_studio")
    p.add_argument("--profile", action="append", dest="profiles")
    p.add_argument(
        "--large-batch", type=int, default=200, help="SKUs from which a day-time batch waits for the off-peak window"
    )
    p.add_argument("--deployment", default="catalog-batch/on-demand")
    p.add_argument("--unpack-dir", default=".lightbox/unpacked", help="where a ZIP is opened to count it")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from prefect.deployments import run_deployment
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        sys.stderr.write("submit: PREFECT_API_URL is not set: point it at the stack's server\n")
        return 2
    path = args.manifest.resolve()
    try:
        parts = plan_parts(path, args, offpeak_window(), datetime.now(UTC))
    except (ManifestError, ValueError) as exc:
        sys.stderr.write(f"submit: {exc}\n")
        return 2
    for part in parts:
        plan = part["plan"]
        parameters = {"manifest": str(part["manifest"]), "name": part["name"], "template": args.template}
        if args.profiles:
            parameters["profiles"] = args.profiles
        run = run_deployment(
            args.deployment, parameters=parameters, scheduled_time=plan.when, work_queue_name=plan.queue, timeout=0
        )
        sys.stdout.write(
            f"{part['name']}: {part['skus']} SKUs -> {plan.queue} at "
            f"{plan.when.isoformat(timespec='minutes')} ({plan.reason}); flow run {run.name}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
