"""report.json, built from the database (the truth); catalog/report_html.py renders it as report.html."""

from __future__ import annotations

import json
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
        for render, result in repo.latest_qc(session, row.id, repo.kept_attempt(row)):
            confidence = render.segment_confidence
            preview = preview or render.uri
            if result is not None:
                qc[render.profile] = {
                    "status": result.status,
                    "failing": result.failing,
                    "metrics": result.metrics,
                    "checks": result.checks,
                    "thresholds_version": result.thresholds_version,
                    "provenance": _provenance(render),
                }
        exports = list(
            session.scalars(
                select(Export).where(_delivered_for(row), Export.status == "done").order_by(Export.completed_at)
            )
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
                "exports": [_export_entry(e, qc) for e in exports],
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


def report_json(report: dict) -> bytes:
    """report.json's bytes: the batch's fields indented, then one line per SKU. Python's C
    JSON encoder runs only without ``indent``; indenting every SKU's figures ran the
    pure-Python one (8 s of write_report at 400 SKUs on a loaded machine)."""
    head = json.dumps({**{k: v for k, v in report.items() if k != "skus"}, "skus": []}, indent=2, default=str)
    before, _, after = head.rpartition('"skus": []')  # the last key: its last occurrence
    skus = ",\n    ".join(json.dumps(entry, default=str) for entry in report.get("skus", []))
    return (before + ('"skus": [\n    ' + skus + "\n  ]" if skus else '"skus": []') + after).encode("utf-8")


def _provenance(render) -> str | None:
    """The IPTC digital source type written into the render's file (imaging/provenance.py;
    recorded per profile with the render's model versions), or None (older renders)."""
    return ((render.model_versions or {}).get("provenance") or {}).get(render.profile)


def _export_entry(export: Export, qc: dict) -> dict:
    """One delivered file: its profile, the marketplace rules the gate checked on it (the
    ``market.*`` checks and the source-resolution rule) and the provenance it carries."""
    graded = qc.get(export.profile, {})
    return {
        "profile": export.profile,
        "key": export.destination_key,
        "rules": [
            c["name"]
            for c in graded.get("checks", [])
            if c["name"].startswith("market.") or c["name"] == "source.resolution"
        ],
        "provenance": graded.get("provenance"),
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


_ORDER = {"red": 0, "amber": 1, "green": 2}


def qc_table(report: dict, budget: int) -> tuple[list[dict], int]:
    """The batch's QC table for the Prefect UI: one row per SKU (sku, state, status, why)
    and, per profile, the checks that did not pass ("fail: cut.lost_part; warn: edge.halo",
    "pass" when none). Red SKUs come first, then amber, then green (manifest order within
    each), and rows stop before their JSON passes ``budget`` bytes (the UI's artifact event
    has a size cap; a table of every check's status was 1.63 MB at 400 SKUs): ``(rows, SKUs
    left out)``. Every SKU and every check's figures stay in report.json and report.html."""
    profiles = sorted({p for e in report["skus"] for p in e["qc"]})
    entries = sorted(report["skus"], key=lambda e: _ORDER.get(e["status"], 0))
    rows, used = [], 2
    for entry in entries:
        row = {"sku": entry["sku"], "state": entry["state"], "status": entry["status"], "why": sku_label(entry)}
        for profile in profiles:
            row[profile] = _not_passed(entry["qc"].get(profile))
        size = len(json.dumps(row)) + 2  # and the ", " before the next row
        if used + size > budget:
            break
        rows.append(row)
        used += size
    return rows, len(entries) - len(rows)


def _not_passed(qc: dict | None) -> str:
    if qc is None:
        return "not rendered"
    named = {s: [c["name"] for c in qc["checks"] if c.get("status") == s] for s in ("fail", "warn")}
    return "; ".join(f"{s}: {', '.join(n)}" for s, n in named.items() if n) or "pass"
