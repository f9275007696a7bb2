"""The source photo's own background, which a poor cut leaves on the product's edge (a fringe).

Two estimates, both from the photo outside its mask (the encoded sRGB values: compositors
blend in them):

* ``estimate_old_background``: one colour, the median of a ring just outside the product.
  Enough on a seamless backdrop; only a guide on a textured one.
* ``local_old_backdrop``: the backdrop's colour *near each place* of the outline. A fringe is
  the photo's own edge blend, ``alpha x product + (1 - alpha) x what lay behind it there``,
  so on wood, marble or fabric the colour that leaks in is the local one, not the median.
  It is the mean of the backdrop pixels (mask <= 0.02, and ``EDGE_GAP_PX`` clear of the
  cut: the photo's own edge blur mixes product into those) in a ``(2r + 1)^2`` source-pixel
  window round the point (normalised box filtering: product pixels neither count nor
  dilute), read for canvas points through the placement; where the window holds too
  little backdrop (a product that fills the photo there) it falls back to the median.

Reference: constructed cases in tests/quality/test_old_backdrop.py; the fringe check in
quality/edges.py is what reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import check_pair, disk, resize_to

__all__ = ["LocalBackdrop", "estimate_old_background", "local_old_backdrop"]

LOCAL_RADIUS_PX = 8  # source px: the neighbourhood whose backdrop an edge pixel blends with
EDGE_GAP_PX = 2  # source px beside the cut left out: the photo's edge blend, not its backdrop
MIN_BACKDROP_SHARE = 0.15  # of the window: less is no local estimate (the median stands in)
MAX_FIELD_SIDE = 512  # the product's box on the photo is reduced to at most this (px): the colour is smooth


def estimate_old_background(
    source_rgb: np.ndarray, source_mask: np.ndarray, ring_px: tuple[int, int] = (3, 15), validate: bool = True
) -> tuple[float, float, float] | None:
    """Median sRGB colour of the source photo's background just outside the product.

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB, ``source_mask`` (H, W) float in [0, 1];
    the ring spans ``ring_px`` pixels outside the mask, measured on the source reduced to
    at most 512 px; colour space: the encoded sRGB values (the compositor blends in
    them). Reference: constructed cases in tests/quality/test_edges.py. Returns None
    when no background pixel is in the ring (the product
    fills the photo). A cluttered backdrop gives its median, which is only a guide.
    ``validate=False`` skips the input checks for arrays already checked (QcEvidence).

    >>> img = np.zeros((64, 64, 3), np.uint8); img[...] = (0, 200, 0); img[20:44, 20:44] = 200
    >>> m = np.zeros((64, 64), np.float32); m[20:44, 20:44] = 1
    >>> estimate_old_background(img, m)
    (0.0, 200.0, 0.0)
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    f = min(1.0, 512.0 / max(source_mask.shape))
    rgb, mask = resize_to(source_rgb, f, exact=False), resize_to(source_mask, f, exact=False)
    fg = (mask >= 0.02).astype(np.uint8)
    r0, r1 = (max(1, int(round(r * f))) for r in ring_px)
    ring = cv2.dilate(fg, disk(r1)).astype(bool) & ~cv2.dilate(fg, disk(r0)).astype(bool)
    if not ring.any():
        return None
    pixels = rgb[ring]
    return tuple(_median_u8(pixels[:, c]) for c in range(3))


