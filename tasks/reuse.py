"""Cached attempts found without a task run each (docs/ARCHITECTURE.md#unit-of-work).

``render_sku``'s result is cached on everything that decides it (tasks/attempt.py,
``attempt_key``). A re-run of a catalog computes the same keys, and a task run per SKU only
to be told "Cached" costs far more than the lookup: an engine run, its API calls and events,
its own bookkeeping. So the lookups happen here, many per task run, straight from Prefect's
result store (the same records the task engine reads: ``PREFECT_LOCAL_STORAGE_PATH``, or
the results block in production), and a cached outcome counts only while every work file
it points at is still in the work store; one whose files are gone is *stale* and is
rendered again with the cache refreshed, never failed.

- ``reuse_cached_renders`` (the batch flow, before any shard): a SKU whose attempts are
  all cached, from the first up to the one the shard would have stopped at
  (``tasks.adjust.follow_up``), is done here: its attempts are recorded for this batch in
  one transaction and it never enters a shard.
- ``cached_attempts`` (a shard's round): which of the round's attempts are cached, so only
  the others are submitted as ``render_sku`` task runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import task
from prefect.results import ResultStore, get_result_store
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE

from catalog.db import session_scope
from imaging.errors import WeightsMissing
from tasks.adjust import follow_up
from tasks.attempt import attempt_key, render_sku, work_files_present
from tasks.bookkeeping import DB_RETRIES, REPLAYED, write_attempts
from tasks.common import retry_transient
from tasks.records import RenderParams, RunSettings
from tasks.results import ShardItem, SkuOutcome, add_timings, best_attempt


@dataclass(frozen=True)
class Found:
    """One attempt's lookup: the cached outcome (for this SKU row, its stages "cached"),
    or none; ``stale`` when a cached outcome's work files are gone."""

    outcome: SkuOutcome | None = None
    stale: bool = False


def _results() -> ResultStore:
    """Where ``render_sku`` keeps its cached results, read without keeping them in memory."""
    return get_result_store().update_for_task(render_sku).model_copy(update={"cache_result_in_memory": False})


def cached_attempt(
    item: ShardItem, params: RenderParams, profiles: list[str], settings: RunSettings, results: ResultStore
) -> Found:
    """``render_sku(item.job, item.source, params, profiles, settings)`` from its cache."""
    if PREFECT_TASKS_REFRESH_CACHE.value():
        return Found()
    key = attempt_key(dict(job=item.job, source=item.source, params=params, profiles=profiles, settings=settings))
    try:
        record = results.read(key)
    except Exception:  # no record (the storage says so in its own words) or an unreadable one
        return Found()
    expiration = record.metadata.expiration
    outcome = record.result
    if (expiration is not None and expiration <= datetime.now(UTC)) or not isinstance(outcome, SkuOutcome):
        return Found()
    if not work_files_present(outcome, settings):
        return Found(stale=True)
    # computed for this photo and these settings, maybe for another SKU row or batch
    return Found(
        outcome.model_copy(update={"sku_id": item.job.sku_id, "timings": {k: "cached" for k in outcome.timings}})
    )


@task(name="cached_attempts", retries=2, retry_delay_seconds=1, retry_condition_fn=retry_transient)
def cached_attempts(
    items: list[ShardItem], params: list[RenderParams], profiles: list[str], settings: RunSettings
) -> list[Found]:
    """One shard round's lookups: per item, its attempt with ``params`` from the cache."""
    results = _results()
    return [cached_attempt(item, p, profiles, settings, results) for item, p in zip(items, params, strict=True)]


@task(name="reuse_cached_renders", retry_condition_fn=retry_transient, **DB_RETRIES, **REPLAYED)
def reuse_cached_renders(items: list[ShardItem], profiles: list[str], settings: RunSettings) -> list[SkuOutcome]:
    """The SKUs a re-run need not send to a shard: every attempt the shard would make is
    cached with its files present. Their attempts are recorded for this batch (one
    transaction for all of them) and their outcomes returned, the best attempt each, as a
    shard returns them; any other SKU is left to the shards (which look up again, round by
    round). On a node that cannot compute the keys (the segmenter's weights are on the GPU
    nodes only) nothing is reused here."""
    results = _results()
    done: list[SkuOutcome] = []
    recorded: list[SkuOutcome] = []
    try:
        for item in items:
            chain = _cached_chain(item, profiles, settings, results)
            if chain:
                recorded += chain
                done.append(chain[-1][1])
    except WeightsMissing:
        return []
    with session_scope(settings.database_url) as s:
        write_attempts(s, [attempt for attempt, _ in recorded])
    return done


def _cached_chain(item: ShardItem, profiles, settings, results) -> list[tuple[SkuOutcome, SkuOutcome]]:
    """(attempt as recorded, best so far) for each attempt of the SKU, if all are cached."""
    params = item.params or RenderParams()
    chain: list[tuple[SkuOutcome, SkuOutcome]] = []
    best: SkuOutcome | None = None
    while True:
        found = cached_attempt(item, params, profiles, settings, results)
        if found.outcome is None:
            return []
        outcome = found.outcome
        if best is not None:  # timings add up over the attempts, as in the shard
            outcome = outcome.model_copy(update={"timings": add_timings(best.timings, outcome.timings)})
        best = best_attempt(best, outcome)
        chain.append((outcome, best))
        params = follow_up(params, outcome, settings.max_attempts)
        if params is None:
            return chain
