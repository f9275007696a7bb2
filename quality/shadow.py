"""Shadow plausibility: cast-shadow direction vs the light, contact shadow, light estimate.

Conventions are those of ``imaging/types.py``: pixel (x, y) with y down;
``light_direction_deg`` is the direction from the product *towards* the light,
counter-clockwise from +x with y *up*; a cast shadow is offset by ``(-cos t, +sin t)``
(x, y-down), i.e. its direction is ``light + 180``.

Darkening of the backdrop: ``d = 1 - Y / Y_ref`` in linear luminance, where ``Y_ref`` is
the known studio backdrop colour, or for generated scenes a local estimate: the backdrop
farther than 0.15 x the product size from it, smoothed and filled in towards the product
by normalised Gaussian convolution (a long cast shadow beyond that distance is partly
taken for backdrop and under-read). Direction and mass are measured on the
canvas reduced to ``work_side`` px (shadows are large and soft); the contact shadow is
read at full resolution in a thin strip under the base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_pair, disk, resize_to, within
from quality.delta_e import srgb_to_linear

__all__ = [
    "ShadowGeometry",
    "LightEstimate",
    "shadow_geometry",
    "estimate_light_direction",
    "angle_difference",
    "work_grid",
]

_LUMA = np.array([0.2126, 0.7152, 0.0722])  # linear sRGB -> relative luminance Y


def angle_difference(a_deg: float, b_deg: float) -> float:
    """Smallest absolute difference of two angles, degrees in [0, 180].

    >>> angle_difference(350.0, 10.0)
    20.0
    """
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)


@dataclass(frozen=True)
class ShadowGeometry:
    """What the backdrop's darkening says about the shadow (see ``shadow_geometry``)."""

    darkening_mass: float  # sum of darkening around the product / product area (working grid)
    visible: bool  # darkening_mass >= min_mass
    shadow_direction_deg: float | None  # where the darkening leans, y-up CCW from +x; None when the
    # shadow is not visible or lies all in the contact zone
    implied_light_deg: float | None  # shadow direction + 180
    direction_error_deg: float | None  # given light vs the implied light; None if no light given or
    # no direction read
    lean: float  # how one-sided the darkening round the product is: 0 even, ~1 all on one side
    side_mass: float  # darkening outside the contact zone / product area (working grid)
    contact_darkening: float | None  # median darkening just under the base; None if not measurable


@dataclass(frozen=True)
class LightEstimate:
    """Light direction from the backdrop's large-scale shading (see ``estimate_light_direction``)."""

    light_direction_deg: float  # towards the brighter side, y-up CCW from +x
    strength: float  # relative luminance change across the frame along that direction
    r2: float  # share of backdrop luminance variance the plane explains
    n_pixels: int  # backdrop pixels read (work grid); under 16 there is no answer (strength 0)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    lin = srgb_to_linear(rgb)
    return (_LUMA[0] * lin[..., 0] + _LUMA[1] * lin[..., 1] + _LUMA[2] * lin[..., 2]).astype(np.float32)


