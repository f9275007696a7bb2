"""The photo's own backdrop near each place of the outline (quality/old_backdrop.py), and the
fringe check reading it: constructed cases with known answers."""

import numpy as np
import pytest

from quality.edges import edge_quality
from quality.old_backdrop import MAX_FIELD_SIDE, estimate_old_background, local_old_backdrop

EDGE = dict(profile_px=10, rim_px=3, ref_px=(5, 9), halo_delta_l=8.0, fringe_weight=0.3, fringe_min_separation=20.0)


def _photo(size=200, box=(60, 140)):
    """A grey square on a backdrop whose left half is red and right half blue."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = (190, 40, 40)
    img[:, size // 2 :] = (40, 40, 190)
    mask = np.zeros((size, size), np.float32)
    a, b = box
    mask[a:b, a:b] = 1.0
    img[mask > 0] = (128, 128, 128)
    return img, mask


def _canvas(img, mask, scale, bleed):
    """The square drawn ``scale`` x on white, its outer 3 canvas px blended with the photo's
    backdrop *where it lay* (weight ``bleed``): the fringe a poor cut leaves."""
    import cv2

    h, w = mask.shape
    size = (int(w * scale), int(h * scale))
    m = np.array([[scale, 0, 0], [0, scale, 0]], np.float64)
    src = cv2.warpAffine(img, m, size, flags=cv2.INTER_NEAREST)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR)
    inside = (alpha >= 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    band = (inside > 0) & (depth <= 3)
    x = np.arange(size[0])[None, :].repeat(size[1], 0)
    old = np.where((x < size[0] // 2)[..., None], (190, 40, 40), (40, 40, 190)).astype(np.float32)
    fg = np.full(src.shape, 128, np.float32)
    fg[band] = (1 - bleed) * fg[band] + bleed * old[band]
    out = alpha[..., None] * fg + (1 - alpha[..., None]) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), alpha, m


def test_reads_the_backdrop_beside_each_point_through_the_placement():
    img, mask = _photo()
    m = np.array([[1.5, 0, 10.0], [0, 1.5, -4.0]])
    lb = local_old_backdrop(img, mask, m)
    left = m @ np.array([58.0, 100.0, 1.0])  # just left of the square, on red
    right = m @ np.array([141.0, 100.0, 1.0])  # just right of it, on blue
    got = lb.at(np.stack([left, right]))
    np.testing.assert_allclose(got, [[190, 40, 40], [40, 40, 190]], atol=1.0)


def test_falls_back_to_the_median_where_the_product_fills_the_window():
    img, mask = _photo(size=200, box=(10, 190))
    lb = local_old_backdrop(img, mask, np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    centre = lb.at(np.array([[100.0, 100.0]]))[0]
    np.testing.assert_allclose(centre, estimate_old_background(img, mask))


def test_no_backdrop_in_the_photo_gives_none():
    img, _ = _photo()
    assert local_old_backdrop(img, np.ones(img.shape[:2], np.float32), np.eye(2, 3)) is None


def test_a_large_photo_is_reduced_and_still_read_in_place():
    img, mask = _photo(size=2400, box=(700, 1700))  # the product's box exceeds MAX_FIELD_SIDE
    lb = local_old_backdrop(img, mask, np.array([[0.5, 0, 0], [0, 0.5, 0]]))
    assert max(lb.counts.shape) <= MAX_FIELD_SIDE
    got = lb.at(np.array([[0.5 * 690, 600.0], [0.5 * 1712, 600.0]]))
    np.testing.assert_allclose(got, [[190, 40, 40], [40, 40, 190]], atol=1.0)


@pytest.mark.parametrize("bleed, fringed", [(0.0, False), (0.6, True)])
def test_the_fringe_check_finds_the_local_backdrop_on_a_two_coloured_photo(bleed, fringed):
    img, mask = _photo()
    rgb, alpha, m = _canvas(img, mask, 2.0, bleed)
    lb = local_old_backdrop(img, mask, m)
    q = edge_quality(rgb, alpha, old_background_rgb=lb, smooth_px=4.0, **EDGE)
    assert q.fringe_measured > 0.9 * q.n_profiles
    if fringed:
        assert q.fringe_share > 0.8 and q.fringe_weight > 0.4
    else:
        assert q.fringe_share < 0.05
    # the photo's median (half red, half blue) is the colour of neither side: a fringe
    # measured against it is missed
    median = estimate_old_background(img, mask)
    q_med = edge_quality(rgb, alpha, old_background_rgb=median, smooth_px=4.0, **EDGE)
    assert q_med.fringe_share < 0.2


def _corpus_case(seed: int, index: int, defect: str, severity: float | None = None):
    from bench import qc_corpus

    product = qc_corpus._product(seed, index)
    for case in qc_corpus.cases(product, seed=seed, defects=[] if defect == "clean" else [defect]):
        if case.defect == defect and (severity is None or case.severity == severity):
            return case
    raise AssertionError(f"no {defect} case {severity} for {product.name}")


@pytest.mark.parametrize("seed,index,severity", [(13, 34, 0.7), (13, 52, 0.7)])
def test_a_fringe_of_the_local_backdrop_is_named_where_the_median_missed_it(seed, index, severity):
    """Corpus seed 13's lamp and ring on textured photos: read against the photo's median
    colour (gate 2.5.0) their visible fringes measured 0; against the backdrop beside each
    place of the outline they fail for it, and their clean renders do not."""
    from bench import qc_calibration

    case = _corpus_case(seed, index, "fringe", severity)
    assert case.visible
    row = qc_calibration.grade(case)
    assert "edge.fringe" in row["failing"], row["reasons"]
    assert "old backdrop colour on the edge" in row["reasons"]
    clean = qc_calibration.grade(_corpus_case(seed, index, "clean"))
    assert "edge.fringe" not in clean["failing"], clean["reasons"]
