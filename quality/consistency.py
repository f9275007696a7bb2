"""Batch consistency: per-image features and robust outlier flags across a batch.

Each image is reduced to a few numbers a merchandiser notices when a grid of images
sits side by side; an image is flagged in a dimension when its robust z-score there
exceeds the limit. Robust means the batch's median and MAD-scaled sigma
(1.4826 * median absolute deviation, consistent with sigma for normal data), so one or
several bad images (fewer than half) cannot drag the centre or inflate the spread and
hide each other. Reference: Rousseeuw & Croux, "Alternatives to the median absolute
deviation", JASA 88 (1993); Iglewicz & Hoaglin, "How to detect and handle outliers"
(1993) for the modified z-score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from quality._validate import bbox, check_pair, resize_to
from quality.delta_e import srgb_to_lab

__all__ = ["ImageFeatures", "BatchConsistency", "DIMENSIONS", "image_features", "batch_outliers"]

# Dimension name -> the feature fields that make it up (a dimension is flagged when any is).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "brightness": ("brightness_l",),
    "white_balance": ("white_balance_a", "white_balance_b"),
    "background_tone": ("background_l",),
    "scale": ("scale",),
    "position": ("centroid_x", "centroid_y"),
}


@dataclass(frozen=True)
class ImageFeatures:
    """What batch consistency compares (see ``image_features``)."""

    brightness_l: float  # mean L* of the product
    white_balance_a: float  # median a* of the backdrop (or of near-neutral pixels)
    white_balance_b: float  # median b* of the same pixels
    background_l: float  # median L* of the backdrop
    scale: float  # product bbox longest side / canvas longest side
    centroid_x: float  # product centroid x / canvas width, 0..1
    centroid_y: float  # product centroid y / canvas height, 0..1

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class BatchConsistency:
    """Per-image flags plus the statistics behind them."""

    flagged: list[list[str]]  # per image, the DIMENSIONS names beyond the limit
    robust_z: list[dict[str, float]]  # per image, per feature field
    median: dict[str, float]
    sigma: dict[str, float]  # MAD-scaled sigma, floored by sigma_floor
    note: str  # empty, or why nothing could be flagged


def image_features(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    *,
    work_side: int = 256,
    validate: bool = True,
    work: tuple[np.ndarray, np.ndarray, float] | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> ImageFeatures:
    """Brightness, white balance, backdrop tone, scale and position of one canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1].
    Colour space: CIE L*a*b* (D65) from sRGB. Measured on the canvas reduced to
    ``work_side`` px (area averaging): these are means and medians of large regions.
    Reference: CIE 15:2004 (L*a*b*); white balance is read on neutral pixels as in
    white-patch estimation: the backdrop (coverage < 0.02) when it covers at least 1 %
    of the frame, else near-neutral pixels (chroma < 10) anywhere. ``validate=False``
    skips the input checks for arrays already checked (QcEvidence); ``work``: the canvas
    already reduced to ``work_side`` (``quality.shadow.work_grid``, which the shadow check
    reads too) and ``box``: ``bbox(output_alpha)``, to save measuring them again.

    >>> rgb = np.full((64, 64, 3), 255, np.uint8); rgb[16:48, 16:48] = (200, 50, 50)
    >>> alpha = np.zeros((64, 64), np.float32); alpha[16:48, 16:48] = 1
    >>> f = image_features(rgb, alpha)
    >>> round(f.brightness_l, 1), round(f.background_l, 1), f.scale, f.centroid_x
    (45.3, 100.0, 0.5, 0.5)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    h, w = output_alpha.shape
    x0, y0, x1, y1 = box or bbox(output_alpha)
    if work is None:
        f = min(1.0, work_side / max(h, w))
        work = (resize_to(output_rgb, f, exact=False), resize_to(output_alpha, f, exact=False), f)
    lab = srgb_to_lab(work[0])
    a = work[1]
    product = a >= 0.5
    if not product.any():
        product = a >= a.max() * 0.5
    backdrop = a < 0.02
    if backdrop.mean() < 0.01:
        backdrop = np.hypot(lab[..., 1], lab[..., 2]) < 10.0
    if backdrop.any():
        wb_a, wb_b = float(np.median(lab[..., 1][backdrop])), float(np.median(lab[..., 2][backdrop]))
        bg_l = float(np.median(lab[..., 0][backdrop]))
    else:  # no backdrop and nothing neutral: report the frame's medians
        wb_a, wb_b, bg_l = (float(np.median(lab[..., i])) for i in (1, 2, 0))
    cols, rows = a.sum(axis=0, dtype=np.float64), a.sum(axis=1, dtype=np.float64)
    wsum = float(cols.sum())
    return ImageFeatures(
        brightness_l=float(lab[..., 0][product].mean()),
        white_balance_a=wb_a,
        white_balance_b=wb_b,
        background_l=bg_l,
        scale=max(x1 - x0, y1 - y0) / max(h, w),
        centroid_x=float((cols * (np.arange(a.shape[1]) + 0.5)).sum() / wsum / a.shape[1]),
        centroid_y=float((rows * (np.arange(a.shape[0]) + 0.5)).sum() / wsum / a.shape[0]),
    )


