"""The studio compositor: a cut-out product on a clean backdrop with a drawn shadow.

What ``compose_studio`` does, in order:

1. Product box = bounding box of ``mask >= 0.5``. Mask values below ``COVERAGE_EPS``
   (1/255) count as background everywhere. An empty mask is a ``ValueError``.
2. Scale ``s`` makes the box's longest side ``fill`` x the canvas's longest side, unless
   that would overflow the other canvas side, where the box then takes ``fill`` of it
   (the same margin fraction). The box is centred on the canvas, horizontally *and*
   vertically, for every shadow style: batches line up, and ``fill <= 0.9`` leaves room
   under the base for the shadow.
3. Resampling is premultiplied (colour x coverage), so pixels outside the cut never
   bleed into the product edge: ``cv2.INTER_AREA`` when shrinking, ``cv2.INTER_CUBIC``
   (clipped) when enlarging, none at ``s == 1``. Scale is exact on both axes and the
   crop is pasted at a whole-pixel offset, so ``Composite.placement`` is exact. Only
   what lands on the canvas is resampled (a poor cut's specks far from a small product
   would otherwise make an enlarged crop many canvases big), and the edge colour is made
   a band of rows at a time: the compositor's memory is bounded by the canvas.
4. The backdrop is a solid colour or a vertical gradient (first row = ``colour``,
   last row = ``colour2``, linear in sRGB code values).
5. The shadow is a darkening map S in [0, 1] multiplied into the backdrop, drawn from
   the scaled mask at about 512 px resolution (it is low-frequency) and upsampled:
   ``soft`` = contact ellipse under the base (peak ``strength``) + a blurred silhouette
   offset away from the light (peak ``strength / 2``); ``hard`` = the same contact plus
   a sharper, further silhouette at ``strength``; ``floating`` = a soft ellipse below
   the base after a clear gap, nudged away from the light; ``none``. Offsets follow
   ``imaging.types``: ``(-cos θ, +sin θ)`` in (x, y-down) canvas pixels. S is zero in
   the outer 1 % of the canvas (ramping up over the next 1 %) and values under 0.5/255
   are dropped, so the backdrop away from the product and its shadow, and always in
   that border, is *exactly* the requested colour.
6. The product is laid over with the coverage feathered by a Gaussian of
   ``feather_px``: premultiplied "over" in sRGB code values (what a browser does with
   the PNG cut-out, so studio and transparent exports match). Where the final alpha is
   1 the canvas pixel is the resampled source pixel, untouched by the backdrop.

``transparent=True`` skips 4-5 and returns the product colours (background colour under
alpha 0, as a matte for viewers that ignore alpha) with ``product_alpha`` for a PNG.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from imaging.types import Background, Composite, Placement, ShadowSpec

COVERAGE_EPS = 1.0 / 255.0
SHADOW_GRID = 512  # shadows are drawn on a grid whose longest side is about this
_SNAP = 0.5 / 255.0  # alpha / shadow values this close to 0 or 1 are made exact
_RELIABLE = 0.25  # coverage from which an edge pixel's own colour (prem / cov) is trusted
_STYLES = ("soft", "hard", "floating", "none")


def product_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` (x1, y1 exclusive) of ``mask >= 0.5``: the box that
    ``compose_studio`` scales and centres (and ``profile_canvas`` wants the size of)."""
    return _bbox(mask >= 0.5)