def _median_u8(values: np.ndarray) -> float:
    """``np.median`` of uint8 values from their histogram (no sort)."""
    n = values.size
    cum = np.cumsum(np.bincount(values, minlength=256))
    lo, hi = np.searchsorted(cum, [(n - 1) // 2 + 1, n // 2 + 1])
    return 0.5 * (float(lo) + float(hi))


@dataclass(frozen=True)
class LocalBackdrop:
    """The photo's backdrop colour round the outline (``local_old_backdrop``); ``at`` reads it."""

    median: tuple[float, float, float]  # the whole ring's median: where no local estimate is
    sums: np.ndarray  # (h, w, 3) float32 window sums of backdrop colour on the reduced field
    counts: np.ndarray  # (h, w) float32 window counts of backdrop pixels
    to_field: np.ndarray  # 2x3: canvas px -> field px
    min_count: float

    def at(self, canvas_xy: np.ndarray) -> np.ndarray:
        """(N, 3) float64 sRGB of the old backdrop near canvas points ``canvas_xy`` (N, 2)."""
        p = np.asarray(canvas_xy, np.float64) @ self.to_field[:, :2].T + self.to_field[:, 2]
        mx, my = p[:, :1].astype(np.float32), p[:, 1:].astype(np.float32)
        s = cv2.remap(self.sums, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0].astype(np.float64)
        n = cv2.remap(self.counts, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0].astype(np.float64)
        local = s / np.maximum(n, 1e-9)[:, None]
        return np.where((n >= self.min_count)[:, None], local, np.asarray(self.median, np.float64)[None, :])


def local_old_backdrop(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    to_canvas: np.ndarray,
    radius_px: int = LOCAL_RADIUS_PX,
    validate: bool = True,
) -> LocalBackdrop | None:
    """The source's backdrop colour near each place of the product, readable at canvas points.

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB, ``source_mask`` (H, W) float in [0, 1],
    ``to_canvas`` the 2x3 placement (source px -> canvas px). ``radius_px``: half the
    window in source px (on sources whose product box exceeds ``MAX_FIELD_SIDE`` px the
    field is reduced and the window with it, never below 2 px). Returns None when the
    photo shows no backdrop next to the product (``estimate_old_background`` is None).
    Only the product's box plus the window is filtered: O(box area), once per SKU.

    >>> img = np.zeros((64, 64, 3), np.uint8); img[:, :32] = (0, 200, 0); img[:, 32:] = (0, 0, 200)
    >>> img[20:44, 20:44] = 255
    >>> m = np.zeros((64, 64), np.float32); m[20:44, 20:44] = 1
    >>> lb = local_old_backdrop(img, m, np.array([[2.0, 0, 0], [0, 2.0, 0]]))  # canvas = 2x the photo
    >>> lb.at(np.array([[2 * 19, 2 * 30], [2 * 44, 2 * 30]])).round().tolist()  # left and right edges
    [[0.0, 200.0, 0.0], [0.0, 0.0, 200.0]]
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    median = estimate_old_background(source_rgb, source_mask, validate=False)
    if median is None:
        return None
    h, w = source_mask.shape
    bx, by, bw, bh = cv2.boundingRect(cv2.compare(source_mask, 0.02, cv2.CMP_GT))  # the mask, not its points
    m = radius_px + 2
    x0, y0, x1, y1 = max(0, bx - m), max(0, by - m), min(w, bx + bw + m), min(h, by + bh + m)
    f = min(1.0, MAX_FIELD_SIDE / max(x1 - x0, y1 - y0))
    rgb = resize_to(source_rgb[y0:y1, x0:x1], f, exact=False)
    mask = resize_to(source_mask[y0:y1, x0:x1], f, exact=False)
    fy, fx = rgb.shape[0] / (y1 - y0), rgb.shape[1] / (x1 - x0)
    r = max(2, int(round(radius_px * min(fx, fy))))
    k = (2 * r + 1, 2 * r + 1)
    # backdrop: clear of the mask by EDGE_GAP_PX too (the photo's own edge blur mixes the
    # product into the pixels right beside its cut)
    gap = max(1, int(round(EDGE_GAP_PX * min(fx, fy))))
    near = cv2.dilate(cv2.compare(mask, 0.02, cv2.CMP_GT), disk(gap))
    bg = cv2.compare(near, 0, cv2.CMP_EQ).astype(np.float32) / 255.0
    sums = cv2.boxFilter(rgb.astype(np.float32) * bg[..., None], -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(bg, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    # canvas -> source (inverse placement), then source -> field: crop offset and the
    # reduction, pixel centres kept (x_field + 0.5 = f (x_src - x0 + 0.5))
    inv = cv2.invertAffineTransform(np.asarray(to_canvas, np.float64))
    scale = np.array([[fx, 0.0], [0.0, fy]])
    lin = scale @ inv[:, :2]
    off = scale @ (inv[:, 2] - (x0, y0) + 0.5) - 0.5
    return LocalBackdrop(median, sums, counts, np.hstack([lin, off[:, None]]), MIN_BACKDROP_SHARE * k[0] * k[1])
