"""Edge quality on the product boundary: halo, fringe, transition width, roughness.

Everything is measured on intensity *profiles* sampled along the outward normal of the
product boundary (the 0.5 level of the output alpha), one profile per boundary pixel,
at full canvas resolution (halos and fringes are 1-3 px wide; downsampling would erase
them). A profile runs from ``-profile_px`` (inside the product) to ``+profile_px``
(backdrop), 1 px apart, centred on the sub-pixel 0.5 crossing. Per profile:

* rim: samples within ``rim_px`` of the crossing; interior reference: samples at
  ``-ref_px[1]..-ref_px[0]``; backdrop reference: samples at ``ref_px[0]..ref_px[1]``
  (their means are the product and backdrop colours of the fringe model).
* halo: a rim sample whose L* lies outside the range spanned by the reference samples
  on both sides (a clean edge only *mixes* product and backdrop, so it stays between
  them; using the full range of the samples keeps product texture from counting); a rim
  sample already clear of the product (alpha <= 0.02), where the backdrop band is even
  (no drawn shadow falling off across it), must stay within the band's range or its
  straight-line trend carried inwards, give or take the band's scatter; a rim sample on
  the backdrop side of the edge (0.02 < alpha < 0.5) must stay within what the
  compositor's "over" can make of alpha x product (its band, with up to 1 - alpha of the
  photo's old backdrop) + (1 - alpha) x backdrop (a dark rim round a dark product on
  white lies between the two sides and is still a halo). Only the backdrop side
  (alpha < 0.5) counts for ``halo_share``: a rim there is painted, never the product's
  own; an excursion on the product side (a saucer's dark lip, a bottle's bright
  shoulder) is reported as ``halo_product_side_share`` and judged by nothing.
* fringe: each rim colour is written as backdrop + u (product - backdrop) +
  v (old backdrop - backdrop) in sRGB values (the space compositors blend in); v is the
  weight of the *source photo's* background that leaked into the edge. The old backdrop is
  the photo's colour beside that place of the outline (quality/old_backdrop.py: on wood or
  marble the colour that leaks in is the local one, not the photo's median). Where the old
  colour lies on the product/backdrop line between the two (black on dark gravel) the
  coverage comes from the canvas's alpha instead, on the opaque rim (alpha >= 0.5) only, and
  a profile whose rim goes past the old colour (a rim light) counts none. Profiles where
  the old background is not separable from that mix otherwise (white on white), or where
  the backdrop varies across its band by more than ``halo_delta_l / 2`` L* (a contact
  shadow), are left out.

Per-profile peaks are median-filtered along the contour (5 profiles) before flagging,
so isolated texture on the product does not count but a continuous rim does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_pair, quadratic_smooth_closed, smooth_closed
from quality.delta_e import srgb_to_linear
from quality.old_backdrop import LocalBackdrop, estimate_old_background

__all__ = ["EdgeQuality", "edge_quality", "estimate_old_background", "transition_width"]

_REC709 = np.array([0.2126, 0.7152, 0.0722])  # luminance weights (of linear light, or of code values for "over")
_PAST_OLD = 0.15  # old-colour weight beyond the coverage: the rim went past the old colour
_MIN_CONTOUR = 16  # boundary pieces shorter than this (specks, dust) are ignored


@dataclass(frozen=True)
class EdgeQuality:
    """Edge statistics over the product boundary (see ``edge_quality``)."""

    n_profiles: int
    halo_share: float  # share of boundary profiles with a halo on the backdrop side (alpha < 0.5)
    halo_excursion: float  # signed mean L* excursion of flagged profiles (+ bright, - dark); 0 if none
    halo_width_px: float  # median equivalent width (px) of the excursion, flagged profiles
    fringe_share: float | None  # None when the old background cannot be told from product/backdrop
    fringe_weight: float  # median peak old-background weight of flagged profiles; 0 if none
    fringe_width_px: float  # median equivalent width (px) of the old-background weight, flagged
    transition_width_px: float  # median 90 % -> 10 % alpha distance along the normal (an
    # anti-aliased 1-px edge reads ~1.5 px, a binary one ~0.8 px: bilinear samples of pixels)
    roughness_px: float  # robust sigma (1.4826 MAD) of the sub-pixel boundary about its smoothed
    # course; corners count as roughness, which the median tolerates while they are few
    halo_product_side_share: float = 0.0  # ... with an excursion on the product side only
    # (alpha >= 0.5: a physical rim or a painted one; not judged)
    fringe_measured: int = 0  # profiles where the old background can be told apart (fringe_share's base)


def _boundary(alpha: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Boundary pixels, outward unit normals and contour ids of ``alpha >= 0.5``."""
    binary = (alpha >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    contours = [c[:, 0, :].astype(np.float64) for c in contours if len(c) >= _MIN_CONTOUR]
    if not contours:
        raise ValueError("output_alpha has no product boundary longer than 16 px")
    total = sum(len(c) for c in contours)
    step = max(1, int(np.ceil(total / max_points)))
    pts, nrm, ids = [], [], []
    for i, c in enumerate(contours):
        c = c[::step]
        sm = smooth_closed(c, 1.5)
        tan = np.roll(sm, -1, axis=0) - np.roll(sm, 1, axis=0)
        n = np.stack([tan[:, 1], -tan[:, 0]], axis=1)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
        probe = np.concatenate([c + 1.5 * n, c - 1.5 * n]).astype(np.float32)
        a = cv2.remap(alpha, probe[:, :1], probe[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = a[:, 0]
        if np.mean(a[: len(c)] > a[len(c) :]) > 0.5:  # normals must point to lower alpha
            n = -n
        pts.append(c)
        nrm.append(n)
        ids.append(np.full(len(c), i))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(ids), float(step)


def _sample(img: np.ndarray, pts: np.ndarray, nrm: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` at ``pts + t * nrm``: shape (N, T[, C])."""
    mx = (pts[:, None, 0] + t[None, :] * nrm[:, None, 0]).astype(np.float32)
    my = (pts[:, None, 1] + t[None, :] * nrm[:, None, 1]).astype(np.float32)
    return cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _crossing(a: np.ndarray, t: np.ndarray, level: float, centre: np.ndarray, inside: bool) -> np.ndarray:
    """Sub-pixel t where the falling profile ``a`` passes ``level``, nearest ``centre``
    (index of the last sample >= 0.5) on the inside or outside; NaN where it never does."""
    idx = np.arange(a.shape[1])[None, :]
    if inside:
        cand = np.where((a >= level) & (idx <= centre[:, None]), idx, -1).max(axis=1)
        j, ok = np.clip(cand, 0, a.shape[1] - 2), cand >= 0
    else:
        cand = np.where((a <= level) & (idx > centre[:, None]), idx, a.shape[1]).min(axis=1)
        j, ok = np.clip(cand - 1, 0, a.shape[1] - 2), cand < a.shape[1]
    a0, a1 = np.take_along_axis(a, j[:, None], 1)[:, 0], np.take_along_axis(a, j[:, None] + 1, 1)[:, 0]
    frac = np.clip((a0 - level) / np.where(a0 != a1, a0 - a1, 1.0), 0.0, 1.0)
    return np.where(ok, t[j] + frac, np.nan)


def _widths(a: np.ndarray, mid: int) -> np.ndarray:
    """90 % -> 10 % widths, in samples, of falling alpha profiles ``a`` (N, 2 mid + 1)
    centred on the contour: from the 0.5 crossing nearest the middle to the nearest 0.9
    crossing inside and 0.1 crossing outside; ``2 mid`` where either is missing."""
    idx = np.arange(a.shape[1], dtype=np.float64)
    down = (a[:, :-1] >= 0.5) & (a[:, 1:] < 0.5)
    dist = np.where(down, np.abs(np.arange(a.shape[1] - 1) + 0.5 - mid), np.inf)
    centre = np.where(np.isfinite(dist.min(axis=1)), dist.argmin(axis=1), mid - 1)
    t90 = _crossing(a, idx, 0.9, centre, inside=True)
    t10 = _crossing(a, idx, 0.1, centre, inside=False)
    return np.where(np.isnan(t90) | np.isnan(t10), 2.0 * mid, t10 - t90)


def transition_width(
    alpha: np.ndarray, *, profile_px: float = 10.0, spacing: float = 0.25, max_points: int = 2000
) -> float | None:
    """Median 90 % -> 10 % width of a coverage map's edge along the normals of its 0.5
    contour, in its own pixels: profiles of ``2 profile_px`` px sampled every ``spacing``
    px, at most ``max_points`` of them (evenly strided along the outline). None when the
    map has no outline of 16 px or more. The gate reads it on the source mask (the photo's
    own cut) to judge the canvas's edge against it (``quality.checks.edge_checks``).
    Input (H, W) float in [0, 1], already checked.

    >>> yy, xx = np.mgrid[:64, :64]
    >>> disk = np.clip(20.5 - np.hypot(xx - 32, yy - 32), 0, 1).astype(np.float32)
    >>> round(transition_width(disk), 1), round(transition_width(cv2.GaussianBlur(disk, (0, 0), 2.0)), 1)
    (1.4, 5.3)
    """
    try:
        x0, y0, x1, y1 = bbox(alpha)
    except ValueError:
        return None
    m = int(np.ceil(profile_px)) + 2
    h, w = alpha.shape
    crop = alpha[max(0, y0 - m) : min(h, y1 + m), max(0, x0 - m) : min(w, x1 + m)]
    try:
        pts, nrm, _, _ = _boundary(crop, max_points)
    except ValueError:
        return None
    n = int(round(profile_px / spacing))
    a = _sample(crop, pts, nrm, np.arange(-n, n + 1) * spacing)
    return float(np.median(_widths(a, n))) * spacing


def _l_star(y: np.ndarray) -> np.ndarray:
    """CIE L* of relative luminance ``y`` in [0, 1]."""
    return np.where(y > 216 / 24389, 116.0 * np.cbrt(y) - 16.0, y * 24389 / 27)


def _gray_to_l(gray: np.ndarray) -> np.ndarray:
    """L* of a neutral sRGB code value (0..255)."""
    return _l_star(srgb_to_linear(np.clip(gray, 0.0, 255.0).astype(np.float64) / 255.0))


def _composite_range(prof, a_rim, rim, inner, outer, expect_l, scatter_l, old_rgb, where):
    """(lo, hi) L* a rim sample of coverage ``a_rim`` may take under sRGB "over", for the
    rim samples ``where`` selects (a boolean (N, rim) mask; returned flat, in its order):
    the product side ranges over its reference band and its own opaque rim samples, mixed
    with up to ``1 - alpha`` of the photo's old backdrop (an edge pixel of the photo is partly
    backdrop; the fringe check judges how much), the backdrop over its band's trend (the
    L* trend mapped back to code values) give or take its scatter. Gray = Rec. 709 weights
    on code values, which "over" mixes linearly."""
    rows = np.flatnonzero(where.any(axis=1))
    sel = where[rows]
    gray = _gray(prof[rows])
    a_r = a_rim[rows]
    opaque = np.where(a_r >= 0.9, gray[:, rim], np.nan)
    f = np.concatenate([gray[:, inner], opaque], axis=1)
    f_lo, f_hi = np.nanmin(f, axis=1)[:, None], np.nanmax(f, axis=1)[:, None]
    r, _ = np.nonzero(sel)  # row (within ``rows``) of each selected sample
    a = a_r[sel]
    f_lo, f_hi = f_lo[r, 0], f_hi[r, 0]
    if old_rgb is not None:
        old = old_rgb[rows][r] @ _REC709  # the old backdrop near each sample's profile
        spill = (1 - a) * old
        f_lo, f_hi = np.minimum(f_lo, a * f_lo + spill), np.maximum(f_hi, a * f_hi + spill)
    expect, scatter = expect_l[rows][sel], scatter_l[rows][r]
    g_out = gray[:, outer]
    b_lo = np.minimum(_l_to_gray(expect - scatter), g_out.min(axis=1)[r])
    b_hi = np.maximum(_l_to_gray(expect + scatter), g_out.max(axis=1)[r])
    return _gray_to_l(a * f_lo + (1 - a) * b_lo), _gray_to_l(a * f_hi + (1 - a) * b_hi)


def _line_fit(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares straight line through each row of ``values`` (N, T) sampled at ``t``:
    ``(slope, intercept)``, each (N,) (``np.polyfit(t, values.T, 1)`` in closed form)."""
    tc = t - t.mean()
    slope = (values * tc).sum(axis=1) / float((tc * tc).sum())
    return slope, values.mean(axis=1) - slope * t.mean()


def _gray(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 weighted sum over the last axis (``rgb @ _REC709`` without BLAS, whose threads
    cost more than the sum on a busy machine)."""
    return _REC709[0] * rgb[..., 0] + _REC709[1] * rgb[..., 1] + _REC709[2] * rgb[..., 2]


def _l_to_gray(lum: np.ndarray) -> np.ndarray:
    """The neutral sRGB code value (0..255) of L*."""
    lum = np.clip(lum, 0.0, 100.0)
    y = np.where(lum > 8.0, ((lum + 16.0) / 116.0) ** 3, lum * 27 / 24389)
    v = np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(y, 1 / 2.4) - 0.055)
    return 255.0 * v


def _median_along(values: np.ndarray, ids: np.ndarray, width: int = 5) -> np.ndarray:
    """Running median of ``values`` along each closed contour (wrapping)."""
    out = np.empty_like(values)
    h = width // 2
    for i in np.unique(ids):
        sel = ids == i
        v = values[sel]
        if v.size < width:
            out[sel] = np.median(v)
            continue
        padded = np.concatenate([v[-h:], v, v[:h]])
        out[sel] = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
    return out


def _old_backdrop_weights(prof, rim, inner, outer, old, flat, min_sep, a_rim):
    """Per profile, whether the old backdrop's share of its rim samples is measurable, and
    that share ``v`` (N, rim), 0..1: each rim colour unmixed as backdrop + u (product -
    backdrop) + v (old - backdrop) in sRGB code values (the compositor's "over"), with the
    coverage ``u`` left free so the product's own shading along that line is not read as old
    backdrop. Measurable where the old colour lies ``min_sep`` or more off the
    product/backdrop line; colours the fit leaves more than ``min_sep`` over are something
    else (a halo) and count 0. Where the old colour lies on that line between backdrop and
    product, ``min_sep`` or more from the product, ``a_rim`` (the canvas's alpha at each rim
    sample) stands in for ``u`` on the opaque rim. Beyond the product (white on white) it
    would read the product's own darker rim as fringe (clean white boxes and grey frames at
    0.8, README "2.5.7"), so those profiles stay unmeasurable."""
    fg, bg = prof[:, inner].mean(axis=1), prof[:, outer].mean(axis=1)
    d1, d2 = fg - bg, old - bg
    g11, g22, g12 = (d1 * d1).sum(1), (d2 * d2).sum(1), (d1 * d2).sum(1)
    det = g11 * g22 - g12**2
    sep = np.sqrt(np.maximum(det, 0.0) / np.maximum(g11, 1e-9))  # distance of old bg to the line
    ok = (sep >= min_sep) & (g11 >= 1.0) & flat
    # On the line, between the product and the backdrop (black on dark gravel): a fringe
    # moves the product's opaque rim toward the backdrop, which the canvas's alpha says
    # is not blending.
    t = g12 / np.maximum(g11, 1e-9)  # where the old colour lies: 0 backdrop .. 1 product
    between = ~ok & flat & (g11 >= 1.0) & (t > 0.0) & ((1.0 - t) * np.sqrt(g11) >= min_sep)
    if not (ok.any() or between.any()):
        return ok | between, None
    c = prof[:, rim] - bg[:, None, :]
    r1, r2 = (c * d1[:, None, :]).sum(2), (c * d2[:, None, :]).sum(2)
    safe = np.where(ok, det, 1.0)[:, None]
    u = (g22[:, None] * r1 - g12[:, None] * r2) / safe
    w = (g11[:, None] * r2 - g12[:, None] * r1) / safe
    resid = np.linalg.norm(c - u[..., None] * d1[:, None, :] - w[..., None] * d2[:, None, :], axis=2)
    v = np.where(ok[:, None] & (resid <= min_sep), np.clip(w, 0.0, 1.0), 0.0)
    if between.any():
        # On the line c = (a - w (1 - t)) d1, w the old colour's share of the canvas colour
        # as above (the photo's own blend, w = a (1 - a), stays under any weight that counts).
        proj = r1 / np.maximum(g11, 1e-9)[:, None]
        off = np.linalg.norm(c - proj[..., None] * d1[:, None, :], axis=2)
        wb = (a_rim - proj) / np.maximum(1.0 - t, 1e-6)[:, None]
        opaque = between[:, None] & (a_rim >= 0.5) & (off <= min_sep)
        # A fringe only mixes toward the old colour: a rim that goes past it (a black
        # product's rim light) is lit, and its fall-off inwards passes the old colour too.
        lit = (opaque & (wb > a_rim + _PAST_OLD)).any(axis=1)
        use = opaque & (wb <= a_rim) & ~lit[:, None]
        v = np.where(use, np.clip(wb, 0.0, 1.0), v)
    return ok | between, v


def edge_quality(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    *,
    old_background_rgb: tuple[float, float, float] | LocalBackdrop | None,
    profile_px: int,
    rim_px: int,
    ref_px: tuple[int, int],
    halo_delta_l: float,
    fringe_weight: float,
    fringe_min_separation: float,
    smooth_px: float,
    max_points: int = 12_000,
    validate: bool = True,
    box: tuple[int, int, int, int] | None = None,
    scale: float = 1.0,
) -> EdgeQuality:
    """Halo, fringe, transition width and roughness of the product edge on the canvas.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float in [0, 1],
    the product coverage. ``old_background_rgb``: the source photo's background colour
    near each place of the outline (``quality.old_backdrop.local_old_backdrop``), or one
    colour for all of it (``estimate_old_background``), 0..255 sRGB; None skips the fringe
    check.
    Distances are canvas pixels: ``profile_px`` half-length of a profile, ``rim_px``
    rim half-width (wider halos saturate at ``2 * rim_px + 1``), ``ref_px`` the
    (near, far) band of the references; ``halo_delta_l`` L* excursion that counts as a
    halo; ``fringe_weight`` old-background weight that counts as a fringe;
    ``fringe_min_separation`` the least distance (8-bit sRGB units) between the old
    background and the product-backdrop line for the fringe to be measurable;
    ``smooth_px`` the scale of the smoothed boundary for the roughness (a closed
    Savitzky-Golay quadratic over ``2 * 1.5 * smooth_px + 1`` boundary points);
    ``max_points`` caps the profiles (evenly strided along the outline).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence);
    ``box``: ``bbox(output_alpha)`` when the caller has it already. ``scale``: canvas px
    per source px; where it enlarges (> 1) the transition width is read on profiles that
    run ``profile_px`` *source* px each way (every ``scale / 4`` canvas px, on at most 4000
    of the outline's profiles), so an edge blurred at the source's scale is not cut short
    by a profile a few source px long.
    Colour space: sRGB; L* (CIE 1976, D65) for halos. Reference: profile analysis along
    edge normals as in edge-spread-function measurement (ISO 12233); constructed
    reference cases in tests/quality/test_edges.py.

    >>> yy, xx = np.mgrid[:64, :64]
    >>> alpha = np.clip(20.5 - np.hypot(xx - 32, yy - 32), 0, 1).astype(np.float32)
    >>> rgb = (255 - alpha[..., None] * np.array([55, 155, 205])).astype(np.uint8)
    >>> q = edge_quality(rgb, alpha, old_background_rgb=(0, 255, 0), profile_px=10, rim_px=3,
    ...                  ref_px=(5, 9), halo_delta_l=8.0, fringe_weight=0.3,
    ...                  fringe_min_separation=20.0, smooth_px=4.0)  # a small disk: short window
    >>> (q.halo_share, q.fringe_share, round(q.transition_width_px, 1), q.roughness_px < 0.2)
    (0.0, 0.0, 1.5, True)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    if not 0 < rim_px < ref_px[0] < ref_px[1] <= profile_px:
        raise ValueError(f"need 0 < rim_px < ref_px[0] < ref_px[1] <= profile_px, got {rim_px}, {ref_px}, {profile_px}")
    x0, y0, x1, y1 = box or bbox(output_alpha)
    stretch = max(1.0, float(scale))
    m = profile_px + 2
    h, w = output_alpha.shape
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    alpha, rgb = output_alpha[y0:y1, x0:x1], output_rgb[y0:y1, x0:x1]  # views: OpenCV takes row strides

    pts, nrm, ids, spacing = _boundary(alpha, max_points)
    t = np.arange(-profile_px, profile_px + 1, dtype=np.float64)
    a = _sample(alpha, pts, nrm, t)
    down = (a[:, :-1] >= 0.5) & (a[:, 1:] < 0.5)
    dist = np.where(down, np.abs(np.arange(t.size - 1) + 0.5 - profile_px), np.inf)
    centre = np.where(np.isfinite(dist.min(axis=1)), dist.argmin(axis=1), profile_px - 1)
    t0 = np.nan_to_num(_crossing(a, t, 0.5, centre, inside=True), nan=0.0)
    if stretch == 1.0:
        t90 = _crossing(a, t, 0.9, centre, inside=True)
        t10 = _crossing(a, t, 0.1, centre, inside=False)
        width = np.where(np.isnan(t90) | np.isnan(t10), 2.0 * profile_px, t10 - t90)
    else:  # long profiles, every stretch / 4 canvas px (a quarter source px), on a subset
        sub = slice(None, None, max(1, int(np.ceil(len(pts) / 4000))))
        dt = max(1.0, stretch / 4.0)
        n = int(round(profile_px * stretch / dt))
        long = _sample(output_alpha, pts[sub] + (x0, y0), nrm[sub], np.arange(-n, n + 1) * dt)  # whole canvas
        width = _widths(long, n) * dt

    b = pts + t0[:, None] * nrm  # sub-pixel boundary
    resid = np.empty(len(b))
    for i in np.unique(ids):
        sel = ids == i
        smooth = quadratic_smooth_closed(b[sel], int(round(1.5 * smooth_px / spacing)))
        resid[sel] = np.sum((b[sel] - smooth) * nrm[sel], axis=1)
    roughness = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))

    tr = np.arange(-ref_px[1], ref_px[1] + 1, dtype=np.float64)
    prof8 = _sample(rgb, b, nrm, tr)  # (N, T, 3) uint8
    prof = prof8.astype(np.float64)
    rim = np.abs(tr) <= rim_px
    inner = tr <= -ref_px[0]
    outer = tr >= ref_px[0]

    lum = _l_star(_gray(srgb_to_linear(prof8)))
    # A rim sample may range over the reference samples of the side(s) it belongs to: the
    # mixed edge over both (texture and blending are not a halo), pure backdrop (alpha ~ 0)
    # over the backdrop's band only, where that band is even (no contact shadow), so a
    # dark rim round a dark product on white counts although it lies between the two.
    a_rim = _sample(alpha, b, nrm, tr)[:, rim]
    both = lum[:, inner | outer]
    lo, hi = np.repeat(both.min(axis=1)[:, None], rim.sum(), 1), np.repeat(both.max(axis=1)[:, None], rim.sum(), 1)
    # Backdrop under the rim: the backdrop band's straight-line trend carried inwards (a soft
    # shadow's gradient continues; a rim painted round the product does not), give or take
    # the band's own scatter about that line plus 1 L*.
    t_out = tr[outer]
    slope, icpt = _line_fit(t_out, lum[:, outer])
    scatter = np.abs(lum[:, outer] - (icpt[:, None] + slope[:, None] * t_out[None, :])).max(axis=1) + 1.0
    expect = icpt[:, None] + slope[:, None] * tr[rim][None, :]
    band_lo, band_hi = lum[:, outer].min(axis=1)[:, None], lum[:, outer].max(axis=1)[:, None]
    even = band_hi - band_lo <= 0.5 * halo_delta_l  # no drawn shadow falling off across the band
    out_of_product = (a_rim <= 0.02) & even
    lo = np.where(out_of_product, np.minimum(expect - scatter[:, None], band_lo), lo)
    hi = np.where(out_of_product, np.maximum(expect + scatter[:, None], band_hi), hi)
    # On the backdrop side of the edge (0.02 < alpha < 0.5) the compositor's "over" in sRGB
    # code values says what a sample may be: alpha x product + (1 - alpha) x backdrop. A rim
    # painted there (a matting or resampling halo) leaves that range even when it lies
    # between the two sides (a dark rim round a black product on white); a physical rim
    # (a saucer's lip) is product, alpha ~ 1, and keeps the both-sides range above.
    if isinstance(old_background_rgb, LocalBackdrop):
        old = old_background_rgb.at(b + (x0, y0))  # the photo's backdrop near each profile
    elif old_background_rgb is not None:
        old = np.broadcast_to(np.asarray(old_background_rgb, np.float64), (len(b), 3))
    else:
        old = None
    mixed = (a_rim > 0.02) & (a_rim < 0.5) & even
    if mixed.any():
        lo[mixed], hi[mixed] = _composite_range(prof, a_rim, rim, inner, outer, expect, scatter, old, mixed)
    exc = lum[:, rim] - np.clip(lum[:, rim], lo, hi)
    backdrop_side = a_rim < 0.5
    exc_in = np.where(backdrop_side, 0.0, exc)
    exc = np.where(backdrop_side, exc, 0.0)
    peak = np.take_along_axis(exc, np.abs(exc).argmax(axis=1)[:, None], 1)[:, 0]
    peak = _median_along(peak, ids)
    halo = np.abs(peak) > halo_delta_l
    peak_in = _median_along(np.take_along_axis(exc_in, np.abs(exc_in).argmax(axis=1)[:, None], 1)[:, 0], ids)
    halo_in = (np.abs(peak_in) > halo_delta_l) & ~halo
    # Equivalent width: area of the excursion over its peak, so partly blended rim pixels
    # count by their share (a box halo of w px reads ~w).
    halo_width = np.abs(exc).sum(axis=1) / np.maximum(np.abs(exc).max(axis=1), 1e-9)

    fringe_share, f_weight, f_width, measured = None, 0.0, 0.0, 0
    if old is not None:
        # A backdrop that changes across its reference band (a contact shadow, a gradient)
        # breaks the constant-backdrop mixing model: such profiles are not measurable.
        flat = np.ptp(lum[:, outer], axis=1) <= 0.5 * halo_delta_l
        ok, v = _old_backdrop_weights(prof, rim, inner, outer, old, flat, fringe_min_separation, a_rim)
        if ok.any():
            v_peak = _median_along(np.where(ok, v.max(axis=1), 0.0), ids)
            fringe = ok & (v_peak > fringe_weight)
            fringe_share, measured = float(fringe.sum() / ok.sum()), int(ok.sum())
            if fringe.any():
                f_weight = float(np.median(v_peak[fringe]))
                vf = v[fringe]
                f_width = float(np.median(vf.sum(axis=1) / np.maximum(vf.max(axis=1), 1e-9)))
    return EdgeQuality(
        n_profiles=int(len(b)),
        halo_share=float(halo.mean()),
        halo_excursion=float(peak[halo].mean()) if halo.any() else 0.0,
        halo_width_px=float(np.median(halo_width[halo])) if halo.any() else 0.0,
        fringe_share=fringe_share,
        fringe_measured=measured,
        fringe_weight=f_weight,
        fringe_width_px=f_width,
        transition_width_px=float(np.median(width)),
        roughness_px=roughness,
        halo_product_side_share=float(halo_in.mean()),
    )