def work_grid(rgb: np.ndarray, alpha: np.ndarray, work_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The canvas reduced to ``work_side`` px on its longest side (area averaging): ``(rgb,
    alpha, f)`` with ``f`` the reduction. quality/consistency.py reads the same grid, so a
    caller can reduce once and hand it to both (``work=``)."""
    f = min(1.0, work_side / max(alpha.shape))
    return resize_to(rgb, f, exact=False), resize_to(alpha, f, exact=False), f


def _work(rgb, alpha, work_side, work) -> tuple[np.ndarray, np.ndarray, float]:
    small_rgb, small_alpha, f = work if work is not None else work_grid(rgb, alpha, work_side)
    return _luminance(small_rgb), small_alpha, f


_FAR = 0.15  # backdrop farther than this share of the product size is taken as unshadowed
_BAND = 0.15  # the direction is read on backdrop within this share of the product size of it ...
_ZONE = 0.08  # ... outside the contact zone: this share of the product size above and below the
# base line, and beside the base


def _far_backdrop(alpha: np.ndarray) -> tuple[np.ndarray, int]:
    """Backdrop pixels farther than ``_FAR`` x the product's size from it, and that size."""
    x0, y0, x1, y1 = bbox(alpha)
    size = max(x1 - x0, y1 - y0)
    return ~within(alpha >= 0.02, max(2.0, _FAR * size)), size


def _reference(y: np.ndarray, alpha: np.ndarray, background_rgb: tuple[int, int, int] | None) -> np.ndarray:
    """Unshadowed backdrop luminance per pixel: the known colour, else a local estimate
    from the far backdrop (normalised Gaussian convolution), else - when the product
    leaves no far backdrop - the 90th percentile of the backdrop it leaves."""
    if background_rgb is not None:
        ref = float(_luminance(np.array(background_rgb, dtype=np.uint8)))
        return np.full(y.shape, max(ref, 1e-4), np.float32)
    far, size = _far_backdrop(alpha)
    if far.sum() < 16:
        backdrop = alpha < 0.02
        level = float(np.percentile(y[backdrop], 90)) if backdrop.any() else 1.0
        return np.full(y.shape, max(level, 1e-4), np.float32)
    sigma = max(1.0, _FAR * size)
    q = max(1, int(sigma // 4))  # the fill-in is smooth: blur on a grid q times coarser
    w = far.astype(np.float32)
    small = (max(1, y.shape[1] // q), max(1, y.shape[0] // q))
    num = cv2.GaussianBlur(
        cv2.resize(y * w, small, interpolation=cv2.INTER_AREA), (0, 0), sigma / q, borderType=cv2.BORDER_REFLECT
    )
    den = cv2.GaussianBlur(
        cv2.resize(w, small, interpolation=cv2.INTER_AREA), (0, 0), sigma / q, borderType=cv2.BORDER_REFLECT
    )
    level = float(np.percentile(y[far], 90))
    est = np.where(den > 1e-3, num / np.maximum(den, 1e-6), level).astype(np.float32)
    est = cv2.resize(est, (y.shape[1], y.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.maximum(est, 1e-4)


def _contact(output_rgb, output_alpha, ref_work, f, depth_frac, box) -> float | None:
    """Median darkening in a strip just under the product's lowest edge, full resolution.

    The strip runs under the columns whose lowest product pixel lies within 2 % of the
    product's height of its lowest row, so only that band of rows is read."""
    h, w = output_alpha.shape
    x0, y0, x1, y1 = box
    height = y1 - y0
    tol = max(2, int(round(0.02 * height)))
    top = max(y0, y1 - 1 - tol)  # rows bottom - tol .. bottom: where a qualifying column's lowest pixel lies
    solid = output_alpha[top:y1, x0:x1] >= 0.5
    has = solid.any(axis=0)
    bottom = top + (y1 - top - 1) - np.argmax(solid[::-1], axis=0)  # lowest product row per column
    cols = np.flatnonzero(has)
    gap, depth = 2, max(3, int(round(depth_frac * height)))
    ys = bottom[cols][:, None] + gap + np.arange(depth)[None, :]
    if ys.max() >= h:
        return None
    xs = np.broadcast_to((x0 + cols)[:, None], ys.shape)
    y = _luminance(output_rgb[ys, xs])
    wy = np.clip(((ys + 0.5) * f - 0.5).round().astype(int), 0, ref_work.shape[0] - 1)
    wx = np.clip(((xs + 0.5) * f - 0.5).round().astype(int), 0, ref_work.shape[1] - 1)
    dark = np.clip(1.0 - y / ref_work[wy, wx], 0.0, 1.0) * (output_alpha[ys, xs] < 0.5)
    return float(np.median(dark.mean(axis=1)))


def _lean(dark: np.ndarray, backdrop: np.ndarray, alpha: np.ndarray) -> tuple[float | None, float, float]:
    """Where the darkening round the product leans: ``(direction_deg, lean, side_mass)``.

    Read on backdrop pixels within ``_BAND`` x the product's size of it, outside the contact
    zone (the base line +- ``_ZONE`` x the product's size, across the base and ``_ZONE``
    beyond it: a contact shadow lies under the base whatever the light and would pull every
    reading down). Each pixel's darkening, less the mean darkening at its distance from the
    product (an even rim, a blur all round, cancels), is fitted as ``w (s . u) + ramp``: ``u``
    the unit vector away from its nearest product pixel, ``w`` the slope of the mean
    darkening with distance (a silhouette shifted by ``s`` darkens by ``w (s . u)`` more, to
    first order) and ``ramp`` a plane over the band (what the backdrop estimate leaves of a
    gradient). The direction of ``s`` is where the shadow lies; weighted least squares
    weighs each side by what it shows, so leaving the contact zone out does not bend the
    answer towards the sides. ``lean`` = |sum of the residual darkening x u| / darkening read
    (0: even all round); ``side_mass`` = darkening read / product area."""
    product = alpha >= 0.5
    area = max(1.0, float(alpha.sum()))
    x0, y0, x1, y1 = bbox(alpha)
    size = max(x1 - x0, y1 - y0)
    dist, labels = cv2.distanceTransformWithLabels(
        (~product).view(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    tol = max(2, int(round(0.02 * (y1 - y0))))
    base = np.flatnonzero(product[max(y0, y1 - 1 - tol) : y1, x0:x1].any(axis=0)) + x0
    cx, half = 0.5 * (base[0] + base[-1] + 1), 0.5 * (base[-1] + 1 - base[0]) + _ZONE * size
    rows, cols = np.nonzero(backdrop & (dist > 0) & (dist <= _BAND * size))
    keep = (np.abs(rows - y1) > _ZONE * size) | (np.abs(cols - cx) > half)
    rows, cols = rows[keep], cols[keep]
    d = dark[rows, cols]
    total = float(d.sum())
    if total <= 0.0:
        return None, 0.0, 0.0
    py, px = np.nonzero(product)  # the order of cv2's pixel labels
    near = labels[rows, cols] - 1
    vx, vy = (cols - px[near]).astype(np.float64), (rows - py[near]).astype(np.float64)
    norm = np.maximum(np.hypot(vx, vy), 1e-9)
    ux, uy = vx / norm, vy / norm
    k = dist[rows, cols].astype(np.int64)  # 1 px distance bins
    mean = np.bincount(k, d) / np.maximum(np.bincount(k), 1)
    residual = d - mean[k]
    # plain reductions, no BLAS: on a busy machine its threads cost more than these sums
    lean = math.hypot(float((residual * ux).sum()), float((residual * uy).sum())) / total
    w = np.abs(np.gradient(mean))[k] if mean.size > 2 else np.ones_like(d)
    design = (w * ux, w * uy, (cols - cx) / size, (rows - 0.5 * (y0 + y1)) / size)
    gram = np.array([[float((a * b).sum()) for b in design] for a in design])
    rhs = np.array([float((a * residual).sum()) for a in design])
    (sx, sy, _, _), *_ = np.linalg.lstsq(gram, rhs, rcond=None)  # the normal equations, 4 x 4
    if sx == 0.0 and sy == 0.0:
        return None, lean, total / area
    return math.degrees(math.atan2(-sy, sx)) % 360.0, lean, total / area


def shadow_geometry(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    *,
    background_rgb: tuple[int, int, int] | None,
    light_direction_deg: float | None,
    work_side: int,
    noise_floor: float,
    min_mass: float,
    contact_depth_frac: float,
    min_lean_mass: float = 0.0,
    validate: bool = True,
    work: tuple[np.ndarray, np.ndarray, float] | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> ShadowGeometry:
    """Direction of the cast shadow and presence of a contact shadow on the canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1];
    ``background_rgb`` the known solid sRGB backdrop (0..255) or None (local estimate);
    ``light_direction_deg`` per imaging/types.py or None; ``work_side`` px of the reduced
    canvas; ``noise_floor`` darkening below which a pixel counts as unshadowed;
    ``min_mass`` darkening mass (per product area) below which no shadow is "visible";
    ``contact_depth_frac`` depth of the contact strip as a share of product height;
    ``min_lean_mass``: one-sided darkening (``lean`` x ``side_mass``, per product area)
    below which no direction is read (an even rim or a contact-only shadow says nothing
    about the light and is not failed for it).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence);
    ``work``: the canvas already reduced by ``work_grid(output_rgb, output_alpha,
    work_side)``; ``box``: ``bbox(output_alpha)`` already measured (both only save time).
    Colour space: linear-light luminance Y (IEC 61966-2-1, Rec. 709 weights).
    Method: the direction is where the darkening round the product leans once the
    contact zone under the base is left out and the even part of the rim is taken away
    (``_lean``): a cast shadow is the silhouette shifted away from the light (the
    drop-shadow model of imaging/types.py), so it lies thicker on the side away from the
    light, while the contact shadow lies under the base whatever the light and would
    otherwise decide the answer (a shadow drawn sideways or towards the light still has
    it). Reference: constructed cases in tests/quality/test_shadow.py; the labelled corpus
    of bench/qc_calibration.py (``shadow_direction``).

    >>> yy, xx = np.mgrid[:200, :200]
    >>> alpha = ((np.abs(xx - 100) < 40) & (np.abs(yy - 90) < 60)).astype(np.float32)
    >>> shadow = np.roll(np.roll(alpha, 12, axis=0), 12, axis=1) * (1 - alpha)  # light at 135
    >>> rgb = np.repeat((255 * (1 - 0.5 * shadow))[..., None], 3, axis=2).astype(np.uint8)
    >>> g = shadow_geometry(rgb, alpha, background_rgb=(255, 255, 255), light_direction_deg=135.0,
    ...                     work_side=200, noise_floor=0.02, min_mass=0.01, contact_depth_frac=0.03)
    >>> (g.visible, round(g.implied_light_deg), g.direction_error_deg < 10, g.contact_darkening > 0.3)
    (True, 127, True, True)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    y, a, f = _work(output_rgb, output_alpha, work_side, work)
    ref = _reference(y, a, background_rgb)
    backdrop = cv2.erode((a < 0.02).astype(np.uint8), disk(1)).astype(bool)
    dark = np.clip(1.0 - y / ref, 0.0, 1.0) * backdrop
    dark[dark < noise_floor] = 0.0
    x0, y0, x1, y1 = bbox(a)
    size = max(x1 - x0, y1 - y0)
    zone = within(a >= 0.02, max(2, size // 2))
    dark = (dark * zone).astype(np.float64)
    area = float(a.sum())
    mass = float(dark.sum()) / area
    contact = _contact(output_rgb, output_alpha, ref, f, contact_depth_frac, box or bbox(output_alpha))

    direction = light = error = None
    lean, side = 0.0, 0.0
    if mass >= min_mass:
        direction, lean, side = _lean(dark, backdrop, a)
        if direction is not None and lean * side < min_lean_mass:
            direction = None
        if direction is not None:
            light = (direction + 180.0) % 360.0
            if light_direction_deg is not None:
                error = angle_difference(light, float(light_direction_deg))
    return ShadowGeometry(
        darkening_mass=mass,
        visible=mass >= min_mass,
        shadow_direction_deg=direction,
        implied_light_deg=light,
        direction_error_deg=error,
        lean=lean,
        side_mass=side,
        contact_darkening=contact,
    )


def estimate_light_direction(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    *,
    work_side: int = 128,
    validate: bool = True,
    work: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> LightEstimate:
    """Image-plane light direction from the backdrop's brightness gradient (a plane fit).

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB, ``output_alpha`` (H, W) float [0, 1].
    Fits ``Y = c + gx x + gy y`` (linear luminance, coordinates normalised to the frame)
    to backdrop pixels farther than 0.15 x the product size from it (so most of the
    product's own shadow is left out); the light is taken to lie towards the brighter side.
    Reference: the fall-off of a near key light on a backdrop (inverse square, Lambert).

    Limits, honestly: it reads only the backdrop's large-scale shading, so it is wrong
    for evenly lit backdrops (``strength`` ~ 0: no answer), for backdrops whose paint,
    texture or gradient is itself uneven (a studio sweep lighter at the top reads as
    light from above), for vignetting (symmetric, so it mostly cancels, lowering
    ``r2``), for several lights (it returns their blend) and it says nothing about depth
    (front/back). Use it as a consistency hint with ``strength`` and ``r2`` as its
    confidence, never as ground truth. ``validate=False`` skips the input checks for
    arrays already checked (QcEvidence); ``work``: the canvas already reduced by
    ``work_grid(output_rgb, output_alpha, work_side)``.

    >>> yy, xx = np.mgrid[:100, :100]
    >>> v = 120 + 0.6 * (100 - xx) + 0.6 * (100 - yy)  # brighter to the upper left
    >>> rgb = np.repeat(v[..., None], 3, axis=2).astype(np.uint8)
    >>> alpha = np.zeros((100, 100), np.float32); alpha[45:55, 45:55] = 1
    >>> e = estimate_light_direction(rgb, alpha)
    >>> (abs(e.light_direction_deg - 135) < 3, e.strength > 0.3, e.r2 > 0.9)
    (True, True, True)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    y, a, _ = _work(output_rgb, output_alpha, work_side, work)
    far, _ = _far_backdrop(a)
    if far.sum() < 16:  # the product leaves no backdrop to read: no answer
        return LightEstimate(light_direction_deg=0.0, strength=0.0, r2=0.0, n_pixels=int(far.sum()))
    h, w = y.shape
    yy, xx = np.nonzero(far)
    scale = float(max(h, w))
    design = np.stack([np.ones(yy.size), (xx - w / 2) / scale, (yy - h / 2) / scale], axis=1)
    target = y[far].astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    resid = target - design @ coef
    var = float(target.var())
    r2 = 1.0 - float(resid.var()) / var if var > 0 else 0.0
    gx, gy = float(coef[1]), float(coef[2])
    return LightEstimate(
        light_direction_deg=math.degrees(math.atan2(-gy, gx)) % 360.0,
        strength=math.hypot(gx, gy) / max(float(coef[0]), 1e-6),
        r2=r2,
        n_pixels=int(far.sum()),
    )
