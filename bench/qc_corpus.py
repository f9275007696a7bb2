"""A labelled corpus for calibrating the quality gate: product photos, clean and damaged.

Each product is generated (no image files): an anti-aliased shape (bottle, box, mug and
ring and frame with holes, lamp and stand with thin stem/legs, shoe, jar, headphones) in
a material (matte with pixel grain, glossy with a specular gradient, smooth flat colour),
a colour class (saturated, neutral, white on a light backdrop, black on a dark one),
sometimes a printed label with small text, at a size from small (amazon-main enlarges it
4-6x) to large (1500-1800 px), on a real backdrop from scikit-image's bundled photos or a
seamless sweep, with camera noise, sometimes a contact shadow and a slight optical blur.

``cases(product)`` renders it CLEAN from its true mask exactly as production does
(``tasks/render.py``: crop_to_product margin 8 snap 32, decontamination only if
``RenderParams().decontaminate``, classical resampling, ``profile_canvas`` +
``compose_studio`` with the product's studio template, ``encode_for_profile``), then the
same product with ONE defect at graded severities. Everything is deterministic from the seed.

Defects, severity unit and the visible level (``DEFECTS``; ``visible`` = severity at/above
it unless said otherwise; grids in ``GRIDS``, a rotating subset per product):

* mask stage (the damaged mask goes through the same render; ``source_mask`` = damaged):
  ``filled_hole`` filled area / product area, >= 0.01; ``lost_part`` lost area / product
  area, >= 0.005, or any cut that splits the product (detail ``kind``: chunk, handle, stem,
  leg, cup); ``fragment`` backdrop blobs added to the mask, their area on the amazon-main
  canvas / canvas area, >= 0.002.
* render stage (on the clean canvas; ``source_mask`` = true mask): ``halo`` contrast in
  L*/100 of a rim ``detail["width_px"]`` wide just outside the 0.5 contour (darker on light
  backdrops), visible at contrast >= 0.15 and width >= 2; ``fringe`` weight of the old
  backdrop colour blended into an edge band ``width_px`` wide, >= 0.4 at width >= 2 when
  the bleed shows (``detail["bleed_delta_e"]``, mean CIEDE2000 of the changed product
  pixels, >= 2: a dark backdrop bleeding into a black product is not a visible fringe);
  ``colour_shift`` CIEDE2000 between the mean Lab of interior product pixels (alpha >=
  0.98) before and after, >= 2; ``colour_patch`` share of product pixels (alpha >= 0.5) in
  a patch changed by mean ``detail["delta_e"]`` (as reached), visible at delta_e >= 5 and share >=
  0.01; ``blur`` Gaussian sigma at the source's scale (canvas sigma / max(1,
  enlargement)), >= 1.5; ``jpeg`` JPEG quality (LOWER is worse), visible at <= 25;
  ``clipped`` share of product pixels newly at >= 250 in all channels, >= 0.05;
  ``shadow_direction`` degrees the drawn light is rotated from the reported one, >= 90;
  ``floating`` 1 (shadow drawn floating / none under a grounded product), always visible;
  ``touches_edge`` share of the product box outside the canvas or on its outer pixel
  row/column, visible when > 0.
* source stage (a different photo; ``Case.product`` is that photo): ``source_small``
  amazon-main enlargement, >= 4; ``source_cut_off`` share of the true product outside the
  photo, >= 0.02.

Use: ``for case in corpus(12): ...`` (576 cases, about 2 minutes on 2 cores, < 1 GB);
keep it lazy, a list of all of them holds ~13 GB of canvases. ``defects=[...]`` limits a
run to some defects (each defect's cases do not depend on the others). ``Case.detail``:
``nominal`` (the grid value aimed at; ``severity`` is measured on the result),
``width_px`` (halo, fringe), ``delta_e``/``delta_e_nominal`` (colour_patch; its
``visible`` uses the nominal share and the CIEDE2000 reached: a saturated colour pushed further out
of gamut may stop short of the grid's value, and a patch of 2.3 is not the visible 5),
``kind``/``splits`` (lost_part), ``drawn`` (floating), ``side`` (touches_edge,
source_cut_off), ``sigma_canvas_px`` (blur; the alpha is blurred too). Render-stage cases
share the clean alpha and true mask arrays (read-only).

NB: ``Case.enlargement`` is on every case; clean ``small`` products are already enlarged
4-6x, so the source-size check should read ``enlargement``, not the defect name.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _corpus_defects as _d  # noqa: E402
from bench import _corpus_products as _p  # noqa: E402
from imaging.types import Placement  # noqa: E402

__all__ = ["Product", "Render", "Case", "DEFECTS", "GRIDS", "products", "cases", "corpus"]

DEFECTS: dict[str, tuple[str, float]] = {
    "filled_hole": ("filled hole area / true product area", 0.01),
    "lost_part": ("lost area / true product area (a cut that splits the product is visible too)", 0.005),
    "fragment": ("added backdrop-blob area on the amazon-main canvas / canvas area", 0.002),
    "halo": ("rim contrast in L*/100 (width in detail['width_px']; visible needs width >= 2)", 0.15),
    "fringe": (
        "old-backdrop blend weight in the edge band (visible needs detail['width_px'] >= 2 and "
        "detail['bleed_delta_e'] >= 2)",
        0.4,
    ),
    "colour_shift": ("CIEDE2000 between mean Lab of interior product pixels", 2.0),
    "colour_patch": ("share of product pixels in the patch (visible needs detail['delta_e'] >= 5)", 0.01),
    "blur": ("Gaussian sigma in source px (canvas sigma / max(1, enlargement))", 1.5),
    "jpeg": ("JPEG quality; LOWER is worse: visible at quality <= 25", 25.0),
    "clipped": ("share of product pixels newly clipped (all channels >= 250)", 0.05),
    "shadow_direction": ("degrees between drawn and reported light direction", 90.0),
    "floating": ("1: shadow drawn floating/none under a grounded product", 1.0),
    "touches_edge": ("share of the product box outside the canvas or on its outer pixel row/column", 1e-9),
    "source_small": ("amazon-main enlargement (canvas px per source px)", 4.0),
    "source_cut_off": ("share of the true product outside the photo", 0.02),
}
# full severity grids; each product gets a rotating subset of ``PER_PRODUCT`` of them
GRIDS: dict[str, list] = {
    "filled_hole": [0.003, 0.007, 0.02, "full"],
    "lost_part": [0.002, 0.004, 0.01, 0.03],
    "fragment": [0.0005, 0.001, 0.0025, 0.005],
    "halo": [(0.05, 2), (0.10, 2), (0.15, 2), (0.25, 3), (0.40, 3), (0.10, 3), (0.25, 1), (0.40, 1)],
    "fringe": [(0.15, 2), (0.30, 2), (0.45, 2), (0.60, 3), (0.30, 3), (0.70, 1), (0.70, 2), (0.50, 2)],
    "colour_shift": [1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
    "colour_patch": [
        (0.01, 5.0),
        (0.005, 3.0),
        (0.005, 5.0),
        (0.005, 8.0),
        (0.01, 3.0),
        (0.03, 3.0),
        (0.01, 8.0),
        (0.03, 5.0),
        (0.03, 8.0),
    ],  # (share, delta_e)
    "blur": [0.5, 1.0, 1.5, 2.5, 4.0],
    "jpeg": [10, 20, 35, 60],
    "clipped": [0.01, 0.03, 0.08, 0.2],
    "shadow_direction": [45.0, 90.0, 135.0, 180.0],
    "floating": ["floating", "none"],
    "touches_edge": ["fill", 0.02, 0.08, 0.2],
    "source_small": [2.0, 3.0, 4.5, 6.0],
    "source_cut_off": [0.005, 0.01, 0.03, 0.1],
}
PER_PRODUCT = {
    "halo": 4,
    "fringe": 3,
    "colour_shift": 3,
    "colour_patch": 3,
    "blur": 3,
    "clipped": 3,
    "shadow_direction": 3,
    "touches_edge": 3,
    "source_cut_off": 3,
}


@dataclass(frozen=True)
class Product:
    name: str  # e.g. "mug-07"
    attrs: dict  # shape, material, colour, backdrop, size, has_hole, has_thin_part, label (+ template, seed, index)
    source_rgb: np.ndarray  # (H, W, 3) uint8 sRGB: the product on its backdrop
    true_mask: np.ndarray  # (H, W) float32 in [0, 1] (1/255 steps, as the 8-bit mask PNG), true coverage
    old_background_rgb: tuple[int, int, int]  # median backdrop colour just outside the product
    part_masks: dict = field(default_factory=dict, repr=False)  # true mask less one part ("handle", "stem"...)


@dataclass(frozen=True)
class Render:
    rgb: np.ndarray  # (h, w, 3) uint8 canvas
    alpha: np.ndarray  # (h, w) float32 product coverage on the canvas
    placement: Placement  # source pixel -> canvas
    background_rgb: tuple[int, int, int] | None
    shadow_style: str | None  # "soft" | "hard" | "floating" | "none": what was ASKED for
    light_direction_deg: float | None  # what the compositor was asked to draw
    grounded: bool  # True: the product should stand on the floor (contact shadow expected)
    encoded: bytes | None  # the file as shipped; for "jpeg" the low-quality bytes (rgb stays the lossless canvas)
    transparent: bool = False  # the file ships the cut-out on transparency (no backdrop, no shadow)


@dataclass(frozen=True)
class Case:
    product: Product
    defect: str  # "clean" or a DEFECTS key
    severity: float  # in the defect's own unit; 0.0 for clean
    visible: bool
    source_mask: np.ndarray  # the mask the gate sees on the source grid
    renders: dict[str, Render]  # profile name -> render; always has "amazon-main"
    enlargement: float  # amazon-main placement.scale
    detail: dict = field(default_factory=dict)  # extras: width_px, delta_e, kind, nominal...


_d.RENDER = Render


def _product(seed: int, index: int, longest: float | None = None) -> Product:
    spec = _p.choose(seed, index)
    rgb, mask, parts = _p.photo(spec, longest)
    attrs = dict(spec["attrs"])
    if longest is not None:
        attrs["size"] = "small" if _p.CANVAS_PRODUCT_PX / longest >= 4 else "medium"
    for a in (rgb, mask, *parts.values()):
        a.flags.writeable = False
    return Product(spec["name"], attrs, rgb, mask, _d.old_background(rgb, mask), parts)


def products(n: int, seed: int = 0) -> list[Product]:
    """``n`` products; shapes cycle so every 10 consecutive products hold every shape."""
    return [_product(seed, i) for i in range(n)]


def _subset(defect: str, index: int) -> list:
    """The grid values product ``index`` gets: all, all but one (rotating), or every
    2nd (4th for 9 values) from a rotating start; grids are ordered so that each subset
    holds severities below and above the visible level."""
    grid, k = GRIDS[defect], PER_PRODUCT.get(defect, len(GRIDS[defect]))
    n = len(grid)
    if k >= n:
        return list(grid)
    if k == n - 1:
        return [g for i, g in enumerate(grid) if i != index % n]
    step = 4 if n == 9 else 2
    return [grid[(index + i * step) % n] for i in range(k)]


def cases(
    product: Product, seed: int = 0, profiles: tuple[str, ...] = ("amazon-main",), defects: Iterable[str] | None = None
) -> list[Case]:
    """One clean case and the product with each applicable defect at graded severities
    (only ``defects`` when given; each defect's cases do not depend on the others)."""
    return list(_iter_cases(product, seed, profiles, defects))


def corpus(
    n_products: int, seed: int = 0, profiles=("amazon-main",), defects: Iterable[str] | None = None
) -> Iterator[Case]:
    """``cases`` of ``products(n_products, seed)``, made lazily one case at a time."""
    for i in range(n_products):
        yield from _iter_cases(_product(seed, i), seed, profiles, defects)


def _iter_cases(product: Product, seed: int, profiles, defects=None) -> Iterator[Case]:
    profiles = tuple(dict.fromkeys(("amazon-main", *profiles)))
    index = int(product.attrs.get("index", 0))
    unknown = set(defects or ()) - set(DEFECTS)
    if unknown:
        raise ValueError(f"unknown defects {sorted(unknown)}; known: {sorted(DEFECTS)}")

    def grid(defect):
        return _subset(defect, index) if defects is None or defect in defects else []

    def rng_for(defect):
        return np.random.default_rng([seed, index, zlib.crc32(f"{product.name}/{defect}".encode())])

    scenes = {
        name: _d.Scene(product.source_rgb, product.true_mask, name, product.attrs["template"]) for name in profiles
    }
    main = scenes["amazon-main"]
    clean = {name: sc.render(sc.rgb, sc.alpha, sc.placement) for name, sc in scenes.items()}
    enl = main.placement.scale

    def case(defect, severity, visible, renders, mask=product.true_mask, prod=product, **detail):
        return Case(
            prod,
            defect,
            float(severity),
            bool(visible),
            mask,
            renders,
            float(renders["amazon-main"].placement.scale),
            detail,
        )

    yield case("clean", 0.0, False, clean)

    def through_pipeline(prod, mask):
        return {name: _d.Scene(prod.source_rgb, mask, name, prod.attrs["template"]).render_self() for name in profiles}

    # mask stage
    area = float(product.true_mask.sum())
    if product.attrs["has_hole"]:
        for target in grid("filled_hole"):
            mask = _d.fill_hole(product.true_mask, target, rng_for("filled_hole"))
            if mask is not None:
                sev = (float(mask.sum()) - area) / area
                yield case("filled_hole", sev, sev >= 0.01, through_pipeline(product, mask), mask, nominal=target)
    for target, mask, detail in _d.lose_part(product, grid("lost_part"), rng_for("lost_part")):
        sev = (area - float(mask.sum())) / area
        yield case(
            "lost_part",
            sev,
            sev >= 0.005 or detail["splits"],
            through_pipeline(product, mask),
            mask,
            nominal=target,
            **detail,
        )
    for target in grid("fragment"):
        mask = _d.add_fragments(product.true_mask, target * main.canvas_area / enl**2, rng_for("fragment"))
        renders = through_pipeline(product, mask)
        added = float(np.clip(mask - product.true_mask, 0, None).sum())
        sev = added * renders["amazon-main"].placement.scale ** 2 / main.canvas_area
        yield case("fragment", sev, sev >= 0.002, renders, mask, nominal=target)

    # render stage: the same parameters on every profile
    def on_all(fn, *args):
        return {name: sc.render(*fn(sc, *args)) for name, sc in scenes.items()}

    for c, w in grid("halo"):
        yield case("halo", c, c >= 0.15 and w >= 2, on_all(_d.halo, c, w), width_px=w)
    for v, w in grid("fringe"):
        renders = on_all(_d.fringe, v, w)
        bleed = _d.changed_delta_e(main, renders["amazon-main"].rgb)
        yield case("fringe", v, v >= 0.4 and w >= 2 and bleed >= 2.0, renders, width_px=w, bleed_delta_e=bleed)
    for k, target in enumerate(grid("colour_shift")):
        params = _d.shift_params(main, target, (index + k) % 4)
        renders = on_all(_d.colour_shift, params)
        sev = _d.mean_delta_e(main, renders["amazon-main"].rgb)
        yield case("colour_shift", sev, sev >= 2.0, renders, nominal=target, direction=params["direction"])
    for k, (share, de) in enumerate(grid("colour_patch")):
        params = _d.patch_params(main, share, de, (index + k) % 4, rng_for("colour_patch"))
        renders = on_all(_d.colour_patch, params)
        yield case(
            "colour_patch",
            params["share"],
            params["delta_e"] >= 0.99 * 5 and share >= 0.01,  # the CIEDE2000 reached (within _calibrate's 1 %)
            renders,
            delta_e=params["delta_e"],
            delta_e_nominal=de,
            nominal=share,
            direction=params["direction"],
        )
    for target in grid("blur"):
        sigma = target * max(1.0, enl)
        yield case("blur", target, target >= 1.5, on_all(_d.blur, sigma / enl), sigma_canvas_px=sigma)
    for q in grid("jpeg"):
        yield case("jpeg", q, q <= 25, {n: sc.jpeg(q) for n, sc in scenes.items()})
    for target in grid("clipped"):
        k = _d.clip_params(main, target)
        renders = on_all(_d.clip_gain, k)
        sev = _d.clipped_share(main, renders["amazon-main"].rgb)
        yield case("clipped", sev, sev >= 0.05, renders, nominal=target, gain_slope=k)
    for angle in grid("shadow_direction"):
        yield case(
            "shadow_direction", angle, angle >= 90, {n: sc.restyle(light_offset=angle) for n, sc in scenes.items()}
        )
    for style in grid("floating"):
        yield case("floating", 1.0, True, {n: sc.restyle(style=style) for n, sc in scenes.items()}, drawn=style)
    for k, target in enumerate(grid("touches_edge")):
        if target == "fill":
            renders = {n: sc.restyle(fill=1.0) for n, sc in scenes.items()}
            side = "all"
        else:
            side = ("left", "right", "top", "bottom")[(index + k) % 4]
            renders = on_all(_d.shift_out, target, side)
        sev = _d.edge_share(renders["amazon-main"], product.true_mask)
        yield case("touches_edge", sev, sev > 0, renders, side=side, nominal=target)

    # source stage: a different photo of the product
    for target in grid("source_small"):
        small = _product(int(product.attrs.get("seed", seed)), index, _p.CANVAS_PRODUCT_PX / target)
        renders = through_pipeline(small, small.true_mask)
        e = renders["amazon-main"].placement.scale
        yield case("source_small", e, e >= 4.0, renders, small.true_mask, small, nominal=target)
    for k, target in enumerate(grid("source_cut_off")):
        cut, share, side = _d.cut_off(product, target, (index + k) % 4)
        yield case(
            "source_cut_off",
            share,
            share >= 0.02,
            through_pipeline(cut, cut.true_mask),
            cut.true_mask,
            cut,
            nominal=target,
            side=side,
        )
