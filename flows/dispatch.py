"""How a batch's shards reach the workers: in-process on the embedded default, or one
flow run per shard on the GPU work pool (``run_deployment``) in production."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from uuid import UUID

from prefect import get_run_logger, tags
from prefect.artifacts import update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from flows.naming import batch_tag
from flows.render_shard import render_shard
from tasks.records import RunSettings
from tasks.results import ShardItem, SkuOutcome
from tasks.workdir import digest

SHARD_TIMEOUT_S = 6 * 3600  # shards not finished six hours after they were queued are reported, not awaited
SHARD_POLL_S = 2.0
MAX_SHARD_RESUBMITS = 2  # a shard whose run crashed is queued again at most this often


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
    batch_name: str = "",
    done_before: int = 0,
) -> list[SkuOutcome]:
    """Every item's outcome, in order. A shard run that crashed or did not finish by the
    batch's deadline fails its SKUs with the reason; nothing is dropped. The progress bar
    moves here, as shards finish, and only forward; ``done_before`` SKUs of the batch were
    done before any shard (cached: tasks/reuse.py) and count as done."""
    shards = [items[i : i + shard_size] for i in range(0, len(items), shard_size)]
    bar = Progress(progress, len(items) + done_before)
    bar.offset = done_before
    bar.advance(done_before)
    if render_deployment is None:
        outcomes: list[SkuOutcome] = []
        with tags(batch_tag(batch_name)) if batch_name else nullcontext():
            for index, shard in enumerate(shards):
                outcomes += render_shard(batch_id, index, shard, profiles, settings, batch_name)
                bar.advance(done_before + len(outcomes))
        return outcomes
    logger = get_run_logger()
    require_deployment(render_deployment)

    def submit(index: int, again: int = 0) -> FlowRun:
        """Queue shard ``index``; ``again`` > 0 is a resubmission after a crash (its own
        idempotency key, so a replayed batch run finds the same resubmitted run)."""
        key = f"{batch_id}-shard-{index}-{shard_key(shards[index])}" + (f"-again-{again}" if again else "")
        return run_deployment(
            render_deployment,
            timeout=0,
            as_subflow=True,
            work_queue_name=queue,
            tags=[batch_tag(batch_name)] if batch_name else None,
            idempotency_key=key,
            parameters=dict(
                batch_id=batch_id,
                shard_index=index,
                items=shards[index],
                profiles=profiles,
                settings=settings,
                batch_name=batch_name,
            ),
        )

    runs = [submit(index) for index in range(len(shards))]  # all at once; the pool's limit paces them
    logger.info("batch %s: %s shard runs queued on %s", batch_id, len(runs), render_deployment)
    runs, results = wait_for_shards(runs, [len(shard) for shard in shards], bar, resubmit=submit)
    outcomes = []
    for shard, run, finished in zip(shards, runs, results, strict=True):
        if finished is not None and finished.state is not None and finished.state.is_completed():
            outcomes += finished.state.result()
        elif finished is None:
            why = f"render shard run {run.name} did not finish within {SHARD_TIMEOUT_S} s"
            outcomes += [SkuOutcome.failed(item.job.sku_id, why) for item in shard]
        else:
            why = f"render shard run {finished.name} ended {finished.state.name if finished.state else 'unknown'}"
            outcomes += [SkuOutcome.failed(item.job.sku_id, why) for item in shard]
    return outcomes


def require_deployment(name: str) -> None:
    """The shards' deployment must exist before anything is queued: else the batch cannot
    run, and its reason says which deployment is missing."""
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise ValueError(
                f"render deployment {name!r} does not exist on this Prefect server (prefect deploy --all)"
            ) from None


def wait_for_shards(
    runs: list[FlowRun],
    sizes: list[int],
    bar: Progress,
    resubmit: Callable[[int, int], FlowRun] | None = None,
) -> tuple[list[FlowRun], list[FlowRun | None]]:
    """Poll the shard runs until each is final or the batch's one deadline (SHARD_TIMEOUT_S
    from now) passes; the progress bar counts the SKUs of the finished shards. A run that
    Crashed (its worker or process killed) is resubmitted, up to MAX_SHARD_RESUBMITS times:
    the new run takes what the crashed one rendered from the cache. Returns the last run of
    each shard, and its final state's run (None: still going at the deadline)."""
    logger = get_run_logger()
    runs = list(runs)
    again = [0] * len(runs)
    deadline = time.monotonic() + SHARD_TIMEOUT_S
    finished: dict[int, FlowRun] = {}
    with get_client(sync_client=True) as client:
        while len(finished) < len(runs) and time.monotonic() < deadline:
            for index, shard_run in enumerate(runs):
                if index in finished:
                    continue
                run = client.read_flow_run(shard_run.id)
                if run.state is None or not run.state.is_final():
                    continue
                if run.state.is_crashed() and resubmit is not None and again[index] < MAX_SHARD_RESUBMITS:
                    again[index] += 1
                    logger.warning(
                        "render shard run %s crashed (%s): resubmitted (%d of %d)",
                        run.name,
                        run.state.message,
                        again[index],
                        MAX_SHARD_RESUBMITS,
                    )
                    runs[index] = resubmit(index, again[index])
                    continue
                finished[index] = run
                bar.advance(bar.offset + sum(sizes[i] for i in finished))
            if len(finished) < len(runs):
                time.sleep(SHARD_POLL_S)
    return runs, [finished.get(index) for index in range(len(runs))]


class Progress:
    """The batch's progress artifact, moved only forward: a replayed run (after a review
    resumes) or a late update never moves the bar back."""

    def __init__(self, artifact_id: UUID | None, total: int):
        self.artifact_id, self.total, self.shown = artifact_id, total, None
        self.offset = 0  # SKUs done before the shards

    def advance(self, done: int) -> None:
        if self.artifact_id is None or not self.total or done <= 0:
            return
        if self.shown is None:
            self.shown = _current_progress(self.artifact_id)
        value = min(100.0, 100.0 * done / self.total)
        if value > self.shown:
            update_progress_artifact(self.artifact_id, progress=value)
            self.shown = value


def _current_progress(artifact_id: UUID) -> float:
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(id=ArtifactFilterId(any_=[artifact_id])))
    try:
        return float(artifact.data)
    except (TypeError, ValueError):
        return 0.0


def shard_key(shard: list[ShardItem]) -> str:
    """Which SKUs with which starting parameters: a re-render round's shard 0 is another run
    than the first pass's shard 0, while a replayed batch run finds its own shard runs."""
    return digest([item.model_dump_json() for item in shard])[:16]
