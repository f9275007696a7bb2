"""catalog-batch: one batch's whole lifecycle, in the order of DESIGN.md's diagram.

    validate -> render shards (segment, scene, upscale, QC, automatic retries) -> batch QC
    -> review hold (policy, then people; sent-back SKUs re-render) -> export -> report

Every SKU ends exported, rejected or failed-with-reason; the database says which. A hold
that is not answered in time leaves its SKUs ``held`` (not exported, not lost): run the
flow again with ``batch_id`` to continue that batch's review.

The run's final state says what happened (catalog.states.run_verdict): ``Completed``,
``Completed with rejections``, ``Held for review``, or ``Failed`` past ``max_failed_share``
or when the batch could not run; the failure and crash hooks record the reason on the
batch row. The report (report.json, the summary artifact) is written in every case but the
last.

The batch id is the flow run's id, so a suspended run that resumes (Prefect runs the flow
again from the top) finds its own batch; the steps before the hold return their recorded
results instead of writing again (see flows/review.py).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any
from uuid import UUID

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from prefect.utilities.annotations import quote
from pydantic import Field

from catalog.states import BatchFailed, BatchState, RunVerdict, run_verdict
from flows.dispatch import own_work_queue, render_all
from flows.naming import batch_run_name, batch_tag, tag_this_run
from flows.review import hold_for_review, require_deployment, review_items
from flows.runner import bounded_task_runner
from tasks.artifacts import link_store, publish_report_links
from tasks.bookkeeping import (
    count_sku_states,
    prepare_batch,
    record_batch_failure,
    record_failures,
    record_sources,
    set_batch_state,
)
from tasks.common import reason
from tasks.export import check_destinations, export_sku, exported_already
from tasks.records import DestinationSpec, RunSettings
from tasks.report import publish_summary, start_progress, write_report
from tasks.results import ShardItem, resolve
from tasks.reuse import reuse_cached_renders
from tasks.review import ReviewPolicy, approved_items
from tasks.score import score_batch_consistency
from tasks.settings import catalog_url, load_settings
from tasks.unpacked import remove_unpacked_archives
from tasks.validate import known_sources, validate_source

# Task runs named by SKU code: validate-<SKU>, export-<SKU> (render-<SKU> in the shards).
VALIDATE = validate_source.with_options(task_run_name="validate-{job.sku}")
EXPORT = export_sku.with_options(task_run_name="export-{job.sku}")


def record_failure_hook(flow: Any, run: Any, state: State) -> None:
    """on_failure / on_crashed: the batch ends ``failed`` in the catalog with the run's
    reason (a batch that already ended, or never started, keeps what it has). The
    parameters name the catalog (its block) or give its URL; settings that do neither (the
    run failed on them) leave nothing to record."""
    parameters = run.parameters or {}
    try:
        settings = RunSettings.model_validate(parameters.get("settings"))
    except ValueError:
        return
    database_url = catalog_url(settings)
    batch_id = parameters.get("batch_id") or UUID(str(run.id)).hex
    why = f"flow run {run.name} {state.name}: {state.message or 'no message'}"
    record_batch_failure(database_url, batch_id, why[:2000])


def final_state(verdict: RunVerdict, report: dict) -> State:
    """The run's state, carrying the report: a direct call returns it when completed, and
    raises ``BatchFailed`` (holding it) when failed."""
    if verdict.kind == "failed":
        return Failed(data=BatchFailed(verdict.message, report), message=verdict.message)
    return Completed(data=report, name=verdict.name, message=verdict.message)


@flow(
    name="catalog-batch",
    flow_run_name=batch_run_name,
    log_prints=False,
    persist_result=True,
    task_runner=bounded_task_runner(),
    on_failure=[record_failure_hook],
    on_crashed=[record_failure_hook],
)
def catalog_batch(
    manifest: str,
    out_dir: str,
    settings: RunSettings,
    name: str = "catalog",
    template: str = "white_studio",
    profiles: list[str] = ("amazon-main", "shopify"),
    review_policy: ReviewPolicy = "auto",
    shard_size: int = 25,
    render_deployment: str | None = None,
    destinations: list[DestinationSpec] | None = None,
    review_rounds: Annotated[int, Field(ge=1, le=10)] = 2,
    review_timeout_s: Annotated[int, Field(ge=1)] | None = 24 * 3600,
    thumbnail_store: str | None = None,
    max_failed_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2,
    batch_id: str | None = None,
) -> State:
    """One batch, from manifest to exported images and report.

    Args:
        manifest: CSV (sku,image[,title,template,priority,shopify_product_id]), folder or ZIP.
        out_dir: where the report goes, and the images unless ``destinations`` says otherwise.
        settings: data dir, catalog database, models and QC settings for the workers; a
            deployment names the catalog and model store blocks, loaded by ``load_settings``
            (tasks/settings.py) when the run starts.
        name: the batch's name: runs are named ``batch-<name>-<scheduled date>`` and tagged
            ``batch:<name>``; the artifacts' keys end in it (``batch-summary-<name>``).
        template: the default scene template.
        profiles: export profiles rendered for every SKU.
        review_policy: auto (QC decides), hold-failures (QC failures wait for a person) or
            hold-all (everything waits); a hold suspends the run, so it needs a deployment.
        shard_size: SKUs per render shard.
        render_deployment: render shards as runs of this deployment (the GPU pool).
        destinations: where approved images go; default: a local folder at ``out_dir``.
        review_rounds: answered review holds per run (re-renders come back to the next one).
        review_timeout_s: how long a hold waits for an answer; then the run fails and the
            SKUs stay held for a later run with ``batch_id``. Empty: no limit.
        thumbnail_store: an S3 destination block for review thumbnails (presigned URLs);
            default: thumbnails inline in the review artifact.
        max_failed_share: the run ends Failed when more than this share (0..1) of the
            batch's SKUs failed; below it, failures and rejections end it
            ``Completed with rejections``.
        batch_id: continue this batch's review hold instead of starting a batch.

    Returns the final state, carrying the report: ``Completed``, ``Completed with
    rejections``, ``Held for review`` or ``Failed`` (a direct call returns the report for
    the first three and raises for Failed; ``return_state=True`` gives the state).
    """
    logger = get_run_logger()
    tag_this_run(batch_tag(name))
    # `named` (block names) goes to the shards' runs, whose parameters the API stores;
    # `settings` (the blocks' values) to this run's tasks.
    named, settings = settings, load_settings(settings)
    profiles = list(profiles)
    destinations = destinations or [DestinationSpec()]
    db = settings.database_url
    require_deployment(review_policy)
    check_destinations(destinations, out_dir, profiles)
    run_id = flow_run.get_id()
    batch_id, jobs = prepare_batch(
        manifest,
        settings,
        batch_id=batch_id or UUID(run_id).hex,
        template=template,
        profiles=profiles,
        name=name,
        review_policy=review_policy,
        flow_run_id=run_id,
    )
    logger.info("batch %s: %s SKUs to process", batch_id, len(jobs))
    progress = start_progress(batch_id, name)

    # validating: photos the catalog validated before are taken as they are (one task run)
    known = known_sources(jobs, settings)
    unknown = [j for j, k in zip(jobs, known, strict=True) if k is None]
    checked = dict(zip([j.sku_id for j in unknown], resolve(VALIDATE.map(unknown, unmapped(settings))), strict=True))
    failed = {j.sku_id: reason("validate", r.error) for j in unknown if not (r := checked[j.sku_id]).ok}
    if failed:
        record_failures(db, failed)
    items = [
        ShardItem(job=j, source=k or checked[j.sku_id].value)
        for j, k in zip(jobs, known, strict=True)
        if j.sku_id not in failed
    ]
    record_sources(db, [i.source for i in items])

    # processing: SKUs whose every attempt is cached are taken over at once (one task run
    # and one transaction for all of them); the rest render per SKU, in shards (in
    # production each shard is a flow run on the GPU pool)
    set_batch_state(db, batch_id, BatchState.processing)
    reused = {o.sku_id: o for o in reuse_cached_renders(items, profiles, settings)}
    queue = own_work_queue()  # urgent batches keep their shards on the urgent queue
    rendered = render_all(
        batch_id,
        [i for i in items if i.job.sku_id not in reused],
        profiles,
        named,
        progress,
        shard_size,
        render_deployment,
        queue,
        name,
        done_before=len(reused),
    )
    by_id = {**reused, **{o.sku_id: o for o in rendered}}
    outcomes = [by_id[i.job.sku_id] for i in items]  # in the manifest's order
    failed = {o.sku_id: o.reason for o in outcomes if o.status == "failed"}
    if failed:
        record_failures(db, failed)

    # qc: batch consistency across the rendered images
    set_batch_state(db, batch_id, BatchState.qc)
    consistency = score_batch_consistency(quote(outcomes), settings)

    # review hold: the policy decides; what it holds waits for people (the run suspends)
    set_batch_state(db, batch_id, BatchState.review_hold)
    render = partial(
        render_all,
        batch_id,
        profiles=profiles,
        settings=named,
        progress=None,
        shard_size=shard_size,
        render_deployment=render_deployment,
        queue=queue,
        batch_name=name,
    )
    held = hold_for_review(
        batch_id,
        name,
        review_items(items, outcomes),
        settings,
        render,
        policy=review_policy,
        rounds=review_rounds,
        timeout_s=review_timeout_s,
        thumbnail_store=thumbnail_store,
    )
    if held:
        logger.warning(
            "batch %s: %s SKU(s) still held after %s review round(s); nothing exported. Continue with batch_id=%s",
            batch_id,
            held,
            review_rounds,
            batch_id,
        )
        remove_unpacked_archives(jobs, settings)
        verdict = run_verdict(count_sku_states(db, batch_id), max_failed_share)
        return _finish(batch_id, name, out_dir, settings, consistency, verdict, thumbnail_store)

    # exporting: exactly once per destination key and content
    set_batch_state(db, batch_id, BatchState.exporting)
    approved = approved_items(db, batch_id)
    shipped = set(exported_already(quote(approved), out_dir, settings, destinations))  # a re-run: one task run
    approved = [a for a in approved if a.job.sku_id not in shipped]
    exports = resolve(
        EXPORT.map(
            [a.job for a in approved],
            [quote(a.outcome) for a in approved],
            unmapped(out_dir),
            unmapped(settings),
            unmapped(destinations),
        )
    )
    failed = {a.job.sku_id: reason("export", r.error) for a, r in zip(approved, exports, strict=True) if not r.ok}
    if failed:
        record_failures(db, failed)

    # done, or failed when more SKUs failed than max_failed_share allows
    verdict = run_verdict(count_sku_states(db, batch_id), max_failed_share)
    if verdict.kind == "failed":
        set_batch_state(db, batch_id, BatchState.failed, error=verdict.message)
    else:
        set_batch_state(db, batch_id, BatchState.done)
    remove_unpacked_archives(jobs, settings)  # ZIP manifests: the photos are in the work store
    return _finish(batch_id, name, out_dir, settings, consistency, verdict, thumbnail_store)


def _finish(
    batch_id: str,
    name: str,
    out_dir: str,
    settings: RunSettings,
    consistency: dict,
    verdict: RunVerdict,
    thumbnail_store: str | None,
) -> State:
    """report.json/html and the contact sheet, their links, the summary; the final state."""
    report = write_report(batch_id, out_dir, settings, consistency)
    published = publish_report_links(batch_id, name, out_dir, link_store(thumbnail_store), return_state=True)
    links = published.result() if published.is_completed() else {}
    if not links and published.is_failed():  # the report is on disk; only its links are missing
        get_run_logger().warning("batch %s: report links not published: %s", batch_id, published.message)
    publish_summary(quote(report), f"{verdict.name} ({verdict.message})", links)
    get_run_logger().info("batch %s: %s (%s)", batch_id, verdict.name, verdict.message)
    return final_state(verdict, report)
