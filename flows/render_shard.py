"""render-shard: each SKU of a shard through ``render_sku`` (segment -> cut out (+upscale)
-> scene per profile -> encode -> QC, in memory: tasks/attempt.py), with targeted retries.

This is the GPU-pool flow: the batch flow calls it directly on the embedded default and
through ``run_deployment`` in production. A SKU that fails QC is re-rendered with parameters
that target the defect that failed (quality.defects), up to ``settings.max_attempts`` times,
unless no re-render can fix it; every attempt is recorded and the best one is kept.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.context import TagsContext
from prefect.utilities.annotations import quote

from flows.naming import shard_run_name
from flows.runner import bounded_task_runner
from tasks.adjust import follow_up
from tasks.attempt import render_sku
from tasks.bookkeeping import record_attempts, record_failures
from tasks.common import reason
from tasks.heap import give_back_freed
from tasks.records import RenderParams, RunSettings
from tasks.results import ShardItem, SkuOutcome, add_timings, best_attempt, resolve
from tasks.reuse import cached_attempts
from tasks.settings import load_settings

# Task runs named by SKU code (the attempt shows in the run's task list as render-<SKU>).
RENDER = render_sku.with_options(task_run_name="render-{job.sku}")


@flow(
    name="render-shard",
    flow_run_name=shard_run_name,
    log_prints=False,
    persist_result=True,
    task_runner=bounded_task_runner(),
)
def render_shard(
    batch_id: str,
    shard_index: int,
    items: list[ShardItem],
    profiles: list[str],
    settings: RunSettings,
    batch_name: str = "",
) -> list[SkuOutcome]:
    """The shard's outcomes, one per item, in order. ``batch_name`` names the run
    (``render-<batch name>-<date>-<index>``). The GPU cap is the GPU pool's concurrency
    limit (infra/bootstrap.py), not a slot taken here; the batch moves its progress bar as
    shards finish. ``settings`` name the blocks the batch's deployment names; the shard
    loads them itself, on its own worker (``load_settings``)."""
    with TagsContext(current_tags=set()):  # task runs untagged: see _render
        return _render(shard_index, items, profiles, settings)


def _render(shard_index: int, items: list[ShardItem], profiles: list[str], settings: RunSettings) -> list[SkuOutcome]:
    """The shard's body, its task runs untagged. The shard's own run keeps the batch's tag
    (the UI filters by it), but a tagged task run asks the Prefect server for tag
    concurrency slots before it starts: one round trip per SKU, which read 1-2 s while the
    server was busy recording the batch's events, both workers idle meanwhile (a 40-SKU
    batch, 2026-12-04: 8.3 s of its 57 s of rendering with no SKU running;
    docs/ARCHITECTURE.md, "Unit of work"). No tag concurrency limit applies to a SKU: the
    GPU cap is the pool's."""
    logger = get_run_logger()
    settings = load_settings(settings)
    outcomes: dict[int, SkuOutcome] = {}
    params = {item.job.sku_id: item.params or RenderParams() for item in items}
    live = {item.job.sku_id: item for item in items}
    while live:
        logger.info("shard %s: rendering %s SKUs", shard_index, len(live))
        finished = _attempt(live, params, profiles, settings, outcomes)
        outcomes.update({i: best_attempt(outcomes.get(i), o) for i, o in finished.items()})
        for sku_id, outcome in finished.items():
            following = follow_up(params[sku_id], outcome, settings.max_attempts)
            if following is None:  # passed, failed, out of attempts, or nothing a re-render can fix
                live.pop(sku_id)
            else:
                params[sku_id] = following
        give_back_freed()  # what the round's attempts freed leaves the worker (tasks/heap.py)
    return [outcomes[item.job.sku_id] for item in items]


def _attempt(items: dict[int, ShardItem], params, profiles, settings, earlier) -> dict[int, SkuOutcome]:
    """One render attempt for each SKU in ``items``: its outcome (passed, qc_failed, failed).
    The cached ones come from one lookup (``tasks/reuse.py``: no task run per SKU); the rest
    are ``render_sku`` task runs, all submitted at once (no stage waits for another SKU).
    Timings add up over the attempts; one database transaction per round."""
    ids = list(items)
    lookups = cached_attempts([items[i] for i in ids], [params[i] for i in ids], profiles, settings)
    found = dict(zip(ids, lookups, strict=True))
    # A cached outcome whose files are gone (expired, deleted, another node's disk) is
    # computed again with the cache refreshed, never a failure.
    fresh = [i for i in ids if found[i].outcome is None and not found[i].stale]
    stale = [i for i in ids if found[i].stale]
    futures = [RENDER.submit(items[i].job, items[i].source, params[i], profiles, settings) for i in fresh]
    futures += [
        RENDER.with_options(refresh_cache=True).submit(items[i].job, items[i].source, params[i], profiles, settings)
        for i in stale
    ]
    results = dict(zip(fresh + stale, resolve(futures), strict=True))
    outcomes: dict[int, SkuOutcome] = {}
    for sku_id in ids:
        if found[sku_id].outcome is not None:
            outcome = found[sku_id].outcome
        elif not results[sku_id].ok:
            outcomes[sku_id] = SkuOutcome.failed(sku_id, reason("render", results[sku_id].error))
            continue
        else:
            outcome = results[sku_id].value
            if results[sku_id].cached:  # cached meanwhile (another batch's run of the same photo)
                outcome = outcome.model_copy(
                    update={"sku_id": sku_id, "timings": {k: "cached" for k in outcome.timings}}
                )
        if sku_id in earlier:
            outcome = outcome.model_copy(update={"timings": add_timings(earlier[sku_id].timings, outcome.timings)})
        outcomes[sku_id] = outcome
    record_attempts(settings.database_url, quote([o for o in outcomes.values() if o.status != "failed"]))
    failures = {i: o.reason for i, o in outcomes.items() if o.status == "failed"}
    if failures:
        record_failures(settings.database_url, failures)
    return outcomes
