"""publish_review: what a reviewer sees in the Prefect UI while a batch waits — a markdown
artifact with every held SKU's thumbnail, QC figures and failing checks, and the short text
at the top of the review form.

Thumbnails are 160 px JPEGs. The markdown needs an image URL the UI can load: a data URI
by default (no storage needed), or a presigned URL from an ``S3Destination`` block
(``thumbnail_store``), the production choice for large batches.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import cv2
import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact

from blocks.destinations import ExportContext, S3Destination
from catalog.report_images import read_preview
from tasks.artifacts import ARTIFACT_BYTES
from tasks.bookkeeping import REPLAYED
from tasks.export import load_destination
from tasks.records import RunSettings
from tasks.results import ReviewItem
from tasks.review import CHANGES, ReviewHold
from tasks.workdir import WorkStore, work_store

THUMB_SIDE = 160
THUMB_QUALITY = 80
MAX_URL_EXPIRY_S = 7 * 24 * 3600  # S3's limit on a presigned URL
# The review table stays under ARTIFACT_BYTES (tasks/artifacts.py: Prefect's event cap), its
# data-URI thumbnails (2-8 kB each) under INLINE_BYTES; more need thumbnail_store
# (presigned URLs, ~0.6 kB each).
INLINE_BYTES = 800_000
MAX_LISTED = 50  # SKUs named in the form's text; the artifact lists them (as far as ARTIFACT_BYTES goes)
HEADLINE = (
    ("colour.delta_e_mean", "ΔE00 mean"),
    ("colour.delta_e_p95", "ΔE00 p95"),
    ("edge.halo", "halo"),
    ("market.fill", "fill off target"),
    ("segment.confidence", "cut confidence"),
)
_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[](){}#|!"} | {"<": "&lt;", ">": "&gt;"})


def md(text: str | None) -> str:
    """Text safe inside a markdown table cell (no markup, no HTML, one line)."""
    return " ".join((text or "").split()).translate(_MD_SPECIAL)


def thumbnail_jpeg(path: str, side: int = THUMB_SIDE, store: WorkStore | None = None) -> bytes:
    """A small JPEG of a render (a reference in ``store``, or a local path), made from its
    stored preview when it has one (``catalog.report_images.read_preview``: no decode of the
    full export); a transparent render is shown over white (its preview, on the checkerboard)."""
    try:
        data = read_preview(store.get, path) if store is not None else Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"render missing: {path}") from None
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError(f"render unreadable: {path}")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        alpha = pixels[..., 3:].astype(np.float32) / 255.0
        pixels = (pixels[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    scale = side / max(pixels.shape[:2])
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    if not ok:
        raise OSError(f"could not encode a thumbnail of {path}")
    return buf.tobytes()


def _figures(item: ReviewItem) -> tuple[str, str]:
    """(QC status and headline figures per profile, failing and warning checks), one per line."""
    status, checks = [], []
    for qc in item.outcome.qcs:
        values = [
            f"{label} {qc.metrics[key]:.3g}" for key, label in HEADLINE if isinstance(qc.metrics.get(key), int | float)
        ]
        status.append("<br>".join([f"**{md(qc.profile)}**: {qc.status}", *values]))
        where = f"{md(qc.profile)}:" if len(item.outcome.qcs) > 1 else ""
        for check in qc.checks:
            if check.get("status") in ("fail", "warn"):
                value = check.get("value")
                shown = f"{value:.3g}" if isinstance(value, int | float) else md(str(value))
                limit = (check.get("threshold") or {}).get(check["status"])
                checks.append(
                    f"**{check['status']}** {where}{md(check['name'])} {shown}"
                    + (f" (limit {limit})" if limit is not None else "")
                )
    return "<br>".join(status), "<br>".join(checks) or "none"


def _image_url(
    item: ReviewItem, batch_id: str, store: S3Destination | None, expires: int, work: WorkStore | None
) -> str | None:
    renders = item.outcome.renders
    if not renders:
        return None
    data = thumbnail_jpeg(renders[0].path, store=work)
    if store is None:
        return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    sha = hashlib.sha256(data).hexdigest()
    key = store.object_key(f"review-{batch_id}", f"{item.job.dirname}-{sha[:12]}.jpg")
    store.put(
        key,
        data,
        content_type="image/jpeg",
        sha256=sha,
        context=ExportContext(sku=item.job.sku, profile="review-thumbnail"),
    )
    return store.presigned_url(key, expires=expires)


@task(name="publish_review", retries=2, retry_delay_seconds=2, **REPLAYED)
def publish_review(
    batch_id: str,
    batch_name: str,
    hold: ReviewHold,
    notes: list[str],
    rounds_left: int,
    thumbnail_store: str | None = None,
    url_expires_s: int = MAX_URL_EXPIRY_S,
    settings: RunSettings | None = None,
) -> str:
    """Publish the round's review artifact; return the text shown at the top of the form."""
    store = None
    if thumbnail_store:
        store = load_destination(thumbnail_store)
        if not isinstance(store, S3Destination):
            raise ValueError(f"thumbnail_store {thumbnail_store!r} is not an S3 destination block")
    expires = max(1, min(url_expires_s, MAX_URL_EXPIRY_S))
    key = f"review-{batch_id[:8]}-round-{hold.round}"
    rows = ["| image | SKU | QC figures | failing / warning checks |", "|---|---|---|---|"]
    used = sum(len(r) + 1 for r in rows)
    for number, item in enumerate(hold.held):
        if store is None and used >= INLINE_BYTES:
            image = "not shown: no room for more inline thumbnails; set thumbnail_store"
        else:
            url = _image_url(item, batch_id, store, expires, work_store(settings) if settings else None)
            image = f"![{md(item.job.sku)}]({url})" if url else "no render"
        status, checks = _figures(item)
        title = f"<br>{md(item.job.title)}" if item.job.title else ""
        row = (
            f"| {image} | **{md(item.job.sku)}**{title}<br>{md(item.outcome.reason) or 'passed QC'} "
            f"| {status} | {checks} |"
        )
        if used + len(row.encode("utf-8")) + 1 > ARTIFACT_BYTES:
            left = len(hold.held) - number
            rows.append(f"| | and {left} more held SKUs: too many for one artifact (report.html lists them) | | |")
            break
        rows.append(row)
        used += len(row.encode("utf-8")) + 1
    then = (
        f"SKUs sent back now are re-rendered and come back to the next round ({rounds_left} more in this run)."
        if rounds_left
        else "This is the last round with re-renders in this run: SKUs sent "
        "back now are re-rendered and wait for the next run of this batch."
    )
    intro = (
        f"Batch **{md(batch_name)}** (`{batch_id}`), review round {hold.round}: "
        f"**{len(hold.held)}** SKU(s) wait for a decision. {then}"
    )
    warnings = "".join(f"\n> {md(n)}" for n in notes)
    create_markdown_artifact(
        f"# Review hold\n\n{intro}\n{warnings}\n\n" + "\n".join(rows),
        key=key,
        description=f"Held SKUs of batch {batch_name}, round {hold.round}",
    )
    listing = "\n".join(f"- **{md(i.job.sku)}**: {md(i.outcome.reason) or 'passed QC'}" for i in hold.held[:MAX_LISTED])
    if len(hold.held) > MAX_LISTED:
        listing += f"\n- and {len(hold.held) - MAX_LISTED} more (see the artifact)"
    return (
        f"### Review round {hold.round}\n{intro}\n{warnings}\n\nThumbnails and QC figures: "
        f"artifact **{key}**.\n\n{listing}\n\nApprove all approves every held SKU not listed "
        f"under reject or re-render; SKUs left unlisted stay held. Re-render changes: "
        f"{', '.join(CHANGES)} (pick them, or name them in the note)."
    )
