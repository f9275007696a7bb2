"""Database writes, in clearly named tasks. Each takes a list so a stage costs one task run
and one transaction, not one per SKU. Retried: a dropped connection is transient."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from catalog import repository as repo
from catalog.db import migrate, session_scope
from catalog.manifest import load_manifest
from catalog.states import BATCH_TRANSITIONS, BatchState, SkuState
from tasks.common import retry_transient
from tasks.records import RunSettings, SkuJob, SourceInfo
from tasks.results import SkuOutcome

DB_RETRIES = dict(retries=3, retry_delay_seconds=[1, 4, 15])
# A suspended batch run that resumes runs its flow again from the top. These tasks persist
# their results and keep Prefect's default cache policy (inputs + task source + flow run
# id), so in the same flow run a replayed call with the same inputs returns what the first
# call returned instead of writing again. A step that a later review round repeats on
# purpose takes that round as an input.
REPLAYED = dict(persist_result=True)


@task(name="prepare_batch", retry_condition_fn=retry_transient, **DB_RETRIES, **REPLAYED)
def prepare_batch(
    manifest: str,
    settings: RunSettings,
    *,
    batch_id: str,
    template: str,
    profiles: list[str],
    name: str,
    review_policy: str,
    flow_run_id: str | None = None,
) -> tuple[str, list[SkuJob]]:
    """Migrate, read the manifest, create the batch and its SKU rows (bad rows fail here).

    A batch that already exists with this id is continued instead: only a batch waiting in
    ``review_hold`` (a hold that timed out) can be, and it brings no new SKUs to render."""
    migrate(settings.database_url)
    with session_scope(settings.database_url) as s:
        existing = repo.find_batch(s, batch_id)
        if existing is not None:
            if existing.state != BatchState.review_hold.value:
                raise ValueError(
                    f"batch {batch_id} is {existing.state!r}: only a batch waiting in "
                    "review_hold can be continued (run the manifest again for a new batch)"
                )
            existing.flow_run_id = flow_run_id or existing.flow_run_id
            return batch_id, []
    parsed = load_manifest(Path(manifest), unpack_dir=Path(settings.data_dir) / "unpacked")
    with session_scope(settings.database_url) as s:
        repo.create_batch(
            s,
            batch_id=batch_id,
            name=name,
            manifest_path=str(parsed.source),
            manifest_sha256=parsed.sha256,
            template=template,
            profiles=profiles,
            review_policy=review_policy,
            flow_run_id=flow_run_id,
        )
        rows = repo.add_skus(s, batch_id, parsed.entries, template)
        repo.set_batch_state(s, batch_id, BatchState.validating)
        jobs = [
            SkuJob(
                sku_id=r.id,
                sku=r.sku,
                dirname=r.dirname,
                source_path=r.source_path,
                template=r.template,
                title=r.title,
                priority=r.priority,
                shopify_product_id=r.shopify_product_id,
            )
            for r in rows
            if r.state == SkuState.pending.value
        ]
    return batch_id, jobs


@task(name="set_batch_state", **DB_RETRIES, **REPLAYED)
def set_batch_state(
    database_url: str, batch_id: str, state: BatchState, error: str | None = None, round: int = 0
) -> None:
    """``round``: the review round this transition belongs to (0 before the first hold)."""
    with session_scope(database_url) as s:
        repo.set_batch_state(s, batch_id, state, error)


@task(name="record_failures", **DB_RETRIES, **REPLAYED)
def record_failures(database_url: str, failures: dict[int, str]) -> None:
    """SKU row id -> reason. Each SKU ends ``failed`` with the reason; none is dropped."""
    with session_scope(database_url) as s:
        repo.fail_skus(s, failures)


@task(name="record_sources", **DB_RETRIES, **REPLAYED)
def record_sources(database_url: str, sources: list[SourceInfo]) -> None:
    """Every validated photo and the move to ``validated``: one transaction, a few queries
    for the whole batch (catalog.repository.record_sources)."""
    with session_scope(database_url) as s:
        repo.record_sources(
            s,
            [
                dict(
                    sku_id=src.sku_id,
                    sha256=src.sha256,
                    width=src.width,
                    height=src.height,
                    fmt=src.format,
                    size=src.size_bytes,
                )
                for src in sources
            ],
        )


@task(name="record_sku_states", **DB_RETRIES, **REPLAYED)
def record_sku_states(database_url: str, states: dict[int, SkuState], reasons: dict[int, str] | None = None) -> None:
    reasons = reasons or {}
    with session_scope(database_url) as s:
        for sku_id, sku in repo.skus_by_id(s, states).items():
            repo.move_sku(sku, states[sku_id], reasons.get(sku_id))


@task(name="record_attempts", **DB_RETRIES)
def record_attempts(database_url: str, outcomes: list[SkuOutcome]) -> None:
    """Render attempts in one transaction (a shard's round, or the cached attempts a re-run
    takes over): per SKU a render row and a QC row per profile, its timings, and its walk
    rendering -> rendered -> qc_passed | qc_failed. Several attempts of one SKU go in their
    order. The rows are loaded in one query and inserted in two (docs/ARCHITECTURE.md#unit-of-work)."""
    with session_scope(database_url) as s:
        write_attempts(s, outcomes)


def write_attempts(session, outcomes: list[SkuOutcome]) -> None:
    """``record_attempts`` inside the caller's transaction."""
    if not outcomes:
        return
    skus = repo.skus_by_id(session, (o.sku_id for o in outcomes))
    renders, qcs = [], []
    for outcome in outcomes:
        sku = skus[outcome.sku_id]
        for state in (
            SkuState.rendering,
            SkuState.rendered,
            SkuState.qc_passed if outcome.status == "passed" else SkuState.qc_failed,
        ):
            repo.move_sku(sku, state)
        for render, qc in zip(outcome.renders, outcome.qcs, strict=True):
            sku.attempts = max(sku.attempts or 0, render.params.attempt)
            renders.append(
                dict(
                    sku_id=sku.id,
                    attempt=render.params.attempt,
                    profile=render.profile,
                    template=render.template,
                    params=render.params.model_dump(),
                    model_versions=outcome.model_versions,
                    seed=render.seed,
                    uri=render.path,
                    content_sha256=render.sha256,
                    segment_confidence=outcome.confidence,
                )
            )
            qcs.append(
                dict(
                    thresholds_version=qc.thresholds_version,
                    status=qc.status,
                    metrics=qc.metrics,
                    checks=qc.checks,
                    failing=qc.failing,
                )
            )
        sku.timings = {**(sku.timings or {}), **outcome.timings}
    repo.record_renders(session, renders, qcs)


@task(name="count_sku_states", cache_policy=NO_CACHE, **DB_RETRIES)
def count_sku_states(database_url: str, batch_id: str) -> dict[str, int]:
    """How many of the batch's SKUs are in each state now (read when the batch ends; never
    a cached answer)."""
    with session_scope(database_url) as s:
        return dict(Counter(row.state for row in repo.batch_skus(s, batch_id)))


def record_batch_failure(database_url: str, batch_id: str, why: str) -> bool:
    """The batch ends ``failed`` with ``why`` unless it already ended (done or failed: the
    first reason stays). A plain function: the flow's failure and crash hooks call it
    outside any task. False when there is no such batch or it had already ended."""
    with session_scope(database_url) as s:
        batch = repo.find_batch(s, batch_id)
        if batch is None or BatchState.failed not in BATCH_TRANSITIONS[BatchState(batch.state)]:
            return False
        repo.set_batch_state(s, batch_id, BatchState.failed, why)
        return True
