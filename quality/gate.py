"""The quality gate: every check for a SKU's renders in one report each, and the batch pass.

``score_sku`` grades all of one SKU's profile renders: what does not depend on the profile
(the cut against the photo, product colour fidelity, edges, clipping) is measured once,
on the render that draws the product largest, and shared; what does (source resolution,
shadow, framing, compression, marketplace rules) is measured per render. ``score_image``
is the one-render case. Each check is graded against ``QcThresholds`` (pass / warn /
fail, for green / amber / red) and a non-passing one names its defect class
(quality/defects.py). ``score_batch`` compares per-image features across a batch. No I/O,
no Prefect: tasks/ wraps these (docs/ARCHITECTURE.md, "Quality gate").
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from quality._validate import check_pair
from quality.checks import (
    RANK,
    CheckResult,
    colour_checks,
    cut_checks,
    edge_checks,
    enlargement,
    exposure_checks,
    framing_checks,
    marketplace_checks,
    product_box,
    resolution_check,
    shadow_checks,
    work_grid,
)
from quality.consistency import BatchConsistency, ImageFeatures, batch_outliers, image_features
from quality.fidelity import placement_matrix
from quality.market_rules import market_rule_checks, strict_enlargement
from quality.thresholds import MarketplaceRules, QcThresholds, Status

__all__ = ["QcEvidence", "CheckResult", "QcReport", "score_sku", "score_image", "score_batch"]


@dataclass(frozen=True)
class QcEvidence:
    """Everything the gate needs about one composite (validated on construction).

    ``placement``: source pixel -> canvas pixel, a 2x3 ``cv2.warpAffine`` matrix
    (``imaging.types.Placement.matrix()``) or ``(scale, offset_x, offset_y)`` in the
    pixel-corner convention of imaging/types.py. ``background_rgb``: the studio
    backdrop drawn, or None for generated scenes (and gradients: estimated locally).
    ``shadow_style``/``light_direction_deg``: what the compositor was asked to draw
    (None: unknown, e.g. generated). ``encoded_bytes``: size of the encoded file;
    ``icc_is_srgb``: whether the profile embedded *in the encoded bytes* is sRGB (see
    ``quality.marketplace.icc_description``); ``shipped_rgb``: those bytes decoded (what
    the marketplace shows); None when not encoded yet. ``upscaled``: a learned upscaler
    enlarged the cut-out (it restores some detail, so larger enlargements are accepted).
    ``shipped_grey``: the shipped file's grey levels alone, (h, w) uint8 (a JPEG decoded
    straight to its luma: what the blocking check reads, at half the cost of decoding
    colour); when given, the check reads it instead of ``shipped_rgb``. ``backdrop``: False
    for a cut-out shipped on transparency: no shadow is drawn under it, so none is measured.
    ``jpeg_quality``: ``quality.jpeg_quality.jpeg_quality`` of the shipped bytes.

    The arrays are read-only evidence: several checks reuse what one of them measured on
    them (the product's box, the reduced canvas; ``quality.checks.memo``), so they must
    not change once the evidence is built.
    """

    source_rgb: np.ndarray  # (H, W, 3) uint8 sRGB, the original photo
    source_mask: np.ndarray  # (H, W) float [0, 1], the product on the source grid
    output_rgb: np.ndarray  # (h, w, 3) uint8 sRGB canvas
    output_alpha: np.ndarray  # (h, w) float [0, 1], product coverage on the canvas
    placement: np.ndarray | tuple[float, float, float]
    background_rgb: tuple[int, int, int] | None = None
    shadow_style: Literal["soft", "hard", "floating", "none"] | None = None
    light_direction_deg: float | None = None
    grounded: bool = True
    encoded_bytes: int | None = None
    icc_is_srgb: bool | None = None
    old_background_known: bool = True  # False for sources that came cut out (own alpha): no fringe to find
    shipped_rgb: np.ndarray | None = None
    upscaled: bool = False
    shipped_grey: np.ndarray | None = None
    feather_px: float = 1.0  # the compositor's Gaussian feather of the coverage (canvas px): a clean edge has it
    backdrop: bool = True  # False: the file ships the cut-out on transparency (nothing to cast a shadow on)
    jpeg_quality: float | None = None  # the IJG quality the shipped JPEG's own luma table matches (None: no JPEG)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        """Pickled without the locks ``quality.checks.memo`` keeps beside ``_memo``."""
        return {k: v for k, v in self.__dict__.items() if k != "_memo_locks"}

    def __post_init__(self) -> None:
        # Checked once here; the metrics are then called with validate=False. A SKU's
        # renders share one photo and mask: those are checked for the first render only.
        src, mask = _checked_source(self.source_rgb, self.source_mask)
        out, alpha = check_pair("output_rgb", self.output_rgb, "output_alpha", self.output_alpha, True)
        for name, value in (
            ("source_rgb", src),
            ("source_mask", mask),
            ("output_rgb", out),
            ("output_alpha", alpha),
            ("placement", placement_matrix(self.placement)),
        ):
            object.__setattr__(self, name, value)  # normalised: float32 masks, 2x3 matrix
        if self.shipped_rgb is not None and np.shape(self.shipped_rgb) != out.shape:
            raise ValueError(f"shipped_rgb {np.shape(self.shipped_rgb)} does not match the canvas {out.shape}")
        if self.shipped_grey is not None and (
            np.shape(self.shipped_grey) != out.shape[:2] or np.asarray(self.shipped_grey).dtype != np.uint8
        ):
            raise ValueError(
                f"shipped_grey must be uint8 of the canvas's size {out.shape[:2]}, got {np.shape(self.shipped_grey)}"
            )
        if self.shadow_style not in (None, "soft", "hard", "floating", "none"):
            raise ValueError(f"unknown shadow_style {self.shadow_style!r}")
        if self.light_direction_deg is not None and not np.isfinite(self.light_direction_deg):
            raise ValueError("light_direction_deg must be finite")
        if not (np.isfinite(self.feather_px) and self.feather_px >= 0.0):
            raise ValueError(f"feather_px must be finite and >= 0, got {self.feather_px}")
        if self.encoded_bytes is not None and self.encoded_bytes <= 0:
            raise ValueError(f"encoded_bytes must be > 0, got {self.encoded_bytes}")


_SOURCES: dict[tuple[int, int], tuple[weakref.ref, weakref.ref]] = {}


def _checked_source(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``check_pair`` of a photo and its mask, remembered (by weak reference, for the last
    few pairs) for the very same array objects when the check passed them unchanged, so
    each render of a SKU does not check its photo again."""
    key = (id(rgb), id(mask))
    hit = _SOURCES.get(key)
    if hit is not None and hit[0]() is rgb and hit[1]() is mask:
        return rgb, mask
    src, checked = check_pair("source_rgb", rgb, "source_mask", mask, True)
    if src is rgb and checked is mask:
        try:
            entry = (weakref.ref(rgb), weakref.ref(mask))
        except TypeError:  # not weak-referenceable: nothing to remember
            return src, checked
        if len(_SOURCES) >= 8:
            _SOURCES.pop(next(iter(_SOURCES)))
        _SOURCES[key] = entry
    return src, checked


class QcReport(BaseModel):
    """The gate's verdict on one image; ``metrics`` is flat and JSON-safe; ``reasons``
    names each failing defect once, as a person would."""

    status: Status
    checks: list[CheckResult]
    metrics: dict[str, float]
    failing: list[str]
    warnings: list[str]
    reasons: list[str] = Field(default_factory=list)
    features: dict[str, float] = Field(description="ImageFeatures for score_batch")
    thresholds_version: str
    profile: str


def _reference(evidence: Mapping[str, QcEvidence]) -> str:
    """The render the shared checks look at: an opaque one that draws the product largest."""
    return max(evidence, key=lambda p: (evidence[p].background_rgb is not None, enlargement(evidence[p])))


def _workers(jobs: int) -> int:
    """Threads for one SKU's check families: one per core this process may use, at most one
    per family (the families are NumPy and OpenCV calls, which release the GIL)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(jobs, cores))


def score_sku(
    evidence: Mapping[str, QcEvidence], thresholds: QcThresholds, rules: Mapping[str, MarketplaceRules]
) -> dict[str, QcReport]:
    """Grade every profile render of one SKU (all from the same source photo and mask).

    ``rules[profile]`` are that profile's marketplace rules; thresholds are
    ``thresholds.for_profile(profile)``. Returns profile -> ``QcReport`` whose ``status``
    is the worst check's; ``failing``/``warnings`` list check names. See
    tests/quality/test_gate.py.

    The check families are independent measurements of read-only evidence, so they run
    side by side on a few threads (the shared ones longest first); what two families share
    (the product's box, the reduced canvas) is measured once (``quality.checks.memo``).
    The reports are the same as measured one after another, in the same order.
    """
    if not evidence:
        raise ValueError("score_sku needs at least one render")
    ref = _reference(evidence)
    ref_th = thresholds.for_profile(ref)
    with ThreadPoolExecutor(_workers(4 + len(evidence)), thread_name_prefix="qc-gate") as pool:
        cut = pool.submit(cut_checks, evidence[ref], ref_th)
        edges = pool.submit(edge_checks, evidence[ref], ref_th)
        colour = pool.submit(colour_checks, evidence[ref], ref_th)
        exposure = pool.submit(exposure_checks, evidence[ref], ref_th)
        own = {p: pool.submit(_own_checks, ev, thresholds.for_profile(p), rules[p], p) for p, ev in evidence.items()}
        (edge, edge_metrics), (clip, clip_metrics) = edges.result(), exposure.result()
        shared = cut.result() + colour.result() + edge + clip
        shared_metrics = {**edge_metrics, **clip_metrics}
        return {p: _report(shared, shared_metrics, *own[p].result(), rules[p].name) for p in evidence}


def _own_checks(ev: QcEvidence, th: QcThresholds, rules: MarketplaceRules, profile: str):
    """What depends on the profile: its checks, shadow geometry and batch features."""
    checks = [resolution_check(ev, strict_enlargement(th, rules), profile)]
    shadows, geo = shadow_checks(ev, th)
    checks += shadows + framing_checks(ev, th) + marketplace_checks(ev, th, rules)
    checks += market_rule_checks(ev, th, rules)
    features = image_features(
        ev.output_rgb,
        ev.output_alpha,
        work_side=th.batch_work_side,
        validate=False,
        work=work_grid(ev, th.batch_work_side),
        box=product_box(ev),
    )
    return checks, geo, features, th.version


def _report(shared, shared_metrics, own, geo, features, version, profile) -> QcReport:
    checks = list(shared) + own
    metrics = dict(shared_metrics)
    if geo is not None:
        metrics["shadow.darkening_mass"] = geo.darkening_mass
        metrics["shadow.lean"], metrics["shadow.side_mass"] = geo.lean, geo.side_mass
        if geo.implied_light_deg is not None:
            metrics["shadow.implied_light_deg"] = geo.implied_light_deg
    metrics.update({c.name: c.value for c in checks if c.value is not None})
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    worst = max((c.status for c in checks), key=RANK.__getitem__)
    failing = [c for c in checks if c.status == "fail"]
    return QcReport(
        status=worst,
        checks=checks,
        metrics=metrics,
        failing=[c.name for c in failing],
        warnings=[c.name for c in checks if c.status == "warn"],
        reasons=list(dict.fromkeys(c.reason for c in failing)),
        features=features.as_dict(),
        thresholds_version=version,
        profile=profile,
    )


def score_image(evidence: QcEvidence, thresholds: QcThresholds, profile_rules: MarketplaceRules) -> QcReport:
    """Grade one composite: ``score_sku`` with a single render."""
    name = profile_rules.name
    return score_sku({name: evidence}, thresholds, {name: profile_rules})[name]


def score_batch(features: Sequence[ImageFeatures | Mapping[str, float]], thresholds: QcThresholds) -> BatchConsistency:
    """Robust outlier flags across a batch; ``.flagged[i]`` lists image i's outlying
    dimensions (``quality.consistency.DIMENSIONS``). Accepts ``QcReport.features`` dicts.
    Fewer than ``thresholds.batch_min_size`` images: no flags, and ``.note`` says so.
    """
    feats = [f if isinstance(f, ImageFeatures) else ImageFeatures(**f) for f in features]
    return batch_outliers(
        feats,
        z_limit=thresholds.batch_z_limit,
        min_batch=thresholds.batch_min_size,
        sigma_floor=thresholds.batch_sigma_floor,
    )
