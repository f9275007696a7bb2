"""render-shard: each SKU of a shard through ``render_sku`` (segment -> cut out (+upscale)
-> scene per profile -> encode -> QC, in memory: tasks/attempt.py), with targeted retries.

This is the GPU-pool flow: the batch flow calls it directly on the embedded default and
through ``run_deployment`` in production. A SKU that fails QC is re-rendered with parameters
that target the defect that failed (quality.defects), up to ``settings.max_attempts`` times,
unless no re-render can fix it; every attempt is recorded and the best one is kept.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.naming import shard_run_name
from flows.runner import bounded_task_runner
from tasks.adjust import next_params
from tasks.attempt import render_sku, work_files_present
from tasks.bookkeeping import record_attempts, record_failures
from tasks.common import reason
from tasks.records import RenderParams, RunSettings
from tasks.results import ShardItem, SkuOutcome, add_timings, best_attempt, resolve
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
            following = (
                next_params(params[sku_id], outcome.failing)
                if outcome.status == "qc_failed" and params[sku_id].attempt < settings.max_attempts
                else None
            )
            if following is None:  # passed, failed, out of attempts, or nothing a re-render can fix
                live.pop(sku_id)
            else:
                params[sku_id] = following
    return [outcomes[item.job.sku_id] for item in items]


def _attempt(items: dict[int, ShardItem], params, profiles, settings, earlier) -> dict[int, SkuOutcome]:
    """One render attempt for each SKU in ``items`` (one ``render_sku`` task each, all
    submitted at once: no stage waits for another SKU): its outcome (passed, qc_failed,
    failed). Timings add up over the attempts; one database transaction per round."""
    ids = list(items)

    def submit(sku_ids, task=RENDER):
        return resolve([task.submit(items[i].job, items[i].source, params[i], profiles, settings) for i in sku_ids])

    results = dict(zip(ids, submit(ids), strict=True))
    # A cached outcome whose files are gone (expired, deleted, another node's disk) is
    # computed again, never a failure.
    stale = [i for i, r in results.items() if r.ok and r.cached and not work_files_present(r.value, settings)]
    if stale:
        results.update(zip(stale, submit(stale, RENDER.with_options(refresh_cache=True)), strict=True))
    outcomes: dict[int, SkuOutcome] = {}
    for sku_id, result in results.items():
        if not result.ok:
            outcomes[sku_id] = SkuOutcome.failed(sku_id, reason("render", result.error))
            continue
        outcome = result.value
        if result.cached:  # computed for this photo and these settings in another batch (another SKU row)
            outcome = outcome.model_copy(update={"sku_id": sku_id, "timings": {k: "cached" for k in outcome.timings}})
        if sku_id in earlier:
            outcome = outcome.model_copy(update={"timings": add_timings(earlier[sku_id].timings, outcome.timings)})
        outcomes[sku_id] = outcome
    record_attempts(settings.database_url, [o for o in outcomes.values() if o.status != "failed"])
    failures = {i: o.reason for i, o in outcomes.items() if o.status == "failed"}
    if failures:
        record_failures(settings.database_url, failures)
    return outcomes
