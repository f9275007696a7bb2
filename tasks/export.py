"""export_sku: deliver each approved SKU's images to every configured destination, exactly
once. The protocol (a lease per destination key, taken by compare-and-set; clean-up after
an unfinished attempt; put; complete) is ``catalog.delivery``; this module wires it.

Destinations are ``DestinationSpec`` records: the run's ``out_dir`` as a local folder, or a
saved block (``LocalFolderDestination``, ``S3Destination``, ``ShopifyStore``) by its slug.
Blocks are loaded inside the task that uses them, never passed between tasks (they hold
credentials, and task results are persisted)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from prefect import task
from prefect.blocks.core import Block

from blocks.destinations import ExportContext, LocalFolderDestination, S3Destination
from blocks.shopify import ShopifyStore
from catalog import delivery
from catalog import repository as repo
from catalog.db import session_scope
from catalog.states import SkuState
from imaging.profiles import ExportProfile
from tasks.bookkeeping import DB_RETRIES
from tasks.common import profiles_for, retry_transient
from tasks.records import DestinationSpec, ExportInfo, RunSettings, SkuJob
from tasks.results import SkuOutcome
from tasks.workdir import decode_work_image, work_store

CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


def deliver(
    destination,
    database_url: str,
    *,
    sku_id: int,
    render_id: int | None,
    profile: str,
    key: str,
    data: bytes,
    content_type: str,
    context: ExportContext,
) -> ExportInfo:
    """``catalog.delivery.deliver`` (claim under a lease, clean up, put, complete), timed."""
    started = time.perf_counter()
    done = delivery.deliver(
        destination,
        database_url,
        sku_id=sku_id,
        render_id=render_id,
        profile=profile,
        key=key,
        data=data,
        content_type=content_type,
        context=context,
    )
    return ExportInfo(
        profile=profile,
        key=key,
        destination=destination.destination_id,
        sha256=done.sha256,
        size=len(data),
        skipped=done.skipped,
        seconds=round(time.perf_counter() - started, 4),
    )


def encode_mask(mask: np.ndarray) -> bytes:
    """8-bit single-channel PNG on the source photo's pixel grid."""
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OSError("could not encode the mask")
    return buf.tobytes()


DESTINATION_TYPES = (LocalFolderDestination, S3Destination, ShopifyStore)


def load_destination(name: str):
    """A saved destination block by ``"<block-type-slug>/<block-name>"``."""
    if name.count("/") != 1:
        raise ValueError(
            f"destination {name!r} is not '<block-type-slug>/<block-name>', e.g. "
            "'lightbox-s3-destination/catalog-assets'"
        )
    block = Block.load(name)
    if not isinstance(block, DESTINATION_TYPES):
        raise ValueError(
            f"block {name!r} is a {type(block).__name__}, not an export destination "
            f"({', '.join(t.__name__ for t in DESTINATION_TYPES)})"
        )
    return block


def open_destination(spec: DestinationSpec, out_dir: str):
    if spec.block is None:
        return LocalFolderDestination(base_path=Path(out_dir).resolve())
    return load_destination(spec.block)


def sends_mask(spec: DestinationSpec, destination) -> bool:
    return spec.mask if spec.mask is not None else not isinstance(destination, ShopifyStore)


@task(name="check_destinations", retries=2, retry_delay_seconds=2)
def check_destinations(destinations: list[DestinationSpec], out_dir: str, profiles: list[str]) -> None:
    """Before any work: every destination block loads, and its profiles are the batch's."""
    for spec in destinations:
        destination = open_destination(spec, out_dir)
        unknown = sorted(set(spec.profiles or []) - set(profiles))
        if unknown:
            raise ValueError(
                f"destination {spec.block or out_dir}: profile(s) {', '.join(unknown)} "
                f"are not rendered in this batch ({', '.join(profiles)})"
            )
        if isinstance(destination, ShopifyStore) and spec.mask:
            raise ValueError(f"destination {spec.block}: a Shopify product takes images, not masks")


def _deliver_all(
    destination,
    spec: DestinationSpec,
    job: SkuJob,
    outcome: SkuOutcome,
    mask: bytes | None,
    profiles: dict[str, ExportProfile],
    settings: RunSettings,
) -> list[ExportInfo]:
    if isinstance(destination, ShopifyStore) and not job.shopify_product_id:
        raise ValueError(f"SKU {job.sku!r} has no shopify_product_id in the manifest, so it cannot go to {spec.block}")
    results = []
    for render, qc in zip(outcome.renders, outcome.qcs, strict=True):
        if spec.profiles is not None and render.profile not in spec.profiles:
            continue
        profile = profiles[render.profile]
        data = work_store(settings).get(qc.encoded_path)  # what QC graded is what ships (store cached per process)
        context = ExportContext(
            sku=job.sku, title=job.title, alt_text=job.title, profile=render.profile, product_id=job.shopify_product_id
        )
        key = destination.object_key(job.dirname, profile.filename())
        results.append(
            deliver(
                destination,
                settings.database_url,
                sku_id=job.sku_id,
                render_id=None,
                profile=render.profile,
                key=key,
                data=data,
                content_type=CONTENT_TYPES[profile.format],
                context=context,
            )
        )
    if mask is not None and sends_mask(spec, destination):
        results.append(
            deliver(
                destination,
                settings.database_url,
                sku_id=job.sku_id,
                render_id=None,
                profile="mask",
                key=destination.object_key(job.dirname, "mask.png"),
                data=mask,
                content_type="image/png",
                context=ExportContext(sku=job.sku, profile="mask", product_id=job.shopify_product_id),
            )
        )
    return results


@task(name="export_sku", task_run_name="export-{job.sku}", retry_condition_fn=retry_transient, **DB_RETRIES)
def export_sku(
    job: SkuJob,
    outcome: SkuOutcome,
    out_dir: str,
    settings: RunSettings,
    destinations: list[DestinationSpec] | None = None,
) -> list[ExportInfo]:
    """Every profile's image (and mask.png) to each destination; then the SKU is exported.
    Default destination: ``out_dir/<sku>/`` on local disk."""
    started = time.perf_counter()
    profiles = profiles_for(settings)
    store = work_store(settings)
    mask = encode_mask(decode_work_image(store.get(outcome.mask_path), 1, "stored mask")) if outcome.mask_path else None
    results = []
    for spec in destinations or [DestinationSpec()]:
        destination = open_destination(spec, out_dir)
        try:
            results += _deliver_all(destination, spec, job, outcome, mask, profiles, settings)
        finally:
            if isinstance(destination, ShopifyStore):
                destination.close()
    skipped = all(r.skipped for r in results)
    with session_scope(settings.database_url) as s:
        repo.set_sku_state(s, job.sku_id, SkuState.exported)
        repo.add_timing(
            s,
            job.sku_id,
            "export",
            "skipped (already exported)" if skipped else round(time.perf_counter() - started, 4),
        )
    return results
