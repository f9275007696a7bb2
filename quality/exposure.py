"""Sharpness and exposure of the product region of the output.

Sharpness is the variance of the Laplacian (Pech-Pacheco et al., "Diatom autofocusing
in brightfield microscopy: a comparative study", ICPR 2000) on the product interior,
with the product resampled so its bounding box's longest side is ``analysis_side`` px:
that removes the dependence on how large the product is drawn, so one threshold fits
every canvas size. Like every no-reference blur measure it also depends on content: a
flat, untextured product reads as "blurred" however sharp it is, so products whose
interior grey-level spread is under ``min_texture_std`` are reported as not measurable
(None) rather than failed. ``fidelity.sharpness_ratio`` (output vs source on the same
grid) is the content-independent companion.

Clipping counts product pixels at the ends of the 8-bit range on an evenly strided
subset (every second row and column: an unbiased sample, no averaging that would hide
clipped pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_pair, disk, resize_to

__all__ = ["Exposure", "product_exposure"]


@dataclass(frozen=True)
class Exposure:
    """Sharpness and clipping of the product (see ``product_exposure``)."""

    laplacian_variance: float | None  # grey levels^2 at the analysis size; None if too flat
    texture_std: float  # grey-level std of the product interior at the analysis size
    clipped_highlights: float  # share of product pixels with all channels >= clip_high
    clipped_shadows: float  # share of product pixels with all channels <= clip_low
    mean_luma: float  # mean Rec. 601 luma (0..255) of the product


def product_exposure(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    *,
    analysis_side: int,
    min_texture_std: float,
    clip_high: int,
    clip_low: int,
    validate: bool = True,
) -> Exposure:
    """Variance of the Laplacian and clipped shares on the product of a canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float in [0, 1].
    Grey levels are Rec. 601 luma of the sRGB values (``cv2.COLOR_RGB2GRAY``), 0..255;
    the Laplacian is the 4-neighbour kernel (Pech-Pacheco et al. 2000, see the module
    docstring for the size normalisation); the interior is ``alpha >= 0.5`` eroded by
    2 px at the analysis size so the product outline does not count as detail.
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence).

    >>> yy, xx = np.mgrid[:300, :300]
    >>> alpha = ((np.abs(xx - 150) < 100) & (np.abs(yy - 150) < 100)).astype(np.float32)
    >>> checker = (((xx // 4) + (yy // 4)) % 2 * 200 + 20).astype(np.uint8)
    >>> rgb = np.repeat(checker[..., None], 3, axis=2)
    >>> sharp = product_exposure(rgb, alpha, analysis_side=200, min_texture_std=3.0, clip_high=250, clip_low=5)
    >>> soft = product_exposure(cv2.GaussianBlur(rgb, (0, 0), 2.0), alpha, analysis_side=200,
    ...                         min_texture_std=3.0, clip_high=250, clip_low=5)
    >>> sharp.laplacian_variance > 20 * soft.laplacian_variance, sharp.clipped_highlights
    (True, 0.0)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    if analysis_side < 16:
        raise ValueError(f"analysis_side must be >= 16, got {analysis_side}")
    x0, y0, x1, y1 = bbox(output_alpha)
    rgb, alpha = output_rgb[y0:y1, x0:x1], output_alpha[y0:y1, x0:x1]
    f = analysis_side / max(x1 - x0, y1 - y0)
    grey_full = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = resize_to(grey_full, f, exact=False).astype(np.float32)
    small_alpha = resize_to(alpha, f, exact=False)
    inner = cv2.erode((small_alpha >= 0.5).astype(np.uint8), disk(2)).astype(bool)
    lap_var, spread = None, 0.0
    if inner.sum() >= 16:
        spread = float(grey[inner].std())
        if spread >= min_texture_std:
            lap_var = float(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[inner].var())

    step = 2 if int(np.count_nonzero(alpha[::2, ::2] >= 0.5)) > 0 else 1
    sub, prod = rgb[::step, ::step], (alpha[::step, ::step] >= 0.5).view(np.uint8)
    lo = np.minimum(np.minimum(sub[..., 0], sub[..., 1]), sub[..., 2])
    hi = np.maximum(np.maximum(sub[..., 0], sub[..., 1]), sub[..., 2])
    n = cv2.countNonZero(prod)
    return Exposure(
        laplacian_variance=lap_var,
        texture_std=spread,
        clipped_highlights=cv2.countNonZero((lo >= clip_high).view(np.uint8) & prod) / n,
        clipped_shadows=cv2.countNonZero((hi <= clip_low).view(np.uint8) & prod) / n,
        mean_luma=float(cv2.mean(grey_full, mask=(alpha >= 0.5).view(np.uint8))[0]),
    )
