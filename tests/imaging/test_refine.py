"""imaging.refine: guided filter, mask cleaning, refinement never worse on known masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from imaging.errors import ModelInputError
from imaging.refine import clean_mask, guided_filter, refine_mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum())


def _scene(seed: int, background: str = "grass") -> tuple[np.ndarray, np.ndarray]:
    """A shaded product of known shape on a real texture; truth alpha anti-aliased (4x render)."""
    rng = np.random.default_rng(seed)
    h, w = 192, 224
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.ellipse(big, (w * 2, h * 2), (w * 4 // 3, h * 4 // 3), float(rng.uniform(0, 90)), 0, 360, 255, -1)
    truth = cv2.resize(big.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
    back = getattr(data, background)()[:h, :w].astype(np.float32)[..., None] * np.float32([0.8, 1.0, 0.7])
    colour = rng.uniform(30, 220, 3).astype(np.float32)
    shade = np.linspace(0.8, 1.2, w, dtype=np.float32)[None, :, None]
    rgb = truth[..., None] * colour * shade + (1 - truth[..., None]) * back
    rgb = np.clip(rgb + rng.normal(0, 2, rgb.shape), 0, 255).astype(np.uint8)
    return rgb, truth


def _coarse_net_output(truth: np.ndarray, seed: int) -> np.ndarray:
    """What a 64x64-grid network gives back: blurred, slightly grown, shifted by ~1 px."""
    rng = np.random.default_rng(seed)
    h, w = truth.shape
    small = cv2.resize(truth, (64, 64), interpolation=cv2.INTER_AREA)
    small = cv2.dilate(small, np.ones((2, 2), np.uint8))
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    shift = np.float32([[1, 0, rng.uniform(-1.5, 1.5)], [0, 1, rng.uniform(-1.5, 1.5)]])
    return np.clip(cv2.warpAffine(up, shift, (w, h), borderMode=cv2.BORDER_REPLICATE), 0, 1)


@pytest.mark.parametrize("seed, background", [(0, "grass"), (1, "gravel"), (2, "brick"), (3, "grass")])
def test_refined_iou_is_at_least_the_raw_iou(seed, background):
    rgb, truth = _scene(seed, background)
    raw = _coarse_net_output(truth, seed)
    refined = refine_mask(rgb, raw)
    assert refined.dtype == np.float32 and refined.shape == truth.shape
    assert 0.0 <= refined.min() and refined.max() <= 1.0
    assert _iou(refined, truth) >= _iou(raw, truth)
    assert _iou(refined, truth) > 0.97


def test_refinement_sharpens_the_soft_edge():
    rgb, truth = _scene(5)
    raw = _coarse_net_output(truth, 5)
    near_edge = cv2.dilate((np.abs(truth - 0.5) < 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    err_raw = np.abs(raw - truth)[near_edge].mean()
    err_ref = np.abs(refine_mask(rgb, raw) - truth)[near_edge].mean()
    assert err_ref < 0.7 * err_raw


def test_matting_gives_a_valid_alpha_and_keeps_the_product():
    rgb, truth = _scene(6)
    raw = _coarse_net_output(truth, 6)
    matte = refine_mask(rgb, raw, matting=True)
    assert matte.dtype == np.float32 and 0.0 <= matte.min() and matte.max() <= 1.0
    assert _iou(matte, truth) > 0.95
    assert _iou(matte, truth) >= _iou(raw, truth) - 0.01


def test_clean_mask_drops_specks_fills_pinholes_keeps_real_holes():
    m = np.zeros((200, 200), bool)
    cv2.circle(m.view(np.uint8), (100, 100), 70, 1, -1)
    cv2.circle(m.view(np.uint8), (100, 100), 25, 0, -1)  # a ring's hole: 7 % of the area, kept
    m[60:62, 140:142] = False  # pinhole, filled
    m[5:7, 5:7] = True  # speck, dropped
    out = clean_mask(m)
    assert out[100, 100] == 0 and out[60, 140] and not out[5, 5]
    assert clean_mask(np.zeros((10, 10), bool)).sum() == 0


def test_guided_filter_keeps_constants_and_follows_guide_edges():
    guide = np.zeros((64, 64, 3), np.float32)
    guide[:, 32:] = 1.0
    const = np.full((64, 64), 0.25, np.float32)
    np.testing.assert_allclose(guided_filter(guide, const, 4), 0.25, atol=1e-4)
    offset_step = np.zeros((64, 64), np.float32)
    offset_step[:, 34:] = 1.0  # mask edge 2 px off the photo's edge
    q = guided_filter(guide, offset_step, 6)
    assert q[:, 33].mean() > 0.5 and q[:, 31].mean() < 0.5  # pulled onto the photo edge


def test_guided_filter_subsampled_matches_full_resolution():
    rgb, truth = _scene(7)
    guide = rgb.astype(np.float32) / 255
    full = guided_filter(guide, (truth > 0.5).astype(np.float32), 3)
    fast = guided_filter(guide, (truth > 0.5).astype(np.float32), 8)  # subsampled path
    assert _iou(full, truth) > 0.97 and _iou(fast, truth) > 0.97


def test_strength_zero_returns_the_raw_mask_and_bad_inputs_are_refused():
    rgb, truth = _scene(8)
    raw = _coarse_net_output(truth, 8)
    np.testing.assert_array_equal(refine_mask(rgb, raw, strength=0), raw)
    with pytest.raises(ModelInputError, match="does not match"):
        refine_mask(rgb, raw[:-1])
    with pytest.raises(ModelInputError, match="uint8"):
        refine_mask(rgb.astype(np.float32), raw)
    with pytest.raises(ModelInputError, match=r"\[0, 1\]"):
        refine_mask(rgb, raw * 255)
    with pytest.raises(ModelInputError, match="strength"):
        refine_mask(rgb, raw, strength=-1)
    assert refine_mask(rgb, np.zeros_like(raw)).max() == 0.0
