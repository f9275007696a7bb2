"""quality/consistency.py: planted outliers in a synthetic batch, robust statistics."""

import numpy as np
import pytest

from quality.consistency import DIMENSIONS, ImageFeatures, batch_outliers, image_features

FLOORS = dict(
    brightness_l=1.0,
    white_balance_a=0.75,
    white_balance_b=0.75,
    background_l=0.75,
    scale=0.01,
    centroid_x=0.01,
    centroid_y=0.01,
)
KW = dict(z_limit=2.0, min_batch=4, sigma_floor=FLOORS)


def _image(rng, product=(150, 70, 60), bg=(250, 250, 250), scale=0.6, shift=(0, 0), size=256):
    """A catalogue image: a product rectangle on a backdrop, with small natural jitter."""
    jit = rng.normal(0, 1.0, 3)
    rgb = np.empty((size, size, 3), np.float64)
    rgb[...] = np.array(bg) + rng.normal(0, 0.5)
    alpha = np.zeros((size, size), np.float32)
    half = int(size * scale / 2 + rng.normal(0, 0.5))
    cx, cy = size // 2 + shift[0] + int(rng.integers(-1, 2)), size // 2 + shift[1] + int(rng.integers(-1, 2))
    alpha[cy - half : cy + half, cx - half // 2 : cx + half // 2] = 1.0
    rgb[alpha > 0] = np.array(product) + jit
    return np.clip(rgb, 0, 255).round().astype(np.uint8), alpha


def _batch(plants, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [image_features(*_image(rng, **plants.get(i, {}))) for i in range(n)]


def test_features_of_a_known_image():
    rgb = np.full((100, 200, 3), 255, np.uint8)
    alpha = np.zeros((100, 200), np.float32)
    rgb[20:80, 50:110], alpha[20:80, 50:110] = (128, 128, 128), 1.0
    f = image_features(rgb, alpha)
    assert f.brightness_l == pytest.approx(53.585, abs=0.01)
    assert f.background_l == pytest.approx(100.0, abs=0.01)
    assert abs(f.white_balance_a) < 0.01 and abs(f.white_balance_b) < 0.01
    assert f.scale == pytest.approx(0.3)
    assert f.centroid_x == pytest.approx(0.4) and f.centroid_y == pytest.approx(0.5)


def test_one_planted_outlier_per_dimension():
    plants = {
        1: {"product": (200, 110, 100)},  # brighter product
        3: {"bg": (255, 250, 234)},  # warm backdrop, same L* (white balance)
        5: {"bg": (225, 225, 225)},  # darker backdrop tone
        7: {"scale": 0.75},  # product drawn larger
        9: {"shift": (30, 0)},  # off centre
    }
    report = batch_outliers(_batch(plants), **KW)
    expected = {1: ["brightness"], 3: ["white_balance"], 5: ["background_tone"], 7: ["scale"], 9: ["position"]}
    for i, flags in enumerate(report.flagged):
        assert flags == expected.get(i, []), (i, flags, report.robust_z[i])
    assert report.note == ""


def test_two_outliers_in_one_dimension_are_both_found():
    # With mean/std the pair would inflate sigma and hide each other; median/MAD does not.
    plants = {2: {"product": (210, 120, 110)}, 6: {"product": (215, 125, 115)}}
    report = batch_outliers(_batch(plants, n=10), **KW)
    assert report.flagged[2] == ["brightness"] and report.flagged[6] == ["brightness"]
    assert sum(bool(f) for f in report.flagged) == 2
    table = np.array([f.brightness_l for f in _batch(plants, n=10)])
    classic_z = (table - table.mean()) / table.std()
    assert np.sum(np.abs(classic_z) > 2.0) < 2  # what plain statistics would have missed


def test_small_batch_gets_no_flags():
    feats = _batch({1: {"product": (250, 200, 200)}}, n=3)
    report = batch_outliers(feats, **KW)
    assert report.flagged == [[], [], []]
    assert "smaller than 4" in report.note


def test_identical_batch_flags_nothing():
    rng = np.random.default_rng(0)
    f = image_features(*_image(rng))
    report = batch_outliers([f] * 6, **KW)
    assert report.flagged == [[]] * 6
    assert all(v == 0.0 for z in report.robust_z for v in z.values())


def test_errors():
    f = image_features(*_image(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="sigma_floor"):
        batch_outliers([f] * 5, z_limit=2.0, min_batch=4, sigma_floor={"scale": 0.01})
    bad = ImageFeatures(**{**f.as_dict(), "scale": float("nan")})
    with pytest.raises(ValueError, match="NaN"):
        batch_outliers([f] * 4 + [bad], **KW)
    with pytest.raises(ValueError, match="empty"):
        image_features(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.float32))
    assert set(FLOORS) == {f for dims in DIMENSIONS.values() for f in dims}
