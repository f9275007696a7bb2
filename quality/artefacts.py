"""Compression artefacts in the shipped file: JPEG tiles on the product.

JPEG codes 8x8 blocks independently and quantises each block's mean (its DC term) on its
own: the mean lands on a grid of ``Q/8`` grey levels, ``Q`` the luma table's DC step. The
error that adds to a block's mean lies within ``+-Q/16``, so two neighbouring blocks'
errors differ by at most ``Q/8``: 0.375 grey levels at quality 90 (``Q`` = 3 in the
standard table), 2.0 at quality 50 (``Q`` = 16). A coarser quantiser puts neighbouring
blocks of a smooth surface on different levels a few grey levels apart: the straight
8-px tile edges a person sees.

The gate compares the shipped file with the lossless canvas it was encoded from (the
encoder's input is at hand, so content cancels out): the error image (shipped - canvas,
luma) is averaged over each 8x8 block, and the measure is the share of neighbouring block
pairs wholly on the product whose errors step by more than ``TILE_STEP`` grey levels,
more than any quantiser of quality 50 or finer can make (with room for the rounding and
clipping of decoded pixels). A plain backdrop encodes without tiles and is left out.

Why a share of visible steps, not their mean size: the mean step over all pairs reads the
quantiser, not what shows. It is diluted where blocks quantise alike (a flat product at
quality 20 read less than a detailed one at 70) and it grows with ``Q`` below any step a
person sees: quality 85 read 0.21 grey levels, over the old fail level of 0.2, so a
profile set to quality 85 had every SKU rejected. The figures behind ``TILE_STEP`` and
the limit are in quality/thresholds.py (``jpeg_tiles``). Reference: the DC-step view of
blocking in Wang, Bovik & Evans, "Blind measurement of blocking artifacts in images"
(ICIP 2000), measured here against the known original.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality._validate import check_pair, check_rgb

__all__ = ["TILE_STEP", "tile_share"]

BLOCK = 8
TILE_STEP = 2.25  # grey levels: over quality 50's largest step (2.0) plus decoding's rounding


def tile_share(
    shipped_rgb: np.ndarray, canvas_rgb: np.ndarray, alpha: np.ndarray, validate: bool = True
) -> float | None:
    """Share of neighbouring 8x8 block pairs on the product whose block-mean errors step by
    more than ``TILE_STEP`` grey levels; None when under 16 block pairs lie on it.

    Inputs: ``shipped_rgb`` and ``canvas_rgb`` (H, W, 3) uint8 sRGB of the same size, the
    JPEG grid at the origin (an export canvas); ``alpha`` (H, W) float in [0, 1].
    ``shipped_rgb`` may instead be the shipped file's grey levels, (H, W) uint8 (a JPEG
    decoded straight to luma, which is what JPEG codes: Rec. 601 weights, as
    ``cv2.COLOR_RGB2GRAY``).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence).
    Cost: one pass over the coverage to find the blocks wholly on the product, then grey
    levels and block means only inside their bounding box (what the measure reads).

    >>> y, x = np.mgrid[0:64, 0:64]; canvas = np.repeat((60 + x + y)[..., None], 3, 2).astype(np.uint8)
    >>> a = np.ones((64, 64), np.float32)  # a smooth ramp, then its block means on a coarse grid
    >>> means = canvas.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))
    >>> tiles = np.kron(np.round(means / 24) * 24, np.ones((8, 8, 1))).astype(np.uint8)
    >>> tile_share(canvas, canvas, a), round(tile_share(tiles, canvas, a), 2)
    (0.0, 1.0)
    """
    grey = np.ndim(shipped_rgb) == 2
    if validate:
        if grey:
            if np.asarray(shipped_rgb).dtype != np.uint8:
                raise ValueError(f"shipped grey levels must be uint8, got {np.asarray(shipped_rgb).dtype}")
        else:
            check_rgb("shipped_rgb", shipped_rgb)
        canvas_rgb, alpha = check_pair("canvas_rgb", canvas_rgb, "alpha", alpha, True)
    if shipped_rgb.shape[:2] != canvas_rgb.shape[:2] or not (grey or shipped_rgb.shape == canvas_rgb.shape):
        raise ValueError(f"shipped image {shipped_rgb.shape} and canvas {canvas_rgb.shape} differ in size")
    nby, nbx = alpha.shape[0] // BLOCK, alpha.shape[1] // BLOCK
    if nby == 0 or nbx == 0:
        return None
    h, w = nby * BLOCK, nbx * BLOCK
    # A block is on the product when all its 64 pixels are (alpha >= 0.99): the area mean of
    # the 0/255 map is 255 exactly then, and at most 251 otherwise.
    solid = cv2.compare(alpha[:h, :w], 0.99, cv2.CMP_GE)
    on = cv2.resize(solid, (nbx, nby), interpolation=cv2.INTER_AREA) == 255
    bx, by, bw, bh = cv2.boundingRect(on.view(np.uint8))
    if bw == 0:
        return None
    on = on[by : by + bh, bx : bx + bw]
    rows, cols = slice(by * BLOCK, (by + bh) * BLOCK), slice(bx * BLOCK, (bx + bw) * BLOCK)
    shipped = shipped_rgb[rows, cols] if grey else cv2.cvtColor(shipped_rgb[rows, cols], cv2.COLOR_RGB2GRAY)
    error = cv2.subtract(shipped, cv2.cvtColor(canvas_rgb[rows, cols], cv2.COLOR_RGB2GRAY), dtype=cv2.CV_32F)
    blocks = cv2.resize(error, (bw, bh), interpolation=cv2.INTER_AREA)  # exact 8x8 means
    steps = np.concatenate(
        [np.abs(np.diff(blocks, axis=1))[on[:, 1:] & on[:, :-1]], np.abs(np.diff(blocks, axis=0))[on[1:] & on[:-1]]]
    )
    return float(np.count_nonzero(steps > TILE_STEP)) / steps.size if steps.size >= 16 else None