def crop_to_product(
    rgb: np.ndarray, mask: np.ndarray, margin_px: int, snap_px: int = 1
) -> tuple[np.ndarray, np.ndarray, Placement]:
    """Cut the product (mask >= 1/255, plus ``margin_px`` clipped to the image) out of
    ``rgb``/``mask``; returns copies and the source -> crop ``Placement``. ``snap_px``
    rounds the box outward to multiples of it, so slightly different masks of the same
    product give the same box (and a cached upscale of it stays valid)."""
    _check_product(rgb, mask)
    if margin_px < 0 or snap_px < 1:
        raise ValueError(f"margin_px must be >= 0 and snap_px >= 1, got {margin_px}, {snap_px}")
    x0, y0, x1, y1 = _bbox(mask >= COVERAGE_EPS)
    height, width = mask.shape
    x0, y0 = (max(0, x0 - margin_px) // snap_px) * snap_px, (max(0, y0 - margin_px) // snap_px) * snap_px
    x1 = min(width, -(-(x1 + margin_px) // snap_px) * snap_px)
    y1 = min(height, -(-(y1 + margin_px) // snap_px) * snap_px)
    return rgb[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy(), Placement(1.0, -x0, -y0)


def compose_studio(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    canvas_size: tuple[int, int],
    background: Background,
    shadow: ShadowSpec,
    fill: float = 0.85,
    to_source: Placement | None = None,
    feather_px: float = 1.0,
    transparent: bool = False,
) -> Composite:
    """Place the product of ``rgb`` (cut by float ``mask``) on a ``canvas_size`` (w, h)
    studio canvas. ``to_source`` maps original-photo pixels to ``rgb``'s pixels."""
    _check_product(rgb, mask)
    width, height = _check_scene(canvas_size, background, shadow, fill, feather_px)
    row_max, col_max = mask.max(axis=1), mask.max(axis=0)
    bx0, by0, bx1, by1 = _bbox_from(row_max >= 0.5, col_max >= 0.5)
    dx0, dy0, dx1, dy1 = _bbox_from(row_max >= COVERAGE_EPS, col_max >= COVERAGE_EPS)
    box_w, box_h = bx1 - bx0, by1 - by0
    scale = min(fill * max(width, height) / max(box_w, box_h), fill * width / box_w, fill * height / box_h)
    pad = math.ceil(2.0 / scale) + 2
    margin = math.ceil(4.0 * feather_px) + 1
    # Only what lands on the canvas is resampled: specks far from a small product that
    # is enlarged many times would otherwise make the crop many times the canvas's size.
    cx0, cx1 = _on_canvas(dx0 - pad, dx1 + pad, (bx0 + bx1) / 2, width, scale, margin, pad)
    cy0, cy1 = _on_canvas(dy0 - pad, dy1 + pad, (by0 + by1) / 2, height, scale, margin, pad)
    prem, cov = _resample(rgb, mask, (cx0, cy0, cx1, cy1), scale)
    prem = cv2.copyMakeBorder(prem, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    cov = cv2.copyMakeBorder(cov, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    paste_x = round(width / 2 - scale * ((bx0 + bx1) / 2 - cx0))
    paste_y = round(height / 2 - scale * ((by0 + by1) / 2 - cy0))
    colour, alpha = _feathered_colour(prem, cov, feather_px)

    # canvas rectangle of the pasted arrays, clipped to the canvas
    rx0, ry0 = paste_x - margin, paste_y - margin
    cx_lo, cy_lo = max(rx0, 0), max(ry0, 0)
    cx_hi, cy_hi = min(rx0 + cov.shape[1], width), min(ry0 + cov.shape[0], height)
    src = np.s_[cy_lo - ry0 : cy_hi - ry0, cx_lo - rx0 : cx_hi - rx0]
    dst = np.s_[cy_lo:cy_hi, cx_lo:cx_hi]
    product_alpha = np.zeros((height, width), np.float32)
    product_alpha[dst] = alpha[src]
    local = Placement(scale, paste_x - scale * cx0, paste_y - scale * cy0)
    placement = local if to_source is None else to_source.then(local)
    box = (
        round(local.offset_x + scale * bx0),
        round(local.offset_y + scale * by0),
        round(local.offset_x + scale * bx1),
        round(local.offset_y + scale * by1),
    )
    meta = {
        "scale": scale,
        "fill": fill,
        "product_bbox": box,
        "feather_px": feather_px,
        "blend": "premultiplied over, sRGB code values",
        "resample": "none" if _is_unit(scale) else ("area" if scale < 1 else "cubic"),
    }

    if transparent:
        canvas = _backdrop(Background("solid", background.colour), width, height)
        product = np.rint(colour[src], out=colour[src]).astype(np.uint8)  # colour is ours to round
        product[alpha[src] == 0.0] = background.colour
        canvas[dst] = product
        meta["transparent"] = True
        return Composite(canvas, product_alpha, placement, None, None, meta)

    canvas = _backdrop(background, width, height)
    if shadow.style != "none" and shadow.strength > 0.0:
        coverage = np.zeros((height, width), np.float32)
        coverage[dst] = cov[src]
        s_map = _shadow_map(coverage, box, shadow)
        del coverage
        _apply_shadow(canvas, s_map)
        del s_map
    col, over = colour[src], canvas[dst]
    for rows in _strips(over.shape[0]):  # col + (backdrop - col) * (1 - a): exactly col at a == 1
        out = over[rows].astype(np.float32)
        out -= col[rows]
        out *= (1.0 - alpha[src][rows])[..., None]
        out += col[rows]
        over[rows] = np.rint(out, out=out).astype(np.uint8)
    return Composite(canvas, product_alpha, placement, shadow, background, meta)


def _on_canvas(lo: int, hi: int, centre: float, side: int, scale: float, margin: int, pad: int) -> tuple[int, int]:
    """``[lo, hi)`` (source px) clipped to what the canvas's ``side`` shows when the box's
    ``centre`` lands on the canvas's centre at ``scale``, plus the feather's ``margin``
    (canvas px) and the resampling kernel's ``pad`` (source px): a cut there is off the
    canvas. A crop inside that is returned as it is, so ordinary products place exactly
    as before."""
    half = (side / 2 + margin) / scale + pad
    return max(lo, math.floor(centre - half)), min(hi, math.ceil(centre + half))


def _resample(rgb, mask, crop, scale):
    """Premultiplied crop (zero outside the image) resized by exactly ``scale``."""
    x0, y0, x1, y1 = crop
    height, width = mask.shape
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    m = mask[iy0:iy1, ix0:ix1].astype(np.float32)
    m[m < COVERAGE_EPS] = 0.0
    prem = cv2.multiply(rgb[iy0:iy1, ix0:ix1], cv2.merge([m, m, m]), dtype=cv2.CV_32F)
    borders = (iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1)
    prem = cv2.copyMakeBorder(prem, *borders, cv2.BORDER_CONSTANT, value=0)
    cov = cv2.copyMakeBorder(m, *borders, cv2.BORDER_CONSTANT, value=0)
    if _is_unit(scale):
        return prem, cov
    if scale < 1.0:  # area averages of 0 <= prem <= 255 * cov stay in range
        area = cv2.INTER_AREA
        return (
            cv2.resize(prem, (0, 0), fx=scale, fy=scale, interpolation=area),
            cv2.resize(cov, (0, 0), fx=scale, fy=scale, interpolation=area),
        )
    raw = cv2.resize(cov, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    prem = cv2.resize(prem, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    cov = np.clip(raw, 0.0, 1.0)  # cubic over/undershoot: clip coverage, keep prem / cov
    prem *= np.divide(cov, raw, out=np.zeros_like(raw), where=raw > 1e-6)[..., None]
    np.clip(prem, 0.0, 255.0 * cov[..., None], out=prem)
    return prem, cov


def _feathered_colour(prem, cov, feather_px):
    """(unpremultiplied colour, feathered alpha). Colour is exactly ``prem`` where
    cov == 1 and ``prem / cov`` where the product covers at least a quarter of the pixel;
    thinner edge pixels and the rim that feathering adds take a blur-weighted average of
    their neighbours (a ratio of two tiny numbers is noise, and there is none outside).
    The colour is made in ``prem``'s own buffer (the caller has no further use for it):
    one product-sized float copy less at the compositor's peak. Both passes go a band of
    rows at a time, so a crop that is nearly all edge (specks strewn over an enlarged
    photo) costs a band's temporaries, not several crop-sized index and value arrays."""
    alpha = cv2.GaussianBlur(cov, (0, 0), feather_px) if feather_px > 0.0 else cov.copy()
    alpha[alpha < _SNAP] = 0.0
    alpha[alpha > 1.0 - _SNAP] = 1.0
    sigma = max(feather_px, 1.0)
    halo = math.ceil(4.0 * sigma) + 2  # rows the blur reaches (cv2 sizes it 2 x 4 sigma + 1)
    height = cov.shape[0]
    weak_colours = []  # per band: the neighbours' average, from prem as it came (before pass 2)
    for rows in _strips(height):
        weak = cov[rows] < _RELIABLE
        weak &= alpha[rows] > 0.0
        if not weak.any():
            weak_colours.append(None)
            continue
        lo, hi = max(rows.start - halo, 0), min(rows.stop + halo, height)
        mid = slice(rows.start - lo, rows.stop - lo)
        ext_cov = cv2.GaussianBlur(cov[lo:hi], (0, 0), sigma)[mid][weak]
        ext = cv2.GaussianBlur(prem[lo:hi], (0, 0), sigma)[mid][weak] / np.maximum(ext_cov, 1e-6)[:, None]
        weak_colours.append((weak, ext))
    colour = prem
    for rows, weak_colour in zip(_strips(height), weak_colours, strict=True):
        c, band = cov[rows], colour[rows]
        edge = c < 1.0 - 1e-6
        edge &= alpha[rows] > 0.0
        band[edge] /= np.maximum(c[edge], _RELIABLE)[:, None]
        if weak_colour is not None:
            band[weak_colour[0]] = weak_colour[1]
        np.clip(band, 0.0, 255.0, out=band)
    return colour, alpha


def _backdrop(background: Background, width: int, height: int) -> np.ndarray:
    top = np.array(background.colour, np.float64)
    if background.kind == "solid":
        return cv2.repeat(top.astype(np.uint8).reshape(1, 1, 3), height, width)
    bottom = np.array(background.colour2, np.float64)
    t = np.linspace(0.0, 1.0, height)[:, None]
    column = np.rint(top + (bottom - top) * t).astype(np.uint8).reshape(height, 1, 3)
    return cv2.repeat(column, 1, width)


def _shadow_map(coverage: np.ndarray, box: tuple[int, int, int, int], spec: ShadowSpec) -> np.ndarray:
    """Darkening map S (H, W) float32 in [0, 1] for ``spec`` under the product."""
    height, width = coverage.shape
    r = max(1, math.ceil(max(width, height) / SHADOW_GRID))
    small = cv2.resize(coverage, (math.ceil(width / r), math.ceil(height / r)), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = (v / r for v in box)
    size = max(x1 - x0, y1 - y0)
    theta = math.radians(spec.light_direction_deg)
    dx, dy = -math.cos(theta), math.sin(theta)
    if spec.style == "floating":
        room = max(small.shape[0] - y1, 1.0)  # margin under the base, fill decides it
        gap = max(min(0.04 * (y1 - y0), 0.35 * room), 1.0)
        half_h = max(min(0.02 * size, 0.2 * room), 1.0)
        centre = ((x0 + x1) / 2 + dx * 0.05 * (x1 - x0), y1 + gap + half_h)
        blur = min(half_h, gap / 10)  # 5 sigma of white between the base and the shadow
        s_map = _ellipse(small.shape, centre, (0.4 * (x1 - x0), half_h), blur) * spec.strength
    else:
        base = small[max(int(y1 - 0.08 * (y1 - y0)), 0) : math.ceil(y1)].max(axis=0) > 0.5
        cols = np.flatnonzero(base)
        bx0, bx1 = (cols[0], cols[-1] + 1) if cols.size else (x0, x1)
        axes = (max(0.55 * (bx1 - bx0), 1.0), max(0.02 * size, 1.0))
        contact = _ellipse(small.shape, ((bx0 + bx1) / 2, y1), axes, 0.012 * size) * spec.strength
        reach, sigma, peak = (0.025, 0.02, 0.5) if spec.style == "soft" else (0.05, 0.005, 1.0)
        shift = np.float32([[1, 0, dx * reach * size], [0, 1, dy * reach * size]])
        cast = cv2.warpAffine(small, shift, (small.shape[1], small.shape[0]), flags=cv2.INTER_LINEAR)
        cast = cv2.GaussianBlur(cast, (0, 0), max(sigma * size, 0.5)) * (peak * spec.strength)
        s_map = 1.0 - (1.0 - contact) * (1.0 - cast)
    s_map = cv2.resize(s_map, (width, height), interpolation=cv2.INTER_LINEAR)
    band = max(2, round(0.01 * min(width, height)))
    down, across = _ramp(height, band), _ramp(width, band)
    for rows in _strips(height):
        s_map[rows] *= np.minimum(down[rows, None], across[None, :])
    cv2.threshold(s_map, _SNAP, 0.0, cv2.THRESH_TOZERO, dst=s_map)  # below 0.5/255 -> 0
    return np.minimum(s_map, 1.0, out=s_map)


def _ramp(n: int, band: int) -> np.ndarray:
    """0 for the outer ``band`` px at both ends, rising linearly to 1 over the next ``band``."""
    edge = np.minimum(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32)[::-1])
    return np.clip((edge - band) / band, 0.0, 1.0)


def _ellipse(shape, centre, axes, sigma) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    fx = 16  # cv2 sub-pixel shift of 4 bits
    cv2.ellipse(
        out,
        (round(centre[0] * fx), round(centre[1] * fx)),
        (max(round(axes[0] * fx), 1), max(round(axes[1] * fx), 1)),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        4,
    )
    return cv2.GaussianBlur(out, (0, 0), max(sigma, 0.5))


def _apply_shadow(canvas: np.ndarray, s_map: np.ndarray) -> None:
    ys, xs = np.nonzero(s_map.any(axis=1))[0], np.nonzero(s_map.any(axis=0))[0]
    if ys.size == 0:
        return
    under, shade = canvas[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1], s_map[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]
    for rows in _strips(under.shape[0]):
        keep = 1.0 - shade[rows]
        under[rows] = cv2.multiply(under[rows], cv2.merge([keep, keep, keep]), dtype=cv2.CV_8U)


def _strips(height: int, rows: int = 256):
    """Row slices of at most ``rows``: per-pixel float work on a whole canvas, done a band
    at a time, keeps its temporaries a band's size (the result is the same to the bit)."""
    return (slice(top, min(top + rows, height)) for top in range(0, height, rows))


def _bbox(where: np.ndarray) -> tuple[int, int, int, int]:
    return _bbox_from(where.any(axis=1), where.any(axis=0))


def _bbox_from(row_any: np.ndarray, col_any: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(row_any), np.flatnonzero(col_any)
    if rows.size == 0:
        raise ValueError("mask is empty: no product pixels to place")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _is_unit(scale: float) -> bool:
    return abs(scale - 1.0) < 1e-9


def _check_product(rgb, mask) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("rgb must be an (H, W, 3) uint8 array")
    if not isinstance(mask, np.ndarray) or mask.dtype.kind != "f" or mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask must be a float array of shape {rgb.shape[:2]}")
    if not 0.0 <= mask.min() <= mask.max() <= 1.0:  # NaN fails every comparison
        raise ValueError("mask values must be finite and within [0, 1]")


def _check_scene(canvas_size, bg: Background, spec: ShadowSpec, fill, feather_px) -> tuple[int, int]:
    if len(canvas_size) != 2 or not all(_is_int(v) and 16 <= v <= 20_000 for v in canvas_size):
        raise ValueError(f"canvas_size must be (w, h) ints in 16..20000, got {canvas_size!r}")
    colours = [bg.colour] + ([bg.colour2] if bg.kind == "gradient" else [])
    if bg.kind not in ("solid", "gradient") or None in colours:
        raise ValueError(f"background must be solid, or gradient with colour2: {bg!r}")
    if not all(len(c) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in c) for c in colours):
        raise ValueError(f"background colours must be 3 ints in 0..255: {bg!r}")
    if spec.style not in _STYLES:
        raise ValueError(f"shadow style must be one of {_STYLES}, got {spec.style!r}")
    if not 0.0 <= spec.strength <= 1.0 or not math.isfinite(spec.light_direction_deg):
        raise ValueError(f"shadow strength must be in [0, 1] and the angle finite: {spec!r}")
    if not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    if not (math.isfinite(feather_px) and feather_px >= 0.0):
        raise ValueError(f"feather_px must be finite and >= 0, got {feather_px}")
    return int(canvas_size[0]), int(canvas_size[1])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def overlay_product(
    backdrop: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, placement: Placement
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a product (``rgb`` uint8, ``alpha`` float [0, 1]) onto ``backdrop`` (H, W, 3)
    uint8 through ``placement`` (product pixels -> backdrop pixels), premultiplied so the
    old photo's colours cannot bleed into the edge. Returns (canvas rgb, product alpha).

    Used to put the original product back at full resolution over a scene that a model
    painted smaller and that was upsampled: only the backdrop is resampled from the model.
    """
    height, width = backdrop.shape[:2]
    flags = cv2.INTER_CUBIC if placement.scale > 1.0 else cv2.INTER_LINEAR
    a = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    premultiplied = rgb.astype(np.float32) * a[..., None]

    def warp(img):
        return cv2.warpAffine(
            img, placement.matrix(), (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    a_out = np.clip(warp(a), 0.0, 1.0)
    colour = np.clip(warp(premultiplied), 0.0, 255.0)
    out = colour + backdrop.astype(np.float32) * (1.0 - a_out[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), a_out
