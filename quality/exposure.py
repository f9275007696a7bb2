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

__all__ = ["Exposure", "product_exposure", "clipped_shares"]


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
    box: tuple[int, int, int, int] | None = None,
) -> Exposure:
    """Variance of the Laplacian and clipped shares on the product of a canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float in [0, 1].
    Grey levels are Rec. 601 luma of the sRGB values (``cv2.COLOR_RGB2GRAY``), 0..255;
    the Laplacian is the 4-neighbour kernel (Pech-Pacheco et al. 2000, see the module
    docstring for the size normalisation); the interior is ``alpha >= 0.5`` eroded by
    2 px at the analysis size so the product outline does not count as detail.
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence);
    ``box``: ``bbox(output_alpha)`` when the caller has it already.

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
    x0, y0, x1, y1 = box or bbox(output_alpha)
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
    high, low = clipped_shares(output_rgb, output_alpha, clip_high=clip_high, clip_low=clip_low, box=(x0, y0, x1, y1))
    return Exposure(
        laplacian_variance=lap_var,
        texture_std=spread,
        clipped_highlights=high,
        clipped_shadows=low,
        mean_luma=float(cv2.mean(grey_full, mask=cv2.compare(alpha, 0.5, cv2.CMP_GE))[0]),
    )


def clipped_shares(
    rgb: np.ndarray,
    alpha: np.ndarray,
    *,
    clip_high: int,
    clip_low: int,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[float, float]:
    """Shares of the product (``alpha >= 0.5``) with every channel ``>= clip_high`` (blown)
    and ``<= clip_low`` (crushed), on every second row and column (see the module
    docstring). Inputs as ``product_exposure``, already checked; ``box``: ``bbox(alpha)``."""
    x0, y0, x1, y1 = box or bbox(alpha)
    # every second row and column of the box, unless that misses the product (a sliver)
    prod = cv2.compare(_evens(alpha, x0, y0, x1, y1), 0.5, cv2.CMP_GE)
    if cv2.countNonZero(prod):
        rgb = _evens(rgb, x0, y0, x1, y1)
    else:
        rgb, prod = rgb[y0:y1, x0:x1], cv2.compare(alpha[y0:y1, x0:x1], 0.5, cv2.CMP_GE)
    n = cv2.countNonZero(prod)
    high = cv2.inRange(rgb, (clip_high,) * 3, (255,) * 3)
    low = cv2.inRange(rgb, (0,) * 3, (clip_low,) * 3)
    return cv2.countNonZero(cv2.bitwise_and(high, prod)) / n, cv2.countNonZero(cv2.bitwise_and(low, prod)) / n


def _evens(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``img[y0:y1:2, x0:x1:2]``, contiguous (a nearest-neighbour halving reads exactly the
    even rows and columns of an even-sized region; an odd side borrows the next one)."""
    w, h = x1 - x0, y1 - y0
    ex1, ey1 = x1 + w % 2, y1 + h % 2
    if ex1 > img.shape[1] or ey1 > img.shape[0]:
        return np.ascontiguousarray(img[y0:y1:2, x0:x1:2])
    return cv2.resize(img[y0:ey1, x0:ex1], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_NEAREST)
