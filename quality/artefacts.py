"""Compression artefacts in the shipped file: JPEG blocking on the product.

JPEG codes 8x8 blocks independently; at low quality each block's mean (its DC term) is
quantised on its own, so neighbouring blocks step against each other: the tiles a person
sees on smooth surfaces. The gate compares the shipped file with the lossless canvas it
was encoded from: the error image (shipped - canvas, luma) is averaged over each 8x8
block and the measure is the mean absolute difference of those block errors between
neighbouring blocks lying wholly on the product, in grey levels. Content cancels out (it
is in both images); sub-block noise and ringing average away; a plain backdrop encodes
without visible blocks and is left out. Reference: the DC-step view of blocking in Wang,
Bovik & Evans, "Blind measurement of blocking artifacts in images" (ICIP 2000); measured
here against the known original, as the encoder's input is at hand.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality._validate import check_pair, check_rgb

__all__ = ["block_steps"]

BLOCK = 8


def block_steps(
    shipped_rgb: np.ndarray, canvas_rgb: np.ndarray, alpha: np.ndarray, validate: bool = True
) -> float | None:
    """Mean step (grey levels) between the 8x8 block-mean errors of neighbouring blocks on
    the product; None when under 16 block pairs lie on it.

    Inputs: ``shipped_rgb`` and ``canvas_rgb`` (H, W, 3) uint8 sRGB of the same size, the
    JPEG grid at the origin (an export canvas); ``alpha`` (H, W) float in [0, 1].
    ``shipped_rgb`` may instead be the shipped file's grey levels, (H, W) uint8 (a JPEG
    decoded straight to luma, which is what JPEG codes: Rec. 601 weights, as
    ``cv2.COLOR_RGB2GRAY``).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence).
    Cost: one pass over the coverage to find the blocks wholly on the product, then grey
    levels and block means only inside their bounding box (what the measure reads).

    >>> rng = np.random.default_rng(0); canvas = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    >>> a = np.ones((64, 64), np.float32)
    >>> tiles = (canvas.astype(int) + np.kron(rng.integers(-6, 7, (8, 8, 1)), np.ones((8, 8, 1), int)))
    >>> block_steps(canvas, canvas, a), block_steps(tiles.astype(np.uint8), canvas, a) > 3
    (0.0, True)
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
    return float(steps.mean()) if steps.size >= 16 else None
