"""quality/edges.py: halos, fringes, soft and jagged edges of known size."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from quality.edges import edge_quality, estimate_old_background

KW = dict(
    profile_px=10,
    rim_px=3,
    ref_px=(5, 9),
    halo_delta_l=8.0,
    fringe_weight=0.3,
    fringe_min_separation=20.0,
    smooth_px=16.0,
)


def _edges(s, **kw):
    old = estimate_old_background(s.source_rgb, s.source_mask)
    return edge_quality(s.output_rgb, s.output_alpha, old_background_rgb=old, **{**KW, **kw})


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"bg": (200, 200, 200)},
        {"light_deg": 120, "shadow_offset": 12, "contact": 0.4},
        {"scale": 3.0, "size": 1024},
        {"scale": 0.7, "size": 256},
    ],
)
def test_clean_edges_are_not_flagged(scene, kw):
    q = _edges(scene.make(**kw))
    assert q.halo_share == 0.0
    assert q.fringe_share == 0.0
    assert q.roughness_px < 0.3
    assert q.n_profiles > 300


@pytest.mark.parametrize("width", [2, 3])
def test_bright_halo_of_known_width(scene, width):
    q = _edges(scene.make(halo_px=width, bg=(200, 200, 200)))
    assert q.halo_share > 0.95
    assert q.halo_excursion > 8.0  # bright
    assert width - 1.0 <= q.halo_width_px <= width + 0.5
    assert q.fringe_share == 0.0


def test_halo_width_grows_with_the_halo(scene):
    w2 = _edges(scene.make(halo_px=2, bg=(200, 200, 200))).halo_width_px
    w3 = _edges(scene.make(halo_px=3, bg=(200, 200, 200))).halo_width_px
    assert w3 > w2 + 0.3


def test_dark_halo(scene):
    q = _edges(scene.make(halo_px=2, halo_rgb=(20, 20, 20)))
    assert q.halo_share > 0.95 and q.halo_excursion < -20.0


@pytest.mark.parametrize("source_px,lo,hi", [(1, 1.5, 3.0), (2, 2.5, 4.0)])
def test_fringe_of_old_background(scene, source_px, lo, hi):
    # The cut-out keeps source_px of green source backdrop; at scale 1.5 that is 1.5 / 3 px.
    s = scene.make(fringe_px=source_px)
    assert estimate_old_background(s.source_rgb, s.source_mask) == (40.0, 170.0, 60.0)
    q = _edges(s)
    assert q.fringe_share > 0.95
    assert q.fringe_weight > 0.5
    assert lo <= q.fringe_width_px <= hi
    assert q.halo_share == 0.0  # green between red and white is a fringe, not a halo


def test_fringe_not_measurable_when_old_background_matches(scene):
    s = scene.make(old_bg=(255, 255, 255), fringe_px=2)
    q = _edges(s)
    assert q.fringe_share is None  # white on white: nothing to see, nothing to claim
    q = edge_quality(s.output_rgb, s.output_alpha, old_background_rgb=None, **KW)
    assert q.fringe_share is None


@pytest.mark.parametrize("product,old_bg", [((20, 20, 20), (75, 75, 75)), ((30, 25, 20), (90, 70, 55))])
def test_fringe_of_a_backdrop_between_the_product_and_white(scene, product, old_bg):
    """Black on dark gravel: the old colour lies on the line from the product to the studio
    white, so the two cannot be unmixed by colour alone; the canvas's alpha says the rim is
    opaque, and an opaque rim moved toward the old colour is a fringe. The clean render of
    the same photo reads none."""
    kw = dict(product_rgb=product, old_bg=old_bg, textured=False)
    fringed = _edges(scene.make(fringe_px=2, **kw))
    assert fringed.fringe_share > 0.9 and fringed.fringe_weight > 0.5
    clean = _edges(scene.make(**kw))
    assert clean.fringe_measured > 300 and clean.fringe_share == 0.0


def test_a_rim_lit_black_product_is_not_a_fringe(scene):
    """A black product's rim light, brighter than the dark backdrop it was shot on, is not
    that backdrop's colour: the opaque rim lies past the old colour on the line."""
    s = scene.make(product_rgb=(20, 20, 20), old_bg=(75, 75, 75), textured=False)
    a = s.output_alpha
    depth = cv2.distanceTransform((a > 0.01).astype(np.uint8), cv2.DIST_L2, 5)
    lit = np.where(depth <= 4, 170.0, s.output_rgb[..., 0])  # the product's colour, its rim lit
    over = np.where(a > 0.01, a * lit + (1 - a) * 255.0, s.output_rgb[..., 0])
    rgb = np.repeat(np.clip(over.round(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    q = _edges(replace(s, output_rgb=rgb))
    assert q.fringe_measured > 300 and q.fringe_share == 0.0


def test_jagged_mask_is_rough(scene):
    clean = _edges(scene.make()).roughness_px
    stair2 = _edges(scene.make(jagged=2)).roughness_px
    stair4 = _edges(scene.make(jagged=4)).roughness_px
    stair8 = _edges(scene.make(jagged=8)).roughness_px
    assert clean < 0.2
    assert 0.4 < stair2 < 0.8  # warn band of the default thresholds
    assert stair4 > 0.8 and stair8 > 0.8  # fail


def test_transition_width(scene):
    s = scene.make()
    assert _edges(s).transition_width_px == pytest.approx(2.44, abs=0.1)  # 1 source px AA at x1.5
    soft = s.output_alpha
    soft = cv2.GaussianBlur(soft, (0, 0), 3.0)
    q = edge_quality(s.output_rgb, soft, old_background_rgb=None, **KW)
    assert q.transition_width_px > 7.0
    hard = (s.output_alpha >= 0.5).astype(np.float32)
    assert edge_quality(s.output_rgb, hard, old_background_rgb=None, **KW).transition_width_px < 1.0


def test_identical_clean_edge_scores_zero_defects(scene):
    s = scene.make(scale=1.0, size=300)
    q = edge_quality(s.output_rgb, s.output_alpha, old_background_rgb=s.old_background_rgb, **KW)
    assert (q.halo_share, q.fringe_share, q.halo_width_px, q.fringe_width_px) == (0.0, 0.0, 0.0, 0.0)


def test_old_background_none_when_product_fills_photo():
    rgb = np.full((50, 50, 3), 100, np.uint8)
    assert estimate_old_background(rgb, np.ones((50, 50), np.float32)) is None


def test_clear_errors(scene):
    s = scene.make()
    with pytest.raises(ValueError, match="empty"):
        edge_quality(s.output_rgb, np.zeros_like(s.output_alpha), old_background_rgb=None, **KW)
    bad = s.output_alpha.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        edge_quality(s.output_rgb, bad, old_background_rgb=None, **KW)
    with pytest.raises(ValueError, match="does not match"):
        edge_quality(s.output_rgb, s.output_alpha[:, :-2], old_background_rgb=None, **KW)
    with pytest.raises(ValueError, match="rim_px"):
        edge_quality(s.output_rgb, s.output_alpha, old_background_rgb=None, **{**KW, "rim_px": 6})
    with pytest.raises(ValueError, match="boundary"):
        tiny = np.zeros_like(s.output_alpha)
        tiny[10:12, 10:12] = 1.0
        edge_quality(s.output_rgb, tiny, old_background_rgb=None, **KW)


def _soft_disk(dark_rim: float, size: int = 160, radius: float = 50.0, soft: float = 4.0):
    """A black disk on white with a soft (enlarged-looking) edge, composited by "over" in
    sRGB; ``dark_rim`` L*-ish darkening painted on the backdrop side (alpha 0.1..0.45)."""
    yy, xx = np.mgrid[:size, :size]
    alpha = np.clip((radius - np.hypot(xx - size / 2, yy - size / 2)) / soft + 0.5, 0, 1).astype(np.float32)
    product, backdrop = 30.0, 255.0
    out = alpha * product + (1 - alpha) * backdrop
    rim = (alpha > 0.1) & (alpha < 0.45)
    out[rim] -= dark_rim
    rgb = np.repeat(np.clip(out.round(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return rgb, alpha


def test_dark_rim_between_a_black_product_and_white_is_a_halo():
    """The rim lies between the two sides' colours, so only the compositing equation
    (alpha x product + (1 - alpha) x backdrop) shows it: the old both-sides range read 0."""
    rgb, alpha = _soft_disk(dark_rim=80.0)
    q = edge_quality(rgb, alpha, old_background_rgb=None, **KW)
    assert q.halo_share > 0.9 and q.halo_excursion < -8.0


def test_a_soft_clean_edge_of_a_black_product_is_no_halo():
    rgb, alpha = _soft_disk(dark_rim=0.0)
    q = edge_quality(rgb, alpha, old_background_rgb=None, **KW)
    assert q.halo_share == 0.0


def test_a_dark_lip_on_the_product_side_is_reported_not_judged():
    """A saucer's dark lip is product (alpha ~ 1): halo_share stays 0, the product-side
    figure says it is there."""
    yy, xx = np.mgrid[:160, :160]
    r = np.hypot(xx - 80, yy - 80)
    alpha = np.clip(50.5 - r, 0, 1).astype(np.float32)
    colour = np.where((r > 46) & (r < 50), 60.0, 200.0)  # a dark lip 4 px wide inside the outline
    out = alpha * colour + (1 - alpha) * 255.0
    rgb = np.repeat(np.clip(out.round(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    q = edge_quality(rgb, alpha, old_background_rgb=None, **KW)
    assert q.halo_share == 0.0 and q.halo_product_side_share > 0.9
