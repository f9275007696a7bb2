"""write_report and publish_summary: report.json, report.html, contact_sheet.png, artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import cv2
import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact

from catalog.db import session_scope
from catalog.report import build_report, render_html, sku_label
from imaging.contact_sheet import Tile, contact_sheet
from tasks.records import RunSettings
from tasks.workdir import WorkStore, decode_work_image, work_store, write_atomic


def _thumbnail(ref: str | None, side: int, store: WorkStore) -> np.ndarray | None:
    try:
        rgb = decode_work_image(store.get(ref), 3, "render", reduce=4) if ref else None
    except (FileNotFoundError, ValueError):  # gone (lightbox gc) or unreadable: the tile says so
        rgb = None
    if rgb is None:
        return None
    scale = side / max(rgb.shape[:2])
    return cv2.resize(
        rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA
    )


@task(name="start_progress", persist_result=True)
def start_progress(batch_id: str, name: str) -> UUID:
    """The batch's progress bar (a persisted result: a resumed run keeps updating this one)."""
    return create_progress_artifact(
        0.0, key=f"batch-progress-{batch_id[:8]}", description=f"Batch {name}: SKUs rendered and scored"
    )


@task(name="write_report", retries=2, retry_delay_seconds=2)
def write_report(batch_id: str, out_dir: str, settings: RunSettings, consistency: dict) -> dict:
    """Build the report from the database and write the three files next to the images."""
    with session_scope(settings.database_url) as s:
        report = build_report(s, batch_id, consistency)
    out = Path(out_dir)
    tiles, thumbs = [], {}
    for entry in report["skus"]:
        image = _thumbnail(entry["preview"], 256, work_store(settings))
        tiles.append(
            Tile(sku=entry["sku"], image=image, state=entry["state"], status=entry["status"], label=sku_label(entry))
        )
        if image is not None:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
            thumbs[entry["dir"]] = buf.tobytes()
    sheet = contact_sheet(tiles)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    write_atomic(out / "contact_sheet.png", png.tobytes())
    write_atomic(out / "report.html", render_html(report, thumbs).encode("utf-8"))
    write_atomic(out / "report.json", json.dumps(report, indent=2, default=str).encode("utf-8"))
    return report


@task(name="publish_summary")
def publish_summary(report: dict) -> None:
    """The batch's table artifact (pass/warn/fail per check) and a markdown summary."""
    rows = []
    for entry in report["skus"]:
        row = {"sku": entry["sku"], "state": entry["state"], "status": entry["status"], "why": sku_label(entry)}
        for profile, qc in entry["qc"].items():
            for check in qc["checks"]:
                row[f"{profile}:{check['name']}"] = check.get("status")
        rows.append(row)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (":" in k, k))
    create_table_artifact(
        [{c: r.get(c, "") for c in columns} for r in rows],
        key=f"batch-{report['batch_id'][:8]}-qc",
        description=f"QC per SKU and check for batch {report['name']}",
    )
    counts = " · ".join(f"**{n}** {s}" for s, n in report["counts"].items())
    create_markdown_artifact(
        f"# Batch {report['name']}\n\n{counts} in {report['wall_seconds']} s\n\n"
        + "\n".join(f"- `{e['sku']}` — {e['state']}: {sku_label(e)}" for e in report["skus"] if e["status"] != "green"),
        key=f"batch-{report['batch_id'][:8]}-summary",
        description="Batch outcome",
    )
