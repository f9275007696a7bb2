"""quality/exposure.py: blur (variance of Laplacian) and clipping on the product."""

import cv2
import numpy as np
import pytest

from quality.exposure import product_exposure

KW = dict(analysis_side=512, min_texture_std=4.0, clip_high=250, clip_low=5)
BLUR_WARN, BLUR_FAIL = 40.0, 15.0  # the default QcThresholds.blur_laplacian_var


def _product(size=800, texture=True, seed=0):
    yy, xx = np.mgrid[:size, :size]
    alpha = ((np.abs(xx - size / 2) < size * 0.35) & (np.abs(yy - size / 2) < size * 0.4)).astype(np.float32)
    grey = np.full((size, size), 140.0)
    if texture:
        grey += 25 * np.sin(xx / 5.0) * np.cos(yy / 3.0) + np.random.default_rng(seed).normal(0, 6, (size, size))
    rgb = np.repeat(np.clip(grey, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
    rgb[alpha < 0.5] = 255
    return rgb, alpha


def test_sharp_product_passes_blurred_fails():
    rgb, alpha = _product()
    sharp = product_exposure(rgb, alpha, **KW)
    soft = product_exposure(cv2.GaussianBlur(rgb, (0, 0), 3.0), alpha, **KW)
    assert sharp.laplacian_variance > BLUR_WARN
    assert soft.laplacian_variance < BLUR_FAIL


def test_size_normalised():
    # The same product drawn at 800 and at 1600 px reads about the same sharpness.
    rgb, alpha = _product(800)
    big_rgb = cv2.resize(rgb, (1600, 1600), interpolation=cv2.INTER_NEAREST)
    big_alpha = cv2.resize(alpha, (1600, 1600), interpolation=cv2.INTER_NEAREST)
    a = product_exposure(rgb, alpha, **KW).laplacian_variance
    b = product_exposure(big_rgb, big_alpha, **KW).laplacian_variance
    assert b == pytest.approx(a, rel=0.15)


def test_flat_product_is_not_measurable():
    rgb, alpha = _product(texture=False)
    e = product_exposure(rgb, alpha, **KW)
    assert e.laplacian_variance is None and e.texture_std < 1.0


def test_clipping_shares():
    rgb, alpha = _product(400, texture=False)
    inside = np.argwhere(alpha >= 0.5)
    n = len(inside)
    rgb[inside[: n // 10, 0], inside[: n // 10, 1]] = 255  # 10 % blown
    rgb[inside[-n // 20 :, 0], inside[-n // 20 :, 1]] = 0  # 5 % crushed
    e = product_exposure(rgb, alpha, **KW)
    assert e.clipped_highlights == pytest.approx(0.10, abs=0.01)
    assert e.clipped_shadows == pytest.approx(0.05, abs=0.01)
    clean = product_exposure(*_product(400, texture=False), **KW)
    assert clean.clipped_highlights == 0.0 and clean.clipped_shadows == 0.0
    assert clean.mean_luma == pytest.approx(140.0, abs=0.5)


def test_clear_errors():
    rgb, alpha = _product(100)
    with pytest.raises(ValueError, match="empty"):
        product_exposure(rgb, np.zeros_like(alpha), **KW)
    with pytest.raises(ValueError, match="analysis_side"):
        product_exposure(rgb, alpha, **{**KW, "analysis_side": 4})
    with pytest.raises(ValueError, match="uint8"):
        product_exposure(rgb.astype(np.float64), alpha, **KW)
