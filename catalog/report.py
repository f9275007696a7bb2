"""report.json and the self-contained HTML QC report, built from the database (the truth)."""

from __future__ import annotations

import base64
import html
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import repository as repo
from catalog.models import Batch, Export, Sku
from catalog.states import SkuState

STATUS_COLOUR = {"pass": "green", "warn": "amber", "fail": "red"}


def build_report(session: Session, batch_id: str, consistency: dict | None = None) -> dict:
    """One entry per SKU: final state, reason, timings, QC per profile, outputs."""
    batch = session.get(Batch, batch_id)
    consistency = consistency or {}
    skus = []
    for row in repo.batch_skus(session, batch_id):
        qc = {}
        confidence = preview = None
        for render, result in repo.latest_qc(session, row.id):
            confidence = render.segment_confidence
            preview = preview or render.uri
            if result is not None:
                qc[render.profile] = {
                    "status": result.status,
                    "failing": result.failing,
                    "metrics": result.metrics,
                    "checks": result.checks,
                    "thresholds_version": result.thresholds_version,
                }
        exports = session.scalars(
            select(Export).where(_delivered_for(row), Export.status == "done").order_by(Export.completed_at)
        )
        flags = consistency.get(str(row.id), [])
        skus.append(
            {
                "sku": row.sku,
                "dir": row.dirname,
                "title": row.title,
                "template": row.template,
                "state": row.state,
                "reason": row.reason,
                "attempts": row.attempts,
                "segment_confidence": confidence,
                "timings": row.timings or {},
                "qc": qc,
                "consistency_flags": flags,
                "status": _status(row.state, qc, flags),
                "outputs": {e.profile: e.destination_key for e in exports},
                "preview": preview,
            }
        )
    counts = Counter(s["state"] for s in skus)
    return {
        "batch_id": batch.id,
        "name": batch.name,
        "state": batch.state,
        "template": batch.template,
        "profiles": batch.profiles,
        "review_policy": batch.review_policy,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.updated_at.isoformat(),
        "wall_seconds": round((batch.updated_at - batch.created_at).total_seconds(), 2),
        "counts": {state: counts.get(state, 0) for state in ("exported", "rejected", "failed")}
        | {state: counts[state] for state in ("held", "approved") if counts.get(state)},
        "skus": skus,
    }


def _delivered_for(row: Sku):
    """Which export rows show where a SKU's images are. An exported SKU's files may have
    been delivered by an earlier batch of the same SKU (a re-run skips them, a crashed run
    left the claim this batch completed): those rows count. Otherwise only its own."""
    if row.state != SkuState.exported.value:
        return Export.sku_id == row.id
    return Export.sku_id.in_(select(Sku.id).where(Sku.sku == row.sku, Sku.dirname == row.dirname))


def _status(state: str, qc: dict, flags: list) -> str:
    """green / amber / red for the contact sheet and the HTML report."""
    if state != "exported":
        return "red"
    if flags or any(p["status"] == "warn" for p in qc.values()):
        return "amber"
    return "green"


def sku_label(entry: dict) -> str:
    """The short text under a thumbnail: the reason (failing defects), else the warnings
    (by defect, as quality.defects names them), else the state."""
    if entry["reason"]:
        return entry["reason"]
    warn = [
        f"{p}: {c.get('reason') or c['name']}"
        for p, q in entry["qc"].items()
        for c in q["checks"]
        if c.get("status") == "warn"
    ]
    return ", ".join(dict.fromkeys(warn + entry["consistency_flags"])) or entry["state"]


def render_html(report: dict, thumbnails: dict[str, bytes]) -> str:
    """A single HTML file (thumbnails inlined as data URIs), failing SKUs first."""
    order = {"red": 0, "amber": 1, "green": 2}
    rows = []
    for entry in sorted(report["skus"], key=lambda e: order[e["status"]]):
        thumb = thumbnails.get(entry["dir"])
        img = f'<img src="data:image/jpeg;base64,{base64.b64encode(thumb).decode()}" width="160">' if thumb else "—"
        figures = "".join(
            f"<div><b>{html.escape(profile)}</b> {html.escape(q['status'])}"
            + "".join(
                f"<br>{html.escape(c['name'])}: {html.escape(str(c.get('value')))} ({html.escape(c.get('status', ''))})"
                for c in q["checks"]
            )
            + "</div>"
            for profile, q in entry["qc"].items()
        )
        rows.append(
            f'<tr class="{entry["status"]}"><td>{img}</td><td>{html.escape(entry["sku"])}</td>'
            f"<td>{html.escape(entry['state'])}</td><td>{html.escape(sku_label(entry))}</td>"
            f"<td>{figures}</td></tr>"
        )
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Lightbox QC report: {html.escape(report["name"])}</title><style>
body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top;font-size:13px}}
tr.red td:first-child{{border-left:6px solid #d33}} tr.amber td:first-child{{border-left:6px solid #e90}}
tr.green td:first-child{{border-left:6px solid #3a3}}</style></head><body>
<h1>QC report: {html.escape(report["name"])}</h1>
<p>Batch {html.escape(report["batch_id"])} — {html.escape(counts)} — {report["wall_seconds"]} s</p>
<table><tr><th>image</th><th>SKU</th><th>state</th><th>why / flags</th><th>QC figures</th></tr>
{"".join(rows)}</table></body></html>"""