def batch_outliers(
    features: Sequence[ImageFeatures],
    *,
    z_limit: float,
    min_batch: int,
    sigma_floor: Mapping[str, float],
) -> BatchConsistency:
    """Flag images whose robust z-score exceeds ``z_limit`` in any dimension.

    ``z = (x - median) / max(1.4826 * MAD, sigma_floor[field])``; the floor (in the
    feature's own units) keeps a batch of near-identical images from flagging invisible
    differences when the MAD is ~0. Batches smaller than ``min_batch`` get no flags (a
    median of 3 says too little) and ``note`` says so. Inputs: finite features (any
    range). Reference: the modified z-score of Iglewicz & Hoaglin (1993).

    >>> base = dict(white_balance_a=0.0, white_balance_b=0.0, background_l=100.0,
    ...             scale=0.85, centroid_x=0.5, centroid_y=0.5)
    >>> batch = [ImageFeatures(brightness_l=v, **base) for v in (50, 51, 49, 50.5, 62, 49.5)]
    >>> floors = dict(brightness_l=1.0, white_balance_a=0.5, white_balance_b=0.5,
    ...               background_l=1.0, scale=0.01, centroid_x=0.01, centroid_y=0.01)
    >>> batch_outliers(batch, z_limit=2.0, min_batch=4, sigma_floor=floors).flagged
    [[], [], [], [], ['brightness'], []]
    """
    fields = [f for dims in DIMENSIONS.values() for f in dims]
    missing = [f for f in fields if f not in sigma_floor]
    if missing:
        raise ValueError(f"sigma_floor lacks {missing}")
    n = len(features)
    if n < min_batch:
        return BatchConsistency(
            flagged=[[] for _ in features],
            robust_z=[{} for _ in features],
            median={},
            sigma={},
            note=f"batch of {n} is smaller than {min_batch}: no consistency flags",
        )
    table = np.array([[getattr(ft, f) for f in fields] for ft in features], dtype=np.float64)
    if not np.isfinite(table).all():
        raise ValueError("batch features contain NaN or inf")
    med = np.median(table, axis=0)
    mad = np.median(np.abs(table - med), axis=0)
    sigma = np.maximum(1.4826 * mad, np.array([sigma_floor[f] for f in fields]))
    z = (table - med) / sigma
    flagged = []
    for row in z:
        hit = {f for f, v in zip(fields, row, strict=True) if abs(v) > z_limit}
        flagged.append([d for d, parts in DIMENSIONS.items() if hit.intersection(parts)])
    return BatchConsistency(
        flagged=flagged,
        robust_z=[dict(zip(fields, map(float, row), strict=True)) for row in z],
        median=dict(zip(fields, map(float, med), strict=True)),
        sigma=dict(zip(fields, map(float, sigma), strict=True)),
        note="",
    )
