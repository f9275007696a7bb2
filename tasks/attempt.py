"""render_sku: one SKU attempt as one task, in memory (docs/ARCHITECTURE.md, "Unit of work").

    decode -> working resolution + mask (segment + refine, or the stored one)
           -> cut out (+ upscale) -> each profile's scene -> encode -> QC

A camera-size photo is worked on at the resolution its outputs need (tasks/segment.py:
the product drawn 1.25x the largest output's size), not at its full 12-50 MP.

Pixels pass between the stages in memory. Only what must outlive the attempt is written
to the work store, content-addressed: the mask on the source grid (tasks/segment.py), the
upscaled crop (tasks/render.py) and the encoded files that export ships. The task's result
(a ``SkuOutcome``: paths and figures, never pixels) is cached on everything that decides
those files; the shard recomputes a cached outcome whose files are gone
(flows/render_shard.py). A failure names its stage (``tasks.common.reason``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import task

from catalog.report_images import preview_jpeg, thumb_ref
from imaging.profiles import encode_for_profile
from imaging.templates import TemplateError, get_template
from quality.thresholds import QcThresholds
from tasks.common import STAGE_NOTE, key_from, profiles_for, retry_transient
from tasks.records import RenderInfo, RenderParams, RunSettings, SkuJob, SourceInfo
from tasks.render import cut_out, render_profile, scene_identity, target_product_px, template_library
from tasks.results import SkuOutcome
from tasks.score import evidence, grade
from tasks.segment import ALPHA_CUTOUT, product_mask, segmenter_version
from tasks.workdir import all_exist, digest, store_identity, work_store


def attempt_key(p: dict) -> str:
    job: SkuJob = p["job"]
    settings: RunSettings = p["settings"]
    specs = profiles_for(settings)
    try:
        template = get_template(job.template, template_library(settings.templates_dir))
    except TemplateError:  # the task fails on it, naming the template; its key needs no more
        return "sku-" + digest(p["source"].sha256, "unknown template", job.template)
    return "sku-" + digest(
        store_identity(settings),  # the outcome's file references point into it
        p["source"].sha256,
        segmenter_version(settings),
        p["params"].model_dump_json(),
        [(name, specs[name].model_dump_json()) for name in p["profiles"]],
        template.model_dump_json(),
        scene_identity(template, settings),
        job.sku if template.kind == "lifestyle" else None,  # seeds the scene
        settings.upscaler,
        settings.upscale_budget_s,
        settings.device,
        QcThresholds(**settings.thresholds).model_dump_json(),
    )


@contextmanager
def _stage(name: str, timings: dict) -> Iterator[None]:
    """Time a stage; an error leaving it carries the stage's name (for the SKU's reason)."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        exc.add_note(f"{STAGE_NOTE}{name}")
        raise
    timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - started, 4)


@task(
    name="render_sku",
    cache_key_fn=key_from(attempt_key),
    persist_result=True,
    retries=1,
    retry_condition_fn=retry_transient,
    task_run_name="render-{job.sku}-{params.attempt}",
)
def render_sku(
    job: SkuJob, source: SourceInfo, params: RenderParams, profiles: list[str], settings: RunSettings
) -> SkuOutcome:
    """One attempt of one SKU: every profile rendered, encoded and graded."""
    timings: dict = {}
    specs = profiles_for(settings)
    store = work_store(settings)
    with _stage("segment", timings):
        need = target_product_px([specs[p] for p in profiles], params.fill)
        work = product_mask(source, settings, params, need)  # the photo at its working resolution
    with _stage("upscale", timings):
        cutout = cut_out(source.sha256, work.rgb, work.mask, profiles, settings, params)
    renders, composites, files = [], {}, {}
    with _stage("render", timings):
        for profile in profiles:
            composite, info = render_profile(job, cutout, profile, settings, params)
            data = encode_for_profile(specs[profile], composite, provenance=info["digital_source_type"])
            sha = hashlib.sha256(data).hexdigest()
            path = store.ref(source.sha256, f"{sha[:16]}-{profile}.{specs[profile].extension}")
            if not store.exists(path):
                store.put(path, data)
                alpha = composite.product_alpha if specs[profile].background == "transparent" else None
                store.put(thumb_ref(path), preview_jpeg(composite.rgb, alpha))  # what the report shows
            on_photo = work.to_work.then(composite.placement)  # the record maps the photo's own pixels
            renders.append(
                RenderInfo(
                    path=str(path),
                    sha256=sha,
                    **{**info, "scale": on_photo.scale, "offset_x": on_photo.offset_x, "offset_y": on_photo.offset_y},
                )
            )
            composites[profile], files[profile] = (composite, info, data), str(path)
        upscaler, upscale_reused = cutout.upscaler, cutout.reused
        del cutout, composite  # QC needs the canvases, not the crop
    with _stage("qc", timings):  # on the working grid: the placements in ``info`` start there
        graded = grade(
            {
                p: evidence(work.rgb, work.mask, c, info, specs[p], data, upscaler, work.model != ALPHA_CUTOUT)
                for p, (c, info, data) in composites.items()
            },
            work.confidence,
            settings,
            files,
        )
    for stage, reused in (("segment", work.reused), ("upscale", upscale_reused)):
        if reused:
            timings[stage] = "cached"
    return SkuOutcome.graded(
        job.sku_id,
        params,
        work.confidence,
        str(work.mask_path),
        renders,
        [graded[p] for p in profiles],
        {
            "segment": work.model,
            "upscale": upscaler,
            "provenance": {r.profile: r.digital_source_type for r in renders},  # per render row (report.json)
        },
        timings,
        work.mask_sha256,
    )


def work_files_present(outcome: SkuOutcome, settings: RunSettings) -> bool:
    """Whether every file a (cached) outcome points at is still in the work store."""
    return all(all_exist(work_store(settings), outcome.files()))
