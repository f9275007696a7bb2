"""write_report and publish_summary: report.json, report.html, contact_sheet.png, artifacts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from uuid import UUID

import cv2
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact

from catalog.db import session_scope
from catalog.report import build_report, qc_table, report_json, sku_label
from catalog.report_html import render_report
from catalog.report_images import batch_thumbs, image_refs
from imaging.contact_sheet import Tile, contact_sheet
from tasks.artifacts import ARTIFACT_BYTES, artifact_key
from tasks.records import RunSettings
from tasks.workdir import work_store, write_atomic


@task(name="start_progress", persist_result=True)
def start_progress(batch_id: str, name: str) -> UUID:
    """The batch's progress bar, key ``batch-progress-<name>`` (one history per batch name);
    a persisted result: a resumed run keeps updating this one. The batch flow moves it, as
    its shards finish (flows/dispatch.py), never backwards."""
    return create_progress_artifact(
        0.0,
        key=artifact_key("batch-progress", name),
        description=f"Batch {name} ({batch_id[:8]}): SKUs rendered and scored",
    )


@task(name="write_report", retries=2, retry_delay_seconds=2)
def write_report(batch_id: str, out_dir: str, settings: RunSettings, consistency: dict) -> dict:
    """Build the report from the database and write the three files next to the images:
    report.json, report.html (catalog/report_html.py; thumbnails of each SKU's photo with
    its mask outline and of its renders, read through the work store) and contact_sheet.png."""
    store = work_store(settings)
    with session_scope(settings.database_url) as s:
        report = build_report(s, batch_id, consistency)
        refs = image_refs(s, batch_id, lambda sha: store.ref(sha, "source"))
    out = Path(out_dir)
    thumbs = batch_thumbs(refs, store.get)  # the HTML's thumbnails and the sheet's tiles, one decode each
    tiles = [
        Tile(
            sku=e["sku"],
            image=thumbs[e["dir"]].tile if e["dir"] in thumbs else None,
            state=e["state"],
            status=e["status"],
            label=sku_label(e),
        )
        for e in report["skus"]
    ]
    sheet = contact_sheet(tiles)
    del tiles  # the sheet holds them now (196 kB a SKU as arrays)
    thumbs = {key: replace(t, tile=None) for key, t in thumbs.items()}
    # BGR in place: a copy of a 400-SKU sheet (23060 x 1692 px) is another 117 MB at the peak
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR, dst=sheet))
    del sheet
    write_atomic(out / "contact_sheet.png", png.tobytes())
    del png
    html = render_report(report, thumbs)
    write_atomic(out / "report.html", html.encode("utf-8"))
    write_atomic(out / "report.json", report_json(report))
    return report


@task(name="publish_summary")
def publish_summary(report: dict, outcome: str = "", links: dict[str, str] | None = None) -> None:
    """The batch's table artifact (key ``batch-qc-<name>``: per SKU, the checks that did not
    pass in each profile; ``catalog.report.qc_table``, kept under Prefect's event size) and a
    markdown summary (``batch-summary-<name>``: the final state ``outcome``, the counts, the
    links to the report and contact sheet, the SKUs that need a look). Keys are per batch
    name, so the Artifacts page keeps one history per nightly, backfill... batch."""
    rows, left_out = qc_table(report, ARTIFACT_BYTES)
    more = f"; {left_out} more SKUs, the greenest, in report.html" if left_out else ""
    create_table_artifact(
        rows,
        key=artifact_key("batch-qc", report["name"]),
        description=f"QC per SKU for batch {report['name']} ({report['batch_id'][:8]}), worst first{more}",
    )
    counts = " · ".join(f"**{n}** {s}" for s, n in report["counts"].items())
    counts_table = "| state | SKUs |\n|---|---|\n" + "\n".join(f"| {s} | {n} |" for s, n in report["counts"].items())
    link_lines = "\n".join(f"- [{kind}]({url})" for kind, url in (links or {}).items())
    create_markdown_artifact(
        f"# Batch {report['name']}: {outcome or report['state']}\n\n{counts} in {report['wall_seconds']} s\n\n"
        f"{counts_table}\n\n{link_lines}\n\n" + _needing_a_look(report),
        key=artifact_key("batch-summary", report["name"]),
        description=f"Batch {report['name']} ({report['batch_id'][:8]}): {outcome or report['state']}",
    )


SUMMARY_LINES = 200  # SKUs named in the summary; the rest are counted (the artifact's event has a size cap)


def _needing_a_look(report: dict) -> str:
    lines = [f"- `{e['sku']}` — {e['state']}: {sku_label(e)}" for e in report["skus"] if e["status"] != "green"]
    more = len(lines) - SUMMARY_LINES
    return "\n".join(lines[:SUMMARY_LINES] + ([f"- … and {more} more in report.html"] if more > 0 else []))
