"""render-shard: segment -> cut out (+upscale) -> scene per profile -> QC, for a shard of SKUs.

This is the GPU-pool flow: the batch flow calls it directly on the embedded default and
through ``run_deployment`` in production. A SKU that fails QC is re-rendered with parameters
that target the defect that failed (quality.defects), up to ``settings.max_attempts`` times,
unless no re-render can fix it; every attempt is recorded and the best one is kept.
"""
from __future__ import annotations

from contextlib import nullcontext
from uuid import UUID

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import update_progress_artifact
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext

from flows.runner import bounded_task_runner
from tasks.adjust import next_params
from tasks.bookkeeping import record_attempt, record_failures
from tasks.common import reason
from tasks.records import RenderParams, RunSettings
from tasks.render import cut_out_product, render_scene
from tasks.results import ShardItem, SkuOutcome, add_timings, best_attempt, resolve
from tasks.score import score_renders
from tasks.segment import segment_product

GPU_SLOTS = "gpu-slots"


@flow(name="render-shard", flow_run_name="render-{batch_id}-{shard_index}", log_prints=False,
      persist_result=True, task_runner=bounded_task_runner())
def render_shard(
    batch_id: str, shard_index: int, items: list[ShardItem], profiles: list[str],
    settings: RunSettings, progress_artifact_id: UUID | None = None, done_before: int = 0,
    total: int = 0,
) -> list[SkuOutcome]:
    logger = get_run_logger()
    outcomes: dict[int, SkuOutcome] = {}
    params = {item.job.sku_id: item.params or RenderParams() for item in items}
    live = {item.job.sku_id: item for item in items}
    # A shard run deployed on the GPU pool holds one of the global "gpu-slots" (created by
    # infra/bootstrap.py). In-process (a subflow of the batch run: no deployment of its own)
    # there is nothing to share.
    context = FlowRunContext.get()
    deployed = bool(context and context.flow_run and context.flow_run.deployment_id)
    slot = concurrency(GPU_SLOTS, occupy=1, strict=True) if deployed else nullcontext()
    with slot:
        while live:
            logger.info("shard %s: rendering %s SKUs", shard_index, len(live))
            finished = _attempt(live, params, profiles, settings, outcomes)
            outcomes.update({i: best_attempt(outcomes.get(i), o) for i, o in finished.items()})
            for sku_id, outcome in finished.items():
                following = (next_params(params[sku_id], outcome.failing)
                             if outcome.status == "qc_failed" and params[sku_id].attempt < settings.max_attempts
                             else None)
                if following is None:  # passed, failed, out of attempts, or nothing a re-render can fix
                    live.pop(sku_id)
                else:
                    params[sku_id] = following
            _progress(progress_artifact_id, done_before + len(items) - len(live), total)
    return [outcomes[item.job.sku_id] for item in items]


def _attempt(items: dict[int, ShardItem], params, profiles, settings, earlier) -> dict[int, SkuOutcome]:
    """One render attempt for each SKU in ``items``: its outcome (passed, qc_failed, failed).
    Timings add up over the attempts; a stage is "cached" only if no attempt computed it."""
    failures: dict[int, str] = {}

    def survivors(ids, results, stage):
        ok = {}
        for sku_id, result in zip(ids, results, strict=True):
            if result.ok:
                ok[sku_id] = result
            else:
                failures[sku_id] = reason(stage, result.error)
        return ok

    ids = list(items)
    masks = survivors(ids, resolve(segment_product.map(
        [items[i].source for i in ids], unmapped(settings), [params[i].refine_strength for i in ids],
        [params[i].fill_holes for i in ids], [params[i].cut_bias for i in ids])), "segment")
    ids = list(masks)
    cutouts = survivors(ids, resolve(cut_out_product.map(
        [items[i].source for i in ids], [masks[i].value for i in ids], unmapped(profiles),
        unmapped(settings), [params[i] for i in ids])), "upscale")
    pairs = [(i, p) for i in cutouts for p in profiles]
    renders = dict(zip(pairs, resolve(render_scene.map(
        [items[i].job for i, _ in pairs], [items[i].source for i, _ in pairs],
        [cutouts[i].value for i, _ in pairs], [p for _, p in pairs], unmapped(settings),
        [params[i] for i, _ in pairs])), strict=True))
    whole = [i for i in cutouts if all(renders[(i, p)].ok for p in profiles)]
    scores = dict(zip(whole, resolve(score_renders.map(
        [items[i].source for i in whole], [masks[i].value for i in whole], [cutouts[i].value for i in whole],
        [[renders[(i, p)].value for p in profiles] for i in whole], unmapped(settings))), strict=True))
    outcomes: dict[int, SkuOutcome] = {}
    for sku_id in cutouts:
        mine = [k for k in pairs if k[0] == sku_id]
        broken = [("render", renders[k]) for k in mine if not renders[k].ok]
        broken += [("qc", scores[sku_id])] if sku_id in scores and not scores[sku_id].ok else []
        if broken:
            failures[sku_id] = reason(broken[0][0], broken[0][1].error)
            continue
        outcome = SkuOutcome.from_attempt(sku_id, masks[sku_id], cutouts[sku_id],
                                          [renders[k] for k in mine], scores[sku_id], params[sku_id])
        if sku_id in earlier:
            outcome = outcome.model_copy(update={"timings": add_timings(earlier[sku_id].timings, outcome.timings)})
        record_attempt(settings.database_url, sku_id, outcome.renders, outcome.qcs,
                       outcome.model_versions, outcome.confidence, outcome.timings,
                       outcome.status == "passed")
        outcomes[sku_id] = outcome
    if failures:
        record_failures(settings.database_url, failures)
        outcomes.update({i: SkuOutcome.failed(i, why) for i, why in failures.items()})
    return outcomes


def _progress(artifact_id: UUID | None, done: int, total: int) -> None:
    if artifact_id is not None and total:
        update_progress_artifact(artifact_id, progress=min(100.0, 100.0 * done / total))
