"""catalog-batch: one batch's whole lifecycle, in the order of DESIGN.md's diagram.

    validate -> render shards (segment, scene, upscale, QC, automatic retries) -> batch QC
    -> review -> export -> report

Every SKU ends exported, rejected or failed-with-reason; the database says which.
"""
from __future__ import annotations

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact

from catalog.states import BatchState
from flows.dispatch import render_all
from tasks.bookkeeping import prepare_batch, record_failures, record_sources, set_batch_state
from tasks.common import reason
from tasks.export import export_sku
from tasks.records import RunSettings
from tasks.report import publish_summary, write_report
from tasks.results import ShardItem, resolve
from tasks.review import auto_review
from tasks.score import score_batch_consistency
from tasks.validate import validate_source


@flow(name="catalog-batch", flow_run_name="batch-{name}", log_prints=False)
def catalog_batch(
    manifest: str, out_dir: str, settings: RunSettings, name: str = "catalog",
    template: str = "white_studio", profiles: list[str] = ("amazon-main", "shopify"),
    review_policy: str = "auto", shard_size: int = 25, render_deployment: str | None = None,
) -> dict:
    logger = get_run_logger()
    profiles = list(profiles)
    db = settings.database_url
    batch_id, jobs = prepare_batch(manifest, settings, template=template, profiles=profiles,
                                   name=name, review_policy=review_policy)
    logger.info("batch %s: %s SKUs to process", batch_id, len(jobs))
    progress = create_progress_artifact(0.0, key=f"batch-progress-{batch_id[:8]}",
                                        description=f"Batch {name}: SKUs rendered and scored")

    # validating
    checked = resolve(validate_source.map(jobs, unmapped(settings)))
    record_failures(db, {j.sku_id: reason("validate", r.error) for j, r in zip(jobs, checked) if not r.ok})
    items = [ShardItem(job=j, source=r.value) for j, r in zip(jobs, checked) if r.ok]
    record_sources(db, [i.source for i in items])

    # processing: per SKU, in shards (in production each shard is a flow run on the GPU pool)
    set_batch_state(db, batch_id, BatchState.processing)
    outcomes = render_all(batch_id, items, profiles, settings, progress, shard_size, render_deployment)
    failed_runs = {o.sku_id: o.reason for o in outcomes if o.status == "failed"}
    record_failures(db, failed_runs)

    # qc: batch consistency across the rendered images
    set_batch_state(db, batch_id, BatchState.qc)
    consistency = score_batch_consistency(outcomes, settings)

    # review hold (auto policy: QC passes are approved, QC failures rejected with the checks)
    set_batch_state(db, batch_id, BatchState.review_hold)
    approved = auto_review(db, outcomes)

    # exporting: exactly once per destination key and content
    set_batch_state(db, batch_id, BatchState.exporting)
    by_id = {i.job.sku_id: i for i in items}
    exports = resolve(export_sku.map([by_id[o.sku_id].job for o in approved], approved,
                                     unmapped(out_dir), unmapped(settings)))
    record_failures(db, {o.sku_id: reason("export", r.error) for o, r in zip(approved, exports) if not r.ok})

    set_batch_state(db, batch_id, BatchState.done)
    report = write_report(batch_id, out_dir, settings, consistency)
    publish_summary(report)
    logger.info("batch %s done: %s", batch_id, report["counts"])
    return report
