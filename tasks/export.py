"""export_sku: encode each approved render for its profile and deliver it exactly once."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
from prefect import task

from blocks.destinations import ExportContext, LocalFolderDestination
from catalog import repository as repo
from catalog.db import session_scope
from catalog.states import SkuState
from imaging.profiles import ExportProfile, encode_for_profile
from imaging.types import Composite, Placement
from tasks.bookkeeping import DB_RETRIES
from tasks.common import profiles_for, retry_transient
from tasks.records import ExportInfo, RenderInfo, RunSettings, SkuJob
from tasks.results import SkuOutcome
from tasks.workdir import read_png

CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


def encode_render(render: RenderInfo, profile: ExportProfile) -> bytes:
    """The profile's file bytes for a render. Deterministic (fixed ICC, no timestamps)."""
    canvas = read_png(render.path, 4 if profile.background == "transparent" else 3)
    alpha = read_png(render.alpha_path, 1).astype(np.float32) / 255.0
    if canvas.shape[2] == 4:
        canvas = canvas[..., :3]
    composite = Composite(rgb=canvas, product_alpha=alpha,
                          placement=Placement(render.scale, render.offset_x, render.offset_y))
    return encode_for_profile(profile, composite)


def deliver(destination, database_url: str, *, sku_id: int, render_id: int | None, profile: str,
            key: str, data: bytes, content_type: str, context: ExportContext) -> ExportInfo:
    """Claim -> put -> complete. A claim that is already done skips the upload; a pending one
    (a crash between put and complete) is finished: puts are idempotent per key and bytes."""
    started = time.perf_counter()
    sha = hashlib.sha256(data).hexdigest()
    with session_scope(database_url) as s:
        row, done = repo.claim_export(s, sku_id=sku_id, render_id=render_id, profile=profile,
                                      destination=destination.destination_id, key=key,
                                      content_sha256=sha, size=len(data))
        export_id = row.id
    if not done:
        external_id = destination.put(key, data, content_type=content_type, sha256=sha, context=context)
        with session_scope(database_url) as s:
            repo.complete_export(s, export_id, external_id)
    return ExportInfo(profile=profile, key=key, destination=destination.destination_id, sha256=sha,
                      size=len(data), skipped=done, seconds=round(time.perf_counter() - started, 4))


def encode_mask(mask: np.ndarray) -> bytes:
    """8-bit single-channel PNG on the source photo's pixel grid."""
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OSError("could not encode the mask")
    return buf.tobytes()


@task(name="export_sku", task_run_name="export-{job.sku}", retry_condition_fn=retry_transient,
      **DB_RETRIES)
def export_sku(job: SkuJob, outcome: SkuOutcome, out_dir: str, settings: RunSettings) -> list[ExportInfo]:
    """Every profile's image plus mask.png to ``out_dir/<sku>/``; then the SKU is exported."""
    started = time.perf_counter()
    destination = LocalFolderDestination(base_path=Path(out_dir))
    profiles = profiles_for(settings)
    results = []
    for render, qc in zip(outcome.renders, outcome.qcs, strict=True):
        profile = profiles[render.profile]
        data = Path(qc.encoded_path).read_bytes()  # what QC graded is what ships
        context = ExportContext(sku=job.sku, title=job.title, alt_text=job.title, profile=render.profile)
        key = destination.object_key(job.dirname, profile.filename())
        results.append(deliver(destination, settings.database_url, sku_id=job.sku_id, render_id=None,
                               profile=render.profile, key=key, data=data,
                               content_type=CONTENT_TYPES[profile.format], context=context))
    if outcome.mask_path:
        mask = encode_mask(read_png(outcome.mask_path, 1))
        results.append(deliver(destination, settings.database_url, sku_id=job.sku_id, render_id=None,
                               profile="mask", key=destination.object_key(job.dirname, "mask.png"),
                               data=mask, content_type="image/png",
                               context=ExportContext(sku=job.sku, profile="mask")))
    skipped = all(r.skipped for r in results)
    with session_scope(settings.database_url) as s:
        repo.set_sku_state(s, job.sku_id, SkuState.exported)
        repo.add_timing(s, job.sku_id, "export",
                        "skipped (already exported)" if skipped else round(time.perf_counter() - started, 4))
    return results
