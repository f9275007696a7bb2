"""Product colour fidelity: CIEDE2000 between source and output product pixels.

The compositor records where the product went (``imaging.types.Placement``): canvas
pixel = ``M @ (x_src, y_src, 1)`` for the 2x3 matrix ``M`` it hands to
``cv2.warpAffine``. This module pulls the output back onto the source pixel grid through
that matrix and compares colours on the product *interior* only (mask eroded a few
pixels, so edge resampling and matting do not count).

Working resolution: the comparison runs at half the resolution of the coarser of the two
grids (source or canvas, whichever has fewer pixels across the product), further capped
at ``max_side`` pixels across the product; both sides are area-averaged down to it
first. At half resolution the interpolation kernels of the placement (bilinear,
bicubic) pass detail almost unchanged, so resampling itself does not read as a colour
or sharpness change, while anything coarser (a cast, a repainted label, real blur) does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import (
    as_affine3,
    bbox,
    check_affine,
    check_finite,
    check_pair,
    disk,
    resize_matrix,
    resize_to,
    translate,
)
from quality.delta_e import delta_e_2000, srgb_to_lab

__all__ = ["ColourFidelity", "product_colour_fidelity", "placement_matrix"]

SHARP_WINDOW = 256  # px square (on the sharpness grid) where sharpness is compared
SHARP_COARSER = 1.5  # the sharpness grid is this much coarser than the finer of source and canvas:
# resampling kernels soften the top half-octave themselves; blur a person sees (sigma >= 1.5 px) is coarser
LOCAL_GRID = 2  # local (patch) change is judged on a grid this many working px coarser


@dataclass(frozen=True)
class ColourFidelity:
    """CIEDE2000 statistics over interior product pixels (see ``product_colour_fidelity``)."""

    delta_e_mean: float
    delta_e_p95: float  # of the dE00 on the coarser local grid (see _local_change)
    share_above: float  # share of the interior in regions (>= 3x3 local px) with dE00 > pixel_threshold
    delta_e_of_means: float  # dE00 between the mean Lab colours of the two interiors
    sharpness_ratio: float | None  # var(LoG) output / source on the interior; None if flat
    placement_iou: float  # IoU of the warped source mask and the output alpha (>= 0.5)
    n_pixels: int  # interior pixels on the working grid (dE uses a strided subset of them)
    working_scale: float  # working-grid pixels per source pixel
    eroded: bool  # False when the product was too thin to erode and the raw interior was used
    opaque: bool = True  # False: no pixel of the cut is fully covered; its pixels of coverage >= 0.5 were read


def placement_matrix(placement: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """The 2x3 ``cv2.warpAffine`` matrix (pixel *indices*, centres at integers) for a placement.

    A 2x3 array is taken as such a matrix and only validated. A ``(scale, offset_x,
    offset_y)`` triple is read in the ``imaging.types`` convention, where coordinates
    start at the top-left *corner* of the top-left pixel, so pixel centres sit at
    ``i + 0.5``: index ``i`` maps to ``scale * i + offset + (scale - 1) / 2``.

    >>> placement_matrix((2.0, 10.0, 0.0)).tolist()
    [[2.0, 0.0, 10.5], [0.0, 2.0, 0.5]]
    """
    arr = np.asarray(placement, dtype=np.float64)
    if arr.shape == (3,):
        check_finite("placement", arr)
        scale, ox, oy = (float(v) for v in arr)
        if scale <= 0:
            raise ValueError(f"placement scale must be > 0, got {scale}")
        c = 0.5 * (scale - 1.0)
        arr = np.array([[scale, 0.0, ox + c], [0.0, scale, oy + c]])
    return check_affine("placement", arr)


def _fit(lo: int, hi: int, limit: int, scale: float) -> tuple[int, int]:
    """Grow (or, at the image edge, trim) ``[lo, hi)`` to a multiple of the integer
    reduction step ``resize_to`` takes for ``scale``, so it can use its fast path."""
    k = int(1.0 / scale) if scale < 0.5 else 1
    extra = (-(hi - lo)) % k
    if extra == 0:
        return lo, hi
    grow_hi = min(extra, limit - hi)
    hi += grow_hi
    grow_lo = min(extra - grow_hi, lo)
    lo -= grow_lo
    rest = (hi - lo) % k
    return lo, hi - rest


def _align_to_source(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    placement: np.ndarray,
    max_side: int,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Bring source and output onto one working grid around the product.

    Returns ``(src_rgb, src_mask, out_rgb, out_alpha, valid, f)``: uint8/float32 arrays
    on the working grid (source crop scaled by ``f``), ``valid`` marks pixels whose
    output sample lies inside the canvas. Inputs must already be validated.
    """
    m3 = as_affine3(placement)
    s = math.sqrt(abs(np.linalg.det(placement[:, :2])))
    x0, y0, x1, y1 = box or bbox(source_mask)
    f = min(0.5 * min(1.0, s), max_side / max(x1 - x0, y1 - y0))
    margin = int(math.ceil(4.0 / f))
    h, w = source_mask.shape
    x0, x1 = _fit(max(0, x0 - margin), min(w, x1 + margin), w, f)
    y0, y1 = _fit(max(0, y0 - margin), min(h, y1 + margin), h, f)
    src = resize_to(source_rgb[y0:y1, x0:x1], f)
    msk = resize_to(source_mask[y0:y1, x0:x1], f)
    wh, ww = msk.shape
    r_f = resize_matrix(ww / (x1 - x0), wh / (y1 - y0))

    # Canvas crop: the image of the source crop under the placement (exact for an
    # integer shift, so identical images give identical working grids).
    corners = m3 @ np.array([[x0, x1, x0, x1], [y0, y0, y1, y1], [1, 1, 1, 1]], dtype=np.float64)
    ch, cw = output_alpha.shape
    cx0 = int(np.clip(math.floor(corners[0].min() + 1e-6), 0, cw - 1))
    cy0 = int(np.clip(math.floor(corners[1].min() + 1e-6), 0, ch - 1))
    cx1 = int(np.clip(math.ceil(corners[0].max() - 1e-6), cx0 + 1, cw))
    cy1 = int(np.clip(math.ceil(corners[1].max() - 1e-6), cy0 + 1, ch))
    g = min(1.0, f / s)
    cx0, cx1 = _fit(cx0, cx1, cw, g)
    cy0, cy1 = _fit(cy0, cy1, ch, g)
    out = resize_to(output_rgb[cy0:cy1, cx0:cx1], g)
    alp = resize_to(output_alpha[cy0:cy1, cx0:cx1], g)
    r_g = resize_matrix(alp.shape[1] / (cx1 - cx0), alp.shape[0] / (cy1 - cy0))
    work_to_out = r_g @ translate(-cx0, -cy0) @ m3 @ translate(x0, y0) @ np.linalg.inv(r_f)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out_w = cv2.warpAffine(out, work_to_out[:2], (ww, wh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alp_w = cv2.warpAffine(alp, work_to_out[:2], (ww, wh), flags=flags, borderValue=0.0)
    # A sample is valid when it maps inside the canvas crop (which spans the product).
    ones = np.ones(alp.shape, np.float32)
    valid = cv2.warpAffine(ones, work_to_out[:2], (ww, wh), flags=flags, borderValue=0.0) >= 0.999
    return src, msk, out_w, alp_w, valid, f


def _local_change(
    src: np.ndarray, out: np.ndarray, interior: np.ndarray, threshold: float
) -> tuple[np.ndarray | None, float]:
    """dE00 on a grid ``LOCAL_GRID`` working px coarser (area-averaged, so a resampled
    texture's pixel-by-pixel differences average out while a repainted patch stays), and the
    share of the interior in regions of at least 3x3 such px above ``threshold``."""
    h, w = interior.shape
    size = (max(1, w // LOCAL_GRID), max(1, h // LOCAL_GRID))
    inner = cv2.resize(interior.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    if inner.sum() < 64:
        return None, 0.0
    a, b = (cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in (src, out))
    de = delta_e_2000(srgb_to_lab(a[inner]), srgb_to_lab(b[inner]))
    above = np.zeros(inner.shape, np.uint8)
    above[inner] = de > threshold
    above = cv2.morphologyEx(above, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return de, float(above.sum() / inner.sum())


def _sharpness_ratio(
    source_rgb, source_mask, output_rgb, placement, min_texture_std: float, window: int = SHARP_WINDOW, box=None
) -> float | None:
    """LoG variance of output over source on a grid ``SHARP_COARSER`` times coarser than
    the finer of the two resolutions the product has (the source's when the canvas
    enlarges it, the canvas's when it shrinks it), in a ``window`` px square around the
    product's centre: blur a person sees at either scale, at a fixed cost. None when the
    product there is too flat to tell."""
    s = math.sqrt(abs(np.linalg.det(placement[:, :2])))
    g = min(1.0, s)  # finer grid px per source px
    x0, y0, x1, y1 = box or bbox(source_mask)
    half = 0.5 * window * SHARP_COARSER / g  # source px
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    h, w = source_mask.shape
    wx0, wy0 = int(max(0, cx - half)), int(max(0, cy - half))
    wx1, wy1 = int(min(w, cx + half)), int(min(h, cy + half))
    fine = (max(1, round((wx1 - wx0) * g)), max(1, round((wy1 - wy0) * g)))
    grid_to_canvas = (
        as_affine3(placement)
        @ translate(wx0, wy0)
        @ np.linalg.inv(resize_matrix(fine[0] / (wx1 - wx0), fine[1] / (wy1 - wy0)))
    )
    out = cv2.warpAffine(
        output_rgb,
        grid_to_canvas[:2],
        fine,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    size = (max(1, round(fine[0] / SHARP_COARSER)), max(1, round(fine[1] / SHARP_COARSER)))
    # Both sides take the same last step (area-averaged down from the finer grid), so
    # identical pixels give identical grids.
    src, msk = (
        cv2.resize(cv2.resize(a, fine, interpolation=cv2.INTER_AREA), size, interpolation=cv2.INTER_AREA)
        for a in (source_rgb[wy0:wy1, wx0:wx1], source_mask[wy0:wy1, wx0:wx1])
    )
    out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
    region = cv2.erode((msk >= 0.98).astype(np.uint8), disk(6)).astype(bool)
    g_src = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if region.sum() < 64 or float(g_src[region].std()) < min_texture_std:
        return None
    v_src = _log_variance(g_src, region)
    g_out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return _log_variance(g_out, region) / v_src if v_src > 0 else None


def _log_variance(gray: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of Gaussian (sigma 1 px): the Gaussian keeps pixel noise
    and resampling aliasing, which differ between the two sides, out of the ratio."""
    lap = cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 1.0), cv2.CV_32F, ksize=1)
    return float(lap[region].var())


def product_colour_fidelity(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    placement: np.ndarray,
    *,
    pixel_threshold: float,
    erode_px: int,
    max_side: int,
    min_texture_std: float,
    max_pixels: int = 50_000,
    validate: bool = True,
    source_box: tuple[int, int, int, int] | None = None,
) -> ColourFidelity:
    """CIEDE2000 between source product pixels and the output pixels they were placed at.

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB; ``source_mask`` (H, W) float in [0, 1];
    ``output_rgb`` (h, w, 3) uint8 sRGB canvas; ``output_alpha`` (h, w) float in [0, 1];
    ``placement`` source -> canvas, either a 2x3 matrix as passed to ``cv2.warpAffine``
    or ``(scale, offset_x, offset_y)`` in the pixel-corner convention of
    ``imaging.types`` (see ``placement_matrix``). Colour space: sRGB (D65)
    -> CIE Lab; difference: CIEDE2000 (CIE 142-2001, Sharma et al. 2005).
    ``pixel_threshold``: dE00 above which a pixel counts in ``share_above``;
    ``erode_px``: interior erosion on the working grid; ``max_side``: cap on the working
    grid across the product; ``min_texture_std``: grey-level std below which the
    interior is too flat for ``sharpness_ratio`` (reported as None). ``sharpness_ratio``
    compares the variance of the Laplacian of Gaussian (sigma 1 px) of output and source
    at the finer of the two resolutions, in a ``SHARP_WINDOW`` square around the
    product's centre (not the working grid: a person sees blur at full size); it needs
    product detail there (a smooth product is None, not "blurred").
    ``max_pixels``:
    the dE statistics use an evenly strided subset of at most this many interior
    pixels (the mean and percentiles of 50k samples are stable to ~1 %).
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence);
    ``source_box``: ``bbox(source_mask)`` when the caller has it already.

    >>> src = np.full((40, 40, 3), 30, np.uint8); src[10:30, 10:30] = (200, 40, 40)
    >>> mask = np.zeros((40, 40), np.float32); mask[10:30, 10:30] = 1.0
    >>> canvas = np.full((80, 80, 3), 255, np.uint8); canvas[20:60, 20:60] = (200, 40, 40)
    >>> alpha = np.zeros((80, 80), np.float32); alpha[20:60, 20:60] = 1.0
    >>> r = product_colour_fidelity(src, mask, canvas, alpha, (2.0, 0.0, 0.0), pixel_threshold=5.0,
    ...                             erode_px=3, max_side=512, min_texture_std=2.0)
    >>> (r.delta_e_mean, r.share_above, r.placement_iou, r.sharpness_ratio)
    (0.0, 0.0, 1.0, None)
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate)
    placement = placement_matrix(placement)
    if erode_px < 0 or max_side < 8 or pixel_threshold <= 0:
        raise ValueError("erode_px must be >= 0, max_side >= 8 and pixel_threshold > 0")

    src, msk, out, alp, valid, f = _align_to_source(
        source_rgb, source_mask, output_rgb, output_alpha, placement, max_side, source_box
    )
    full = (msk >= 0.98).astype(np.uint8)
    opaque = bool((full.astype(bool) & valid).any())
    if not opaque:  # a soft cut, fully covered nowhere (u2netp's faint blob off the product): its covered half
        full = (msk >= 0.5).astype(np.uint8)
    interior = cv2.erode(full, disk(erode_px)).astype(bool) & valid
    eroded = bool(interior.any())
    if not eroded:
        interior = full.astype(bool) & valid
    if not interior.any():
        raise ValueError("no interior product pixel maps inside the output canvas: check the placement")

    ys, xs = np.nonzero(interior)
    step = max(1, int(math.ceil(ys.size / max_pixels)))
    ys, xs = ys[::step], xs[::step]
    lab_src = srgb_to_lab(src[ys, xs])
    lab_out = srgb_to_lab(out[ys, xs])
    de = delta_e_2000(lab_src, lab_out)
    de_means = float(delta_e_2000(lab_src.mean(axis=0), lab_out.mean(axis=0)))
    de_local, share = _local_change(src, out, interior, pixel_threshold)
    if de_local is None:  # too small a product for a coarser grid
        de_local, share = de, float((de > pixel_threshold).mean())

    sharpness = _sharpness_ratio(source_rgb, source_mask, output_rgb, placement, min_texture_std, box=source_box)

    a = (msk >= 0.5) & valid
    b = (alp >= 0.5) & valid
    union = int((a | b).sum())
    iou = float((a & b).sum()) / union if union else 0.0
    return ColourFidelity(
        delta_e_mean=float(de.mean()),
        delta_e_p95=float(np.percentile(de_local, 95)),
        share_above=share,
        delta_e_of_means=de_means,
        sharpness_ratio=sharpness,
        placement_iou=iou,
        n_pixels=int(interior.sum()),
        working_scale=float(f),
        eroded=eroded,
        opaque=opaque,
    )
