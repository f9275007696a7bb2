"""Whether the cut lies inside another object's outline: a label cut instead of its box.

A segmenter can take the salient label of a box and leave the box (a black box on dark
seamless, a white one on pale sky). The box's surface round the label then has the
backdrop's colours within any tolerance a shadow needs, so ``quality/surround.py`` reads the
cut's surround as backdrop and passes it (u2netp on bench/qc_calibration.py: seed 7 box-02
and seed 13 box-10, IoU 0.25, exported with gate 2.5.8). What gives such a cut away is an
edge: walking out from a right cut one meets the backdrop and then the photo's border; from
a label one first crosses the box's outline, on every side.

So the measure is the share of the rays leaving the cut's outline (along its outward normal)
that meet a long edge of the photo before its border. A ray that comes back to the product
first (a bay between a mug's body and its handle) does not count either way. An edge is a
step well above the backdrop's own (``EDGE_K`` times the border strip's median gradient, so
gravel's grain is not one), long (a contour at least half the product's size across, not a
speck) and clear of the product's own rim. Where many of the border strip's pixels are such
steps (brick's mortar, written paper, a defocused room: ``BUSY``) every ray would meet one, so
the measure is None there, as it is when the photo's border is mostly product or when few
rays leave the product. Where a few long edges cross the strip (a cloud band's edge, two dark
marks at the photo's foot: more than ``BUSY``, up to ``BUSY_HI``) some rays meet one by chance,
so only a cut walled in on nearly every side (``SURE``) is measured there: a box's label.

On bench/qc_calibration.py's seeds 0, 7, 13, 21 and 34 (445 products, 2026-12-05), where it
measures (seamless, sky, and the calmer crops of a defocused photo and of the textures: 297
true cuts) the true cuts read at most 0.41 (a headphone's arch over a defocused photo; a white
shoe's shadow edge 0.39) and u2netp's 115 good cuts at most 0.39; its cuts of a label (box-10
1.0, box-02 0.67, both exported by gate 2.5.8), of a frame's middle (frame-23 1.0) and of a
lamp's base alone (lamp-04 1.0, lamp-07 0.72) read more. ``cut_enclosed`` warns from 0.5 and
fails from 0.6.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality.surround import BAND, BAND_GAP, MIN_BORDER, border_strip, reduced_cut

__all__ = ["enclosed_share"]

SIGMA = 1.5  # px of blur on the working grid before the gradient: sensor grain is not an edge
EDGE_MIN = 1.0  # least Lab gradient (8-bit units per px) that is an edge
EDGE_K = 4.0  # ... and at least this many times the border strip's median gradient
# A border strip with more edge pixels than this share is a textured or busy backdrop. At 0.02
# a defocused photo's long edges (the astronaut backdrop) made a true lamp's cut read 0.62
BUSY = 0.01
# ...and up to this share a few long edges cross it (a cloud band, dark marks at the photo's foot), where
# only a cut walled in on SURE of its ways out is measured. bench/qc_calibration.py's seeds 0, 7, 13, 21, 34,
# 55 and 89 (630 products, 2026-12-05): between BUSY and BUSY_HI the true cuts (91) and u2netp's good cuts
# (54) read at most 0.59; no true or good cut reads 0.6 or more below a busy share of 0.10; u2netp's cut of
# seed 89 box-38's label (a white box on pale sky with a cloud band and two marks, busy 0.024) reads 0.99
BUSY_HI, SURE = 0.05, 0.9
LONG = 0.5  # an edge's extent (bounding-box diagonal) at least this share of the product's size
MIN_RAYS = 0.2  # least share of the outline's rays that leave the product and end somewhere
MAX_RAYS = 512  # rays cast at most, spread evenly along the outline


def enclosed_share(source_rgb: np.ndarray, source_mask: np.ndarray) -> float | None:
    """Share of the rays out of the cut that meet a long edge before the photo's border (see
    the module doc). Inputs: (H, W, 3) uint8 sRGB and (H, W) float in [0, 1], already checked.

    >>> rgb = np.full((240, 240, 3), 120, np.uint8); mask = np.zeros((240, 240), np.float32)
    >>> rgb[60:180, 50:190] = 20; mask[60:180, 50:190] = 1.0  # a black box, cut right
    >>> round(enclosed_share(rgb, mask), 2)
    0.0
    >>> label = np.zeros_like(mask); label[100:140, 90:150] = 1.0  # its label's place only
    >>> round(enclosed_share(rgb, label), 2)
    1.0
    """
    reduced = reduced_cut(source_rgb, source_mask)
    if reduced is None:
        return None
    rgb, product, side = reduced
    solid = _solid(product)
    clear = max(1, round(BAND_GAP * side)) + max(3, round(BAND * side))  # the rim and band round the cut
    strip = border_strip(product.shape)
    away = cv2.distanceTransform(1 - solid, cv2.DIST_L2, 5)  # px from the product
    border = strip & (away > clear)
    if border.sum() < MIN_BORDER * strip.sum():
        return None
    grad = _gradient(rgb)
    level = max(EDGE_MIN, EDGE_K * float(np.median(grad[border])))
    busy = float((grad[border] >= level).mean())
    if busy > BUSY_HI:
        return None  # a textured backdrop: edges everywhere
    edges = _long_edges((grad >= level) & (away > clear) & ~strip, LONG * side)
    share = _rays(solid, away, edges, strip, clear)
    if busy > BUSY and (share is None or share < SURE):
        return None  # a few long edges cross the border: some rays meet one by chance
    return share


def _solid(product: np.ndarray) -> np.ndarray:
    """The cut with its holes filled: a hole's backdrop lies inside the product, not round it."""
    pad = np.pad(product, 1)
    cv2.floodFill(pad, None, (0, 0), 1)
    return ((product > 0) | (pad[1:-1, 1:-1] == 0)).astype(np.uint8)


