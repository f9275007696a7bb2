"""Colour decontamination of a cut's soft edge: remove the old backdrop's colour spill."""

from __future__ import annotations

import cv2
import numpy as np


def decontaminate_edges(rgb: np.ndarray, mask: np.ndarray, *, radius: int = 12) -> np.ndarray:
    """Re-estimate the foreground colour F of partially covered pixels.

    Inputs: ``rgb`` (H, W, 3) uint8 sRGB, ``mask`` (H, W) float in [0, 1]. With the
    compositing equation I = a F + (1 - a) B, the backdrop B near the edge is estimated as
    the mask-weighted local mean of pure-background pixels, and the product colour as the
    local mean of solid product pixels; F is solved where a > 0.1 and pulled towards the
    local product colour where the solve is unstable. Pixels with a >= 0.98 or a <= 0.02
    are returned unchanged, so interior product colours are untouched.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {rgb.shape[:2]}")
    image = rgb.astype(np.float32)
    a = np.clip(mask.astype(np.float32), 0.0, 1.0)
    band = (a > 0.02) & (a < 0.98)
    if not band.any():
        return rgb.copy()
    size = (2 * radius + 1, 2 * radius + 1)

    def local_mean(weight: np.ndarray) -> np.ndarray:
        w = cv2.boxFilter(weight, -1, size, normalize=False)
        s = cv2.boxFilter(image * weight[..., None], -1, size, normalize=False)
        return s / np.maximum(w, 1e-6)[..., None], w

    background, bg_weight = local_mean((a <= 0.02).astype(np.float32))
    product, _ = local_mean((a >= 0.98).astype(np.float32))
    alpha = np.maximum(a, 1e-3)[..., None]
    solved = (image - (1.0 - alpha) * background) / alpha
    trust = np.clip((a - 0.1) / 0.4, 0.0, 1.0)[..., None] * (bg_weight > 0)[..., None]
    estimate = trust * solved + (1.0 - trust) * product
    out = image.copy()
    out[band] = np.clip(estimate[band], 0.0, 255.0)
    return (out + 0.5).astype(np.uint8)
