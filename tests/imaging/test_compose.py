"""imaging.compose: product pixels untouched, exact backdrop, fill, shadows, placement."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from imaging.compose import compose_studio, crop_to_product, product_bbox
from imaging.types import Background, Placement, ShadowSpec

WHITE = Background()
RED = (200, 50, 50)


def _photo(h: int = 600, w: int = 500, box=(100, 80, 400, 520), colour=RED, seed: int = 0):
    """A noisy green 'table' photo with a flat-coloured rounded product and its mask."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal((40, 180, 60), 12, (h, w, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    cv2.rectangle(mask, (x0, y0 + 40), (x1 - 1, y1 - 1), 1.0, -1)
    cv2.ellipse(mask, ((x0 + x1) // 2, y0 + 40), ((x1 - x0) // 2 - 1, 40), 0, 180, 360, 1.0, -1, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.7).clip(0, 1)
    rgb[mask > 0] = colour  # the soft rim is product colour too: no contamination in the source
    return rgb, mask


def _compose(rgb, mask, **kw):
    kw.setdefault("canvas_size", (800, 800))
    kw.setdefault("background", WHITE)
    kw.setdefault("shadow", ShadowSpec("soft", 135.0))
    return compose_studio(rgb, mask, **kw)


def _to_source(placement: Placement, xc: float, yc: float) -> tuple[float, float]:
    return (xc - placement.offset_x) / placement.scale, (yc - placement.offset_y) / placement.scale


def test_interior_equals_source_pixels_at_unit_scale():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)  # textured product
    mask = np.zeros((300, 300), np.float32)
    mask[60:230, 70:240] = 1.0  # 170 px box on a 200 px canvas at fill 0.85 -> scale 1
    comp = _compose(rgb, mask, canvas_size=(200, 200), shadow=ShadowSpec("none"))
    p = comp.placement
    assert p.scale == pytest.approx(1.0) and float(p.offset_x).is_integer()
    ys, xs = np.nonzero(comp.product_alpha == 1.0)
    assert ys.size > 150 * 150
    sx, sy = (xs - p.offset_x).astype(int), (ys - p.offset_y).astype(int)
    assert np.array_equal(comp.rgb[ys, xs], rgb[sy, sx])


def test_flat_product_colour_unchanged_and_no_background_bleed():
    rgb, mask = _photo()
    for size in [(800, 800), (300, 300)]:  # enlarge and shrink
        comp = _compose(rgb, mask, canvas_size=size)
        solid = comp.product_alpha == 1.0
        assert solid.sum() > 0.3 * size[0] * size[1] * 0.5
        assert (comp.rgb[solid] == RED).all()
        # partly covered edge pixels mix red with white only: no green from the old table
        edge = (comp.product_alpha > 0) & ~solid
        px = comp.rgb[edge].astype(int)
        assert edge.sum() > 100 and (px[:, 1] <= px[:, 0] + 1).all()


def test_textured_interior_matches_source_through_placement():
    y, x = np.mgrid[0:600, 0:500]
    rgb = np.dstack([x * 255 // 500, y * 255 // 600, (x + y) % 256 // 2 + 60]).astype(np.uint8)
    mask = np.zeros((600, 500), np.float32)
    mask[100:500, 80:420] = 1.0
    comp = _compose(rgb, mask, canvas_size=(256, 256), shadow=ShadowSpec("none"))
    p = comp.placement
    ys, xs = np.nonzero(cv2.erode((comp.product_alpha == 1).astype(np.uint8), np.ones((5, 5))))
    sx, sy = _to_source(p, xs + 0.5, ys + 0.5)  # pixel centres back on the source, then
    for c in (0, 1):  # bilinear point samples: on linear ramps they equal area averages
        expected = map_coordinates(rgb[..., c].astype(float), [sy - 0.5, sx - 0.5], order=1)
        assert np.abs(comp.rgb[ys, xs, c] - expected).max() <= 1.0


@pytest.mark.parametrize("style", ["soft", "hard", "floating", "none"])
def test_white_is_exact_away_from_product_and_shadow(style):
    rgb, mask = _photo()
    comp = _compose(rgb, mask, canvas_size=(1000, 1000), shadow=ShadowSpec(style, 135.0, 0.5))
    band = 10  # the outer 1 %
    border = np.ones((1000, 1000), bool)
    border[band:-band, band:-band] = False
    assert (comp.rgb[border] == 255).all()
    far = np.ones((1000, 1000), bool)
    x0, y0, x1, y1 = comp.meta["product_bbox"]
    far[y0 - 60 : y1 + 120, x0 - 60 : x1 + 120] = False
    assert (comp.rgb[far] == 255).all()
    if style != "none":
        assert (comp.rgb[~far & (comp.product_alpha == 0)] < 250).any()


@pytest.mark.parametrize("canvas", [(2000, 2000), (1200, 1600), (1600, 900)])
def test_bbox_fill(canvas):
    rgb, mask = _photo()
    comp = _compose(rgb, mask, canvas_size=canvas)
    x0, y0, x1, y1 = product_bbox(comp.product_alpha)
    w, h = canvas
    ratios = (max(x1 - x0, y1 - y0) / max(w, h), (x1 - x0) / w, (y1 - y0) / h)
    assert max(ratios) == pytest.approx(0.85, abs=0.01)  # the tightest rule is met, none broken
    assert abs((x0 + x1) / 2 - w / 2) <= 1.5 and abs((y0 + y1) / 2 - h / 2) <= 1.5


def test_fill_on_square_canvas_uses_longest_side():
    rgb, mask = _photo()
    comp = _compose(rgb, mask, canvas_size=(2000, 2000))
    x0, y0, x1, y1 = product_bbox(comp.product_alpha)
    assert max(x1 - x0, y1 - y0) / 2000 == pytest.approx(0.85, abs=0.01)


def _shadow_offset(comp) -> tuple[float, float]:
    dark = (255.0 - comp.rgb.mean(axis=2)) * (comp.product_alpha == 0)
    ys, xs = np.mgrid[0 : dark.shape[0], 0 : dark.shape[1]]
    a = comp.product_alpha
    product = (float((xs * a).sum() / a.sum()), float((ys * a).sum() / a.sum()))
    shadow = (float((xs * dark).sum() / dark.sum()), float((ys * dark).sum() / dark.sum()))
    return shadow[0] - product[0], shadow[1] - product[1]


@pytest.mark.parametrize("style", ["soft", "hard"])
def test_shadow_falls_away_from_the_light(style):
    rgb, mask = _photo()
    dx, dy = _shadow_offset(_compose(rgb, mask, shadow=ShadowSpec(style, 135.0)))
    assert dx > 5 and dy > 5  # light upper-left -> shadow lower-right
    dx, dy = _shadow_offset(_compose(rgb, mask, shadow=ShadowSpec(style, 45.0)))
    assert dx < -5 and dy > 5  # light upper-right -> shadow lower-left
    dx, dy = _shadow_offset(_compose(rgb, mask, shadow=ShadowSpec(style, 90.0)))
    assert abs(dx) < 3 and dy > 5  # light from above -> straight down


def test_floating_shadow_leaves_a_gap():
    rgb, mask = _photo()
    comp = _compose(rgb, mask, canvas_size=(1000, 1000), shadow=ShadowSpec("floating", 90.0, 0.5))
    x0, _, x1, y1 = product_bbox(comp.product_alpha)
    backdrop = np.where(comp.product_alpha == 0, comp.rgb.min(axis=2), 255)
    below = backdrop[y1:, x0:x1].min(axis=1)  # darkest backdrop value per row under the product
    assert np.flatnonzero(below < 245).size > 3  # there is a shadow below...
    assert np.flatnonzero(below < 255)[0] >= 10  # ...after at least 10 pure white rows


def test_placement_maps_a_keypoint():
    rgb, mask = _photo()
    rgb[300:306, 200:206] = (0, 0, 255)  # a 6 px blue dot on the product; centre (203, 303)
    for size in [(300, 300), (1500, 1500)]:
        comp = _compose(rgb, mask, canvas_size=size, shadow=ShadowSpec("none"))
        blue = (comp.rgb[..., 2].astype(int) - comp.rgb[..., 0]) > 60
        ys, xs = np.nonzero(blue)
        weight = (comp.rgb[ys, xs, 2].astype(float) - comp.rgb[ys, xs, 0]).clip(0)
        cx, cy = (xs + 0.5) @ weight / weight.sum(), (ys + 0.5) @ weight / weight.sum()
        p = comp.placement
        assert abs(cx - (p.scale * 203 + p.offset_x)) < 0.5
        assert abs(cy - (p.scale * 303 + p.offset_y)) < 0.5


def test_placement_folds_in_the_crop():
    rgb, mask = _photo()
    rgb[300:306, 200:206] = (0, 0, 255)
    crop_rgb, crop_mask, to_crop = crop_to_product(rgb, mask, margin_px=16)
    ys, xs = np.nonzero(mask >= 1 / 255)
    assert to_crop == Placement(1.0, -(xs.min() - 16.0), -(ys.min() - 16.0))
    assert crop_rgb.shape[:2] == (ys.max() - ys.min() + 33, xs.max() - xs.min() + 33)
    assert np.array_equal(crop_rgb[300 + int(to_crop.offset_y), 200 + int(to_crop.offset_x)], (0, 0, 255))
    up = cv2.resize(crop_rgb, (0, 0), fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    up_mask = cv2.resize(crop_mask, (0, 0), fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    to_up = to_crop.then(Placement(2.0, 0.0, 0.0))
    comp = _compose(up, up_mask, canvas_size=(600, 600), to_source=to_up, shadow=ShadowSpec("none"))
    direct = _compose(rgb, mask, canvas_size=(600, 600), shadow=ShadowSpec("none"))
    p, q = comp.placement, direct.placement
    assert p.scale == pytest.approx(q.scale)
    assert abs(p.offset_x - q.offset_x) <= 1.0 and abs(p.offset_y - q.offset_y) <= 1.0
    bx, by = p.scale * 203 + p.offset_x, p.scale * 303 + p.offset_y
    assert comp.rgb[int(by), int(bx), 2] > 200 and comp.rgb[int(by), int(bx), 0] < 60


def test_specks_far_from_a_small_product_cost_a_canvas_not_their_enlarged_crop():
    """A poor cut: a 30 px product (mask >= 0.5) and faint specks in the photo's corners.
    The box is enlarged ~23x; resampling everything the specks span would be an 8900 px
    square (~0.95 GB of float colour alone; the old code peaked at 2.6 GB here). Only what
    lands on the canvas is resampled, the
    product is still placed exactly, and the specks are off the canvas."""
    rgb = np.full((400, 400, 3), 90, np.uint8)
    mask = np.zeros((400, 400), np.float32)
    mask[185:215, 185:215] = 1.0
    rgb[185:215, 185:215] = RED
    rgb[198:202, 198:202] = (0, 0, 255)  # a 4 px blue dot at the product's centre (200, 200)
    clean = _compose(rgb, mask, canvas_size=(800, 800))
    for y, x in [(3, 3), (3, 390), (390, 3), (390, 390)]:
        mask[y : y + 6, x : x + 6] = 0.1
    tracemalloc.start()
    try:
        comp = _compose(rgb, mask, canvas_size=(800, 800))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 800 * 800  # bytes: a few canvas-sized float arrays, not the enlarged crop
    p = comp.placement
    assert p.scale == pytest.approx(0.85 * 800 / 30)
    assert p.scale * 200 + p.offset_x == pytest.approx(400, abs=1)
    assert p.scale * 200 + p.offset_y == pytest.approx(400, abs=1)
    assert tuple(comp.rgb[400, 400]) == (0, 0, 255) and tuple(comp.rgb[400, 150]) == RED
    assert p == clean.placement  # the specks, off the canvas, change nothing on it
    assert np.array_equal(comp.rgb, clean.rgb) and np.array_equal(comp.product_alpha, clean.product_alpha)


def test_crop_to_product_clips_to_the_image():
    mask = np.zeros((50, 60), np.float32)
    mask[0:10, 50:60] = 1.0
    rgb = np.zeros((50, 60, 3), np.uint8)
    crop_rgb, crop_mask, placement = crop_to_product(rgb, mask, margin_px=5)
    assert crop_rgb.shape == (15, 15, 3) and crop_mask.shape == (15, 15)
    assert placement == Placement(1.0, -45.0, 0.0)


def test_gradient_ends_exactly():
    rgb, mask = _photo()
    bg = Background("gradient", (250, 250, 250), (180, 190, 200))
    comp = _compose(rgb, mask, background=bg, shadow=ShadowSpec("none"))
    assert (comp.rgb[0] == (250, 250, 250)).all() and (comp.rgb[-1] == (180, 190, 200)).all()
    column = comp.rgb[:, 5, 0].astype(int)
    assert (np.diff(column) <= 0).all()


def test_transparent_cutout():
    rgb, mask = _photo()
    comp = _compose(rgb, mask, transparent=True, background=Background(colour=(255, 255, 255)))
    assert comp.shadow is None and comp.background is None and comp.meta["transparent"]
    assert (comp.rgb[comp.product_alpha == 0] == 255).all()
    assert (comp.rgb[comp.product_alpha > 0.05] == RED).all()  # straight colour, not blended


def test_meta_and_types():
    rgb, mask = _photo()
    comp = _compose(rgb, mask)
    assert comp.rgb.dtype == np.uint8 and comp.rgb.shape == (800, 800, 3)
    assert comp.product_alpha.dtype == np.float32 and comp.product_alpha.max() == 1.0
    assert comp.shadow == ShadowSpec("soft", 135.0) and comp.background == WHITE
    assert comp.meta["resample"] == "cubic" and comp.meta["scale"] == comp.placement.scale


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"mask": np.zeros((600, 500), np.float32)}, "mask is empty"),
        ({"mask": np.ones((600, 500), np.uint8)}, "float array"),
        ({"mask": np.full((600, 500), 1.5, np.float32)}, "within"),
        ({"fill": 0.0}, "fill"),
        ({"canvas_size": (0, 100)}, "canvas_size"),
        ({"background": Background("gradient", (1, 2, 3), None)}, "gradient"),
        ({"shadow": ShadowSpec("dramatic")}, "shadow style"),
    ],
)
def test_bad_inputs_raise(kw, message):
    rgb, mask = _photo()
    mask = kw.pop("mask", mask)
    with pytest.raises(ValueError, match=message):
        _compose(rgb, mask, **kw)
