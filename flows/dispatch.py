"""How a batch's shards reach the workers: in-process on the embedded default, or one
flow run per shard on the GPU work pool (``run_deployment``) in production."""

from __future__ import annotations

from uuid import UUID

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.exceptions import FlowRunWaitTimeout
from prefect.flow_runs import wait_for_flow_run
from prefect.utilities.asyncutils import run_coro_as_sync

from flows.render_shard import render_shard
from tasks.records import RunSettings
from tasks.results import ShardItem, SkuOutcome
from tasks.workdir import digest

SHARD_TIMEOUT_S = 6 * 3600  # a shard that has not finished in six hours is reported, not awaited


def own_work_queue() -> str | None:
    """The work queue this flow run came from (None outside a deployment)."""
    context = FlowRunContext.get()
    return context.flow_run.work_queue_name if context and context.flow_run else None


def render_all(
    batch_id: str,
    items: list[ShardItem],
    profiles: list[str],
    settings: RunSettings,
    progress: UUID | None,
    shard_size: int,
    render_deployment: str | None,
    queue: str | None = None,
) -> list[SkuOutcome]:
    """Every item's outcome, in order. A shard run that crashed or timed out fails its SKUs
    with the reason; nothing is dropped."""
    shards = [items[i : i + shard_size] for i in range(0, len(items), shard_size)]
    if render_deployment is None:
        outcomes: list[SkuOutcome] = []
        for index, shard in enumerate(shards):
            outcomes += render_shard(batch_id, index, shard, profiles, settings, progress, len(outcomes), len(items))
        return outcomes
    logger = get_run_logger()
    runs = []
    for index, shard in enumerate(shards):  # all shards queued at once; the pool's limit paces them
        runs.append(
            run_deployment(
                render_deployment,
                timeout=0,
                as_subflow=True,
                work_queue_name=queue,
                idempotency_key=f"{batch_id}-shard-{index}-{shard_key(shard)}",
                parameters=dict(
                    batch_id=batch_id,
                    shard_index=index,
                    items=shard,
                    profiles=profiles,
                    settings=settings,
                    progress_artifact_id=progress,
                    done_before=index * shard_size,
                    total=len(items),
                ),
            )
        )
    logger.info("batch %s: %s shard runs queued on %s", batch_id, len(runs), render_deployment)
    outcomes = []
    for shard, run in zip(shards, runs, strict=True):
        try:  # wait_for_flow_run is async-only in Prefect 3.8
            finished = run_coro_as_sync(wait_for_flow_run(run.id, timeout=SHARD_TIMEOUT_S))
        except FlowRunWaitTimeout:
            why = f"render shard run {run.name} did not finish within {SHARD_TIMEOUT_S} s"
            outcomes += [SkuOutcome.failed(item.job.sku_id, why) for item in shard]
            continue
        if finished.state is not None and finished.state.is_completed():
            outcomes += finished.state.result()
        else:
            why = f"render shard run {finished.name} ended {finished.state.name if finished.state else 'unknown'}"
            outcomes += [SkuOutcome.failed(item.job.sku_id, why) for item in shard]
    return outcomes


def shard_key(shard: list[ShardItem]) -> str:
    """Which SKUs with which starting parameters: a re-render round's shard 0 is another run
    than the first pass's shard 0, while a replayed batch run finds its own shard runs."""
    return digest([item.model_dump_json() for item in shard])[:16]