def _gradient(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32), (0, 0), SIGMA)
    sq = np.zeros(lab.shape[:2], np.float32)
    for c in range(3):
        sq += (cv2.Sobel(lab[..., c], cv2.CV_32F, 1, 0, ksize=3) / 8) ** 2
        sq += (cv2.Sobel(lab[..., c], cv2.CV_32F, 0, 1, ksize=3) / 8) ** 2
    return np.sqrt(sq)


def _long_edges(edge: np.ndarray, extent: float) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(edge.astype(np.uint8), connectivity=8)
    long = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= extent
    long[0] = False
    return long[labels]


def _rays(solid, away, edges, strip, clear) -> float | None:
    """Share of the outward rays from ``solid``'s outline that reach ``edges`` before ``strip``,
    of those that reach either before coming back to the product."""
    contours, _ = cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c.reshape(-1, 2) for c in contours])  # (x, y) in order along the outline
    pts = pts[:: max(1, len(pts) // MAX_RAYS)]  # a long outline (a stool's legs) is sampled evenly
    xs, ys = pts[:, 0], pts[:, 1]
    gy, gx = np.gradient(cv2.GaussianBlur(away, (0, 0), 2.0))  # the outward normal
    nx, ny = gx[ys, xs], gy[ys, xs]
    norm = np.hypot(nx, ny)
    ok = norm > 1e-3
    if not ok.any():
        return None
    ys, xs, nx, ny = ys[ok], xs[ok], nx[ok] / norm[ok], ny[ok] / norm[ok]
    hh, ww = solid.shape
    t = np.arange(clear, max(hh, ww), dtype=np.float32)
    py = np.rint(ys[:, None] + ny[:, None] * t).astype(np.int32)
    px = np.rint(xs[:, None] + nx[:, None] * t).astype(np.int32)
    off = (py < 0) | (py >= hh) | (px < 0) | (px >= ww)
    py, px = np.clip(py, 0, hh - 1), np.clip(px, 0, ww - 1)
    out = off | strip[py, px]
    hit = edges[py, px] & ~out
    back = ~out & ((solid[py, px] > 0) | ((away[py, px] <= clear / 2) & (t > 2 * clear)))
    first = [np.where(a.any(axis=1), a.argmax(axis=1), t.size) for a in (hit, out, back)]
    ends = np.minimum(first[0], first[1])
    valid = (ends < t.size) & (first[2] > ends)
    if valid.sum() < MIN_RAYS * len(valid):
        return None
    return float(((first[0] < first[1]) & valid).sum() / valid.sum())
