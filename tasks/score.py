"""The automated quality gate's task side: a SKU's renders graded in memory (``grade``,
called by ``render_sku``), and ``score_batch_consistency`` across the batch."""

from __future__ import annotations

import time

import cv2
import numpy as np
from prefect import task

from imaging.encode import read_encoded
from imaging.profiles import ExportProfile
from imaging.types import Composite
from quality.checks import confidence_check
from quality.gate import QcEvidence, score_batch, score_sku
from quality.jpeg_quality import jpeg_quality
from quality.marketplace import icc_is_srgb
from quality.thresholds import MarketplaceRules, QcThresholds
from tasks.common import profiles_for
from tasks.records import QcInfo, RunSettings
from tasks.results import SkuOutcome


def marketplace_rules(profile: ExportProfile) -> MarketplaceRules:
    """The gate's view of an export profile (one source of truth: imaging.profiles)."""
    return MarketplaceRules(
        name=profile.name,
        background_rgb=(255, 255, 255) if profile.background == "white" else None,
        fill_target=profile.fill if profile.background != "transparent" else None,
        min_longest_side=profile.min_side,
        max_longest_side=profile.max_side,
        max_megapixels=profile.max_megapixels,
        require_srgb=profile.icc,
        max_file_bytes=profile.max_bytes,
        fill_range=(profile.min_fill or 0.0, profile.max_fill or 1.0)
        if profile.min_fill is not None or profile.max_fill is not None
        else None,
        min_shortest_side=profile.min_short_side,
        aspect_ratios=profile.aspect_ratios,
        max_enlargement=profile.max_enlargement,
        edge_clear=profile.edge_clear,
        residue_free=profile.residue_free,
        frameless=profile.frameless,
    )


def evidence(
    source_rgb: np.ndarray,
    mask: np.ndarray,
    composite: Composite,
    render: dict,
    spec: ExportProfile,
    data: bytes,
    upscaler: str,
    old_background_known: bool,
) -> QcEvidence:
    """The gate's view of one render: the lossless canvas in memory and the file's bytes
    (a JPEG's pixels are what it lost, so those are decoded and graded too)."""
    shipped, icc = decode_shipped(data, jpeg=spec.format == "jpeg")
    return QcEvidence(
        source_rgb=source_rgb,
        source_mask=mask,
        output_rgb=composite.rgb,
        output_alpha=composite.product_alpha,
        placement=(render["scale"], render["offset_x"], render["offset_y"]),
        background_rgb=render["background"],
        shadow_style=render["shadow_style"],
        light_direction_deg=render["light_direction_deg"],
        # A cut-out on transparency stands on nothing: no contact shadow is asked of it
        # (nor drawn: tasks/render.py), at whatever fill its profile places it.
        grounded=spec.background != "transparent" and render["shadow_style"] != "floating",
        encoded_bytes=len(data),
        icc_is_srgb=icc_is_srgb(icc),
        old_background_known=old_background_known,
        shipped_grey=shipped,
        upscaled=upscaler not in ("none", "lanczos"),
        feather_px=float(composite.meta.get("feather_px", 1.0)),
        backdrop=spec.background != "transparent",
        jpeg_quality=jpeg_quality(data) if spec.format == "jpeg" else None,
    )


def decode_shipped(data: bytes, jpeg: bool) -> tuple[np.ndarray | None, bytes | None]:
    """What the gate reads back from a file as it ships: ``(grey, icc)``, the embedded ICC
    profile (None without one) and, for a JPEG, its grey levels, (H, W) uint8, decoded
    straight to the luma the encoder coded (the blocking check's input; colour would cost
    twice the decoding and the check reads none). A lossless file's pixels are the canvas's:
    None. EXIF orientation is ignored (exports carry none; the canvas is the reference)."""
    _, icc = read_encoded(data, pixels=False)
    if not jpeg:
        return None, icc
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    if grey is None:
        raise ValueError("the encoded JPEG could not be decoded")
    return grey, icc


def grade(
    evidence_by_profile: dict[str, QcEvidence], confidence: float, settings: RunSettings, encoded_paths: dict[str, str]
) -> dict[str, QcInfo]:
    """Grade every render of one SKU at once: what does not depend on the profile is
    measured once (quality.gate.score_sku)."""
    started = time.perf_counter()
    specs = profiles_for(settings)
    thresholds = QcThresholds(**settings.thresholds)
    reports = score_sku(evidence_by_profile, thresholds, {p: marketplace_rules(specs[p]) for p in evidence_by_profile})
    share = round((time.perf_counter() - started) / max(1, len(reports)), 4)
    return {p: _qc_info(r, confidence, thresholds, encoded_paths[p], share) for p, r in reports.items()}


def _qc_info(report, confidence: float, thresholds: QcThresholds, encoded_path: str, seconds: float) -> QcInfo:
    metrics = {
        **report.metrics,
        **{f"feature.{k}": v for k, v in report.features.items()},
        "segment.confidence": confidence,
    }
    checks = [c.model_dump(mode="json") for c in report.checks]
    failing, reasons = list(report.failing), list(report.reasons)
    certainty = confidence_check(confidence, thresholds)
    if certainty.status == "fail":  # listed only when it fails: the report's other checks are the image's
        failing.append(certainty.name)
        reasons.append(certainty.reason)
        checks.append(certainty.model_dump(mode="json"))
    return QcInfo(
        profile=report.profile,
        status="fail" if failing else report.status,
        metrics=metrics,
        checks=checks,
        failing=failing,
        reasons=reasons,
        thresholds_version=report.thresholds_version,
        encoded_path=encoded_path,
        seconds=seconds,
    )


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
