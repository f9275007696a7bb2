"""export_sku: deliver each approved SKU's images to every configured destination, exactly
once. The protocol (a lease per destination key, taken by compare-and-set; clean-up after
an unfinished attempt; put; complete) is ``catalog.delivery``; this module wires it.

Destinations are ``DestinationSpec`` records: the run's ``out_dir`` as a local folder, or a
saved block (``LocalFolderDestination``, ``S3Destination``, ``ShopifyStore``) by its slug.
Blocks are loaded inside the task that uses them, never passed between tasks (they hold
credentials, and task results are persisted)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.blocks.core import Block

from blocks.destinations import ExportContext, LocalFolderDestination, S3Destination
from blocks.shopify import ShopifyStore
from catalog import delivery
from catalog import repository as repo
from catalog.db import session_scope
from catalog.states import SkuState
from imaging.profiles import ExportProfile
from tasks.bookkeeping import DB_RETRIES, REPLAYED
from tasks.common import profiles_for, retry_transient
from tasks.records import DestinationSpec, ExportInfo, RunSettings, SkuJob
from tasks.results import ReviewItem, SkuOutcome
from tasks.workdir import work_store

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


@dataclass(frozen=True)
class Planned:
    """One file of a SKU for one destination: where it goes and which bytes (the work
    store's file, shipped as it is: what QC graded, or the mask as stored)."""

    profile: str
    key: str
    ref: str
    sha256: str | None  # None: not known without reading the file (an older outcome's mask)
    content_type: str


def plan_deliveries(
    destination, spec: DestinationSpec, job: SkuJob, outcome: SkuOutcome, profiles: dict[str, ExportProfile]
) -> list[Planned]:
    """What ``export_sku`` delivers for this SKU to this destination, in order."""
    if isinstance(destination, ShopifyStore) and not job.shopify_product_id:
        raise ValueError(f"SKU {job.sku!r} has no shopify_product_id in the manifest, so it cannot go to {spec.block}")
    planned = []
    for render, qc in zip(outcome.renders, outcome.qcs, strict=True):
        if spec.profiles is not None and render.profile not in spec.profiles:
            continue
        profile = profiles[render.profile]
        planned.append(
            Planned(
                profile=render.profile,
                key=destination.object_key(job.dirname, profile.filename()),
                ref=qc.encoded_path,  # what QC graded is what ships
                sha256=render.sha256 if render.path == qc.encoded_path else None,
                content_type=CONTENT_TYPES[profile.format],
            )
        )
    if outcome.mask_path and sends_mask(spec, destination):
        planned.append(
            Planned(
                profile="mask",
                key=destination.object_key(job.dirname, "mask.png"),
                ref=outcome.mask_path,
                sha256=outcome.mask_sha256,
                content_type="image/png",
            )
        )
    return planned


def _deliver_all(
    destination,
    spec: DestinationSpec,
    job: SkuJob,
    outcome: SkuOutcome,
    profiles: dict[str, ExportProfile],
    settings: RunSettings,
) -> list[ExportInfo]:
    store = work_store(settings)  # cached per process
    return [
        deliver(
            destination,
            settings.database_url,
            sku_id=job.sku_id,
            render_id=None,
            profile=planned.profile,
            key=planned.key,
            data=store.get(planned.ref),
            content_type=planned.content_type,
            context=ExportContext(
                sku=job.sku,
                title=None if planned.profile == "mask" else job.title,
                alt_text=None if planned.profile == "mask" else job.title,
                profile=planned.profile,
                product_id=job.shopify_product_id,
            ),
        )
        for planned in plan_deliveries(destination, spec, job, outcome, profiles)
    ]


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
    results = []
    for spec in destinations or [DestinationSpec()]:
        destination = open_destination(spec, out_dir)
        try:
            results += _deliver_all(destination, spec, job, outcome, profiles, settings)
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


@task(name="exported_already", retry_condition_fn=retry_transient, **DB_RETRIES, **REPLAYED)
def exported_already(
    items: list[ReviewItem], out_dir: str, settings: RunSettings, destinations: list[DestinationSpec] | None = None
) -> list[int]:
    """The approved SKUs whose every file is already delivered to every destination, as
    these very bytes (a re-run of a catalog): each is moved to ``exported`` here, in one
    transaction for all of them, with no ``export_sku`` run of its own. Returns their row
    ids; the rest go through ``export_sku`` (which skips, file by file, what is done)."""
    profiles = profiles_for(settings)
    wanted: dict[int, list[tuple[str, str, str]]] = {}
    for spec in destinations or [DestinationSpec()]:
        destination = open_destination(spec, out_dir)
        try:
            for item in items:
                try:
                    planned = plan_deliveries(destination, spec, item.job, item.outcome, profiles)
                except ValueError:  # export_sku fails it, with the reason
                    planned = [Planned("", "", "", None, "")]
                wanted.setdefault(item.job.sku_id, []).extend(
                    (destination.destination_id, p.key, p.sha256) for p in planned
                )
        finally:
            if isinstance(destination, ShopifyStore):
                destination.close()
    with session_scope(settings.database_url) as s:
        done = repo.done_exports(s, (w for files in wanted.values() for w in files if w[2]))
        shipped = [i for i, files in wanted.items() if files and all(w in done for w in files)]
        for sku in repo.skus_by_id(s, shipped).values():
            repo.move_sku(sku, SkuState.exported)
            sku.timings = {**(sku.timings or {}), "export": "skipped (already exported)"}
    return shipped
