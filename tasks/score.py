"""score_renders and score_batch_consistency: the automated quality gate, per image and batch."""
from __future__ import annotations

import time

import numpy as np
from prefect import task

from imaging.profiles import ExportProfile
from imaging.encode import read_encoded
from quality.gate import QcEvidence, score_batch, score_sku
from quality.marketplace import icc_is_srgb
from quality.thresholds import MarketplaceRules, QcThresholds
from tasks.common import key_from, profiles_for, retry_transient
from tasks.export import encode_render
from tasks.records import CutoutInfo, MaskInfo, QcInfo, RenderInfo, RunSettings, SourceInfo
from tasks.results import SkuOutcome
from tasks.segment import ALPHA_CUTOUT
from tasks.workdir import digest, read_png, work_path, write_atomic


def marketplace_rules(profile: ExportProfile) -> MarketplaceRules:
    """The gate's view of an export profile (one source of truth: imaging.profiles)."""
    return MarketplaceRules(
        name=profile.name,
        background_rgb=(255, 255, 255) if profile.background == "white" else None,
        fill_target=profile.fill if profile.background != "transparent" else None,
        min_longest_side=profile.min_side, max_longest_side=profile.max_side,
        max_megapixels=profile.max_megapixels, require_srgb=profile.icc, max_file_bytes=profile.max_bytes,
    )


def _score_key(p: dict) -> str:
    settings: RunSettings = p["settings"]
    return "qc-" + digest(p["mask"].path, p["mask"].confidence, p["cutout"].upscaler,
                          [(r.profile, r.sha256) for r in p["renders"]], settings.profiles,
                          QcThresholds(**settings.thresholds).model_dump_json())


def _evidence(source_rgb, mask_f, mask: MaskInfo, cutout: CutoutInfo, render: RenderInfo,
              spec: ExportProfile, data: bytes) -> QcEvidence:
    shipped, icc = read_encoded(data, pixels=spec.format == "jpeg")  # JPEG's pixels are what it lost
    canvas = read_png(render.path, 4 if spec.background == "transparent" else 3)[..., :3]
    return QcEvidence(
        source_rgb=source_rgb, source_mask=mask_f, output_rgb=canvas,
        output_alpha=read_png(render.alpha_path, 1).astype(np.float32) / 255.0,
        placement=(render.scale, render.offset_x, render.offset_y),
        background_rgb=render.background, shadow_style=render.shadow_style,
        light_direction_deg=render.light_direction_deg, grounded=render.shadow_style != "floating",
        encoded_bytes=len(data), icc_is_srgb=icc_is_srgb(icc), old_background_known=mask.model != ALPHA_CUTOUT,
        shipped_rgb=shipped, upscaled=cutout.upscaler not in ("none", "lanczos"),
    )


@task(name="score_renders", cache_key_fn=key_from(_score_key), persist_result=True, retries=1,
      retry_condition_fn=retry_transient, task_run_name="qc-{source.sku_id}")
def score_renders(source: SourceInfo, mask: MaskInfo, cutout: CutoutInfo, renders: list[RenderInfo],
                  settings: RunSettings) -> list[QcInfo]:
    """Encode each render for its profile (the bytes export will ship) and grade them all
    at once: what does not depend on the profile is measured once per SKU (quality.gate)."""
    started = time.perf_counter()
    specs = profiles_for(settings)
    source_rgb = read_png(source.path, 4 if source.has_alpha else 3)[..., :3]
    mask_f = read_png(mask.path, 1).astype(np.float32) / 255.0
    evidence, paths = {}, {}
    for render in renders:
        spec = specs[render.profile]
        data = encode_render(render, spec)
        paths[render.profile] = work_path(settings.data_dir, source.sha256,
                                          f"{render.sha256[:16]}-{render.profile}.{spec.extension}")
        write_atomic(paths[render.profile], data)
        evidence[render.profile] = _evidence(source_rgb, mask_f, mask, cutout, render, spec, data)
    thresholds = QcThresholds(**settings.thresholds)
    reports = score_sku(evidence, thresholds, {p: marketplace_rules(specs[p]) for p in evidence})
    seconds = round((time.perf_counter() - started) / max(1, len(renders)), 4)
    return [_qc_info(reports[r.profile], mask, thresholds, str(paths[r.profile]), seconds) for r in renders]


def _qc_info(report, mask: MaskInfo, thresholds: QcThresholds, encoded_path: str, seconds: float) -> QcInfo:
    metrics = {**report.metrics, **{f"feature.{k}": v for k, v in report.features.items()},
               "segment.confidence": mask.confidence}
    checks = [c.model_dump(mode="json") for c in report.checks]
    failing, reasons = list(report.failing), list(report.reasons)
    if mask.confidence < thresholds.segment_confidence_min:
        failing.append("segment.confidence")
        reasons.append("uncertain cut")
        checks.append({"name": "segment.confidence", "status": "fail", "value": mask.confidence,
                       "detail": "uncertain cut: goes to review rather than out the door",
                       "reason": "uncertain cut"})
    return QcInfo(profile=report.profile, status="fail" if failing else report.status, metrics=metrics,
                  checks=checks, failing=failing, reasons=reasons, thresholds_version=report.thresholds_version,
                  encoded_path=encoded_path, seconds=seconds)


@task(name="score_batch_consistency")
def score_batch_consistency(outcomes: list[SkuOutcome], settings: RunSettings) -> dict[str, list[str]]:
    """Robust outliers across the batch, per profile: SKU row id -> ["profile:dimension", ...]."""
    thresholds = QcThresholds(**settings.thresholds)
    flags: dict[str, list[str]] = {}
    profiles = sorted({q.profile for o in outcomes for q in o.qcs})
    for profile in profiles:
        rows = [(o.sku_id, q) for o in outcomes if o.status == "passed" for q in o.qcs if q.profile == profile]
        features = [{k[8:]: v for k, v in q.metrics.items() if k.startswith("feature.")} for _, q in rows]
        if not features:
            continue
        result = score_batch(features, thresholds)
        for (sku_id, _), dims in zip(rows, result.flagged, strict=True):
            if dims:
                flags.setdefault(str(sku_id), []).extend(f"{profile}:{d}" for d in dims)
    return flags
