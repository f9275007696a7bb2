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

__all__ = ["ShadowGeometry", "LightEstimate", "shadow_geometry", "estimate_light_direction", "angle_difference"]

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
    shadow_direction_deg: float | None  # best-matching silhouette offset, y-up CCW from +x
    implied_light_deg: float | None  # shadow direction + 180
    direction_error_deg: float | None  # given light vs the nearest plausible implied light; None if
    # no light given or no shadow visible
    direction_spread_deg: float  # width of the plausible implied-light directions (360 = any)
    match: float  # cosine similarity of the darkening and the shifted silhouette, 0..1
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


def _work(rgb: np.ndarray, alpha: np.ndarray, work_side: int) -> tuple[np.ndarray, np.ndarray, float]:
    f = min(1.0, work_side / max(alpha.shape))
    return _luminance(resize_to(rgb, f, exact=False)), resize_to(alpha, f, exact=False), f


_FAR = 0.15  # backdrop farther than this share of the product size is taken as unshadowed


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


def _correlate(x: np.ndarray, kernel: np.ndarray, reach: int) -> np.ndarray:
    """``out[sy + reach, sx + reach] = sum_p x(p) kernel(p - s)`` for ``|sx|, |sy| <= reach``.

    Circular FFT correlation padded by ``reach`` (enough: shifts beyond it are not
    read, so their wrap-around does not matter); both inputs are the same shape."""
    h, w = x.shape
    ph, pw = cv2.getOptimalDFTSize(h + reach), cv2.getOptimalDFTSize(w + reach)
    spec = []
    for arr in (x, kernel):
        pad = np.zeros((ph, pw), np.float32)
        pad[:h, :w] = arr
        spec.append(cv2.dft(pad, flags=cv2.DFT_COMPLEX_OUTPUT))
    circ = cv2.idft(cv2.mulSpectrums(spec[0], spec[1], 0, conjB=True), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    rows = np.arange(-reach, reach + 1) % ph
    cols = np.arange(-reach, reach + 1) % pw
    return circ[np.ix_(rows, cols)].astype(np.float64)


def _contact(output_rgb, output_alpha, ref_work, f, depth_frac) -> float | None:
    """Median darkening in a strip just under the product's lowest edge, full resolution."""
    h, w = output_alpha.shape
    x0, y0, x1, y1 = bbox(output_alpha)
    solid = output_alpha[y0:y1, x0:x1] >= 0.5
    has = solid.any(axis=0)
    bottom = y0 + (y1 - y0 - 1) - np.argmax(solid[::-1], axis=0)  # lowest product row per column
    height = y1 - y0
    tol = max(2, int(round(0.02 * height)))
    cols = np.flatnonzero(has & (bottom >= bottom[has].max() - tol))
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
    plausible_frac: float = 0.9,
    validate: bool = True,
) -> ShadowGeometry:
    """Direction of the cast shadow and presence of a contact shadow on the canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1];
    ``background_rgb`` the known solid sRGB backdrop (0..255) or None (local estimate);
    ``light_direction_deg`` per imaging/types.py or None; ``work_side`` px of the reduced
    canvas; ``noise_floor`` darkening below which a pixel counts as unshadowed;
    ``min_mass`` darkening mass (per product area) below which no shadow is "visible";
    ``contact_depth_frac`` depth of the contact strip as a share of product height;
    ``plausible_frac``: offset directions scoring at least this share of the best match
    are all plausible, and the direction error is measured to the nearest of them (a
    contact-only shadow says little about the direction and is not failed for it).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence).
    Colour space: linear-light luminance Y (IEC 61966-2-1, Rec. 709 weights).
    Method: the shadow offset is the shift of the product silhouette that best matches
    the darkening (normalised cross-correlation, computed for all shifts by FFT) — the
    drop-shadow model of imaging/types.py. Reference: constructed cases in
    tests/quality/test_shadow.py.

    >>> yy, xx = np.mgrid[:200, :200]
    >>> alpha = ((np.abs(xx - 100) < 40) & (np.abs(yy - 90) < 60)).astype(np.float32)
    >>> shadow = np.roll(np.roll(alpha, 12, axis=0), 12, axis=1) * (1 - alpha)  # light at 135
    >>> rgb = np.repeat((255 * (1 - 0.5 * shadow))[..., None], 3, axis=2).astype(np.uint8)
    >>> g = shadow_geometry(rgb, alpha, background_rgb=(255, 255, 255), light_direction_deg=135.0,
    ...                     work_side=200, noise_floor=0.02, min_mass=0.01, contact_depth_frac=0.03)
    >>> (g.visible, round(g.implied_light_deg), g.direction_error_deg < 5, g.contact_darkening > 0.3)
    (True, 135, True, True)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    y, a, f = _work(output_rgb, output_alpha, work_side)
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
    contact = _contact(output_rgb, output_alpha, ref, f, contact_depth_frac)

    direction = light = error = None
    match, spread = 0.0, 360.0
    if mass >= min_mass:
        sil = a.astype(np.float64)
        reach = max(3, int(size // 2))
        corr = _correlate(dark, sil, reach)  # sum_p dark(p) sil(p - s), every shift s
        norm = _correlate((1.0 - sil) ** 2, sil**2, reach)  # visible area of the shifted silhouette
        sy, sx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
        r = np.hypot(sx, sy)
        ok = (r >= 2.0) & (r <= size / 2.0) & (norm > 0.01 * area)
        score = np.where(ok, corr / np.sqrt(np.maximum(norm, 1e-12)), -np.inf)
        k = np.unravel_index(np.argmax(score), score.shape)
        match = float(score[k] / max(float(np.sqrt(np.square(dark).sum())), 1e-12))
        direction = math.degrees(math.atan2(-sy[k], sx[k])) % 360.0
        light = (direction + 180.0) % 360.0
        # Directions whose best shift explains the darkening nearly as well as the best one
        # (within ``plausible_frac``): a contact-only shadow fits all downward offsets alike.
        angles = np.degrees(np.arctan2(-sy[ok], sx[ok])) % 360.0
        bins = (angles // 5).astype(int)
        best = np.full(72, -np.inf)
        np.maximum.at(best, bins, score[ok])
        plausible = (np.flatnonzero(best >= plausible_frac * score[k]) * 5.0 + 2.5 + 180.0) % 360.0
        spread = 5.0 * plausible.size
        if light_direction_deg is not None:
            error = max(0.0, min(angle_difference(float(p), float(light_direction_deg)) for p in plausible) - 2.5)
    return ShadowGeometry(
        darkening_mass=mass,
        visible=mass >= min_mass,
        shadow_direction_deg=direction,
        implied_light_deg=light,
        direction_error_deg=error,
        direction_spread_deg=spread,
        match=match,
        contact_darkening=contact,
    )


def estimate_light_direction(
    output_rgb: np.ndarray, output_alpha: np.ndarray, *, work_side: int = 128, validate: bool = True
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
    arrays already checked (QcEvidence).

    >>> yy, xx = np.mgrid[:100, :100]
    >>> v = 120 + 0.6 * (100 - xx) + 0.6 * (100 - yy)  # brighter to the upper left
    >>> rgb = np.repeat(v[..., None], 3, axis=2).astype(np.uint8)
    >>> alpha = np.zeros((100, 100), np.float32); alpha[45:55, 45:55] = 1
    >>> e = estimate_light_direction(rgb, alpha)
    >>> (abs(e.light_direction_deg - 135) < 3, e.strength > 0.3, e.r2 > 0.9)
    (True, True, True)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    y, a, _ = _work(output_rgb, output_alpha, work_side)
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
