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


def block_steps(shipped_rgb: np.ndarray, canvas_rgb: np.ndarray, alpha: np.ndarray) -> float | None:
    """Mean step (grey levels) between the 8x8 block-mean errors of neighbouring blocks on
    the product; None when under 16 block pairs lie on it.

    Inputs: ``shipped_rgb`` and ``canvas_rgb`` (H, W, 3) uint8 sRGB of the same size, the
    JPEG grid at the origin (an export canvas); ``alpha`` (H, W) float in [0, 1].

    >>> rng = np.random.default_rng(0); canvas = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    >>> a = np.ones((64, 64), np.float32)
    >>> tiles = (canvas.astype(int) + np.kron(rng.integers(-6, 7, (8, 8, 1)), np.ones((8, 8, 1), int)))
    >>> block_steps(canvas, canvas, a), block_steps(tiles.astype(np.uint8), canvas, a) > 3
    (0.0, True)
    """
    check_rgb("shipped_rgb", shipped_rgb)
    canvas_rgb, alpha = check_pair("canvas_rgb", canvas_rgb, "alpha", alpha, True)
    if shipped_rgb.shape != canvas_rgb.shape:
        raise ValueError(f"shipped image {shipped_rgb.shape} and canvas {canvas_rgb.shape} differ in size")
    h, w = (alpha.shape[0] // BLOCK) * BLOCK, (alpha.shape[1] // BLOCK) * BLOCK
    error = cv2.cvtColor(shipped_rgb[:h, :w], cv2.COLOR_RGB2GRAY).astype(np.float32) - cv2.cvtColor(
        canvas_rgb[:h, :w], cv2.COLOR_RGB2GRAY
    ).astype(np.float32)
    blocks = error.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    on = (alpha[:h, :w] >= 0.99).reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).all(axis=(1, 3))
    steps = np.concatenate(
        [np.abs(np.diff(blocks, axis=1))[on[:, 1:] & on[:, :-1]], np.abs(np.diff(blocks, axis=0))[on[1:] & on[:-1]]]
    )
    return float(steps.mean()) if steps.size >= 16 else None
