"""Is the product cut in two? A thin part (a lamp's stem, a chair's leg) cut through by the
mask leaves the product in pieces whose gap the photo shows filled with the product.

Measured on the *source* grid, because a stem a few source pixels wide vanishes on any
coarser grid (quality/cut.py works at 512 px). For every piece of the mask apart from the
largest (pieces under ``min_piece`` of the product are fragments, quality/cut.py's
business): the shortest segment from it to the largest piece, and along that segment,
1 px apart, whether the photo shows the product or the backdrop there. A step shows the
product when some pixel within ``reach`` px across the segment is nearer (CIELab dE76)
to the product's colour at the two ends than half their contrast with the backdrop
beside the gap, and farther from that backdrop than 95 % of the backdrop's own pixels
are (gravel's dark gaps next to a black product are backdrop). Only thin parts count:
both pieces, near the gap, are at most half the gap thick (broad parts close together, a
headphone's band and cup, are separate parts of the design). The figure is the share of
the gap's steps that show the product, for the most bridged gap: a cut stem reads ~1, a
pair of earrings with backdrop between them ~0. A
piece whose end does not look like the main piece's (backdrop stuck on as a fragment)
is not the product parted.

Not measurable (0.0) when the product's ends and the backdrop beside the gap differ by
less than ``min_contrast`` dE76: colour cannot tell them apart. Reference: constructed
cases in tests/quality/test_split.py; threshold from bench/qc_calibration.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality._validate import bbox, check_pair

__all__ = ["split_share"]


def split_share(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    *,
    min_piece: float = 0.005,
    max_gap: float = 0.3,
    reach: int = 3,
    min_contrast: float = 10.0,
    validate: bool = True,
    box: tuple[int, int, int, int] | None = None,
) -> float:
    """Share of the most bridged gap between mask pieces that the photo fills with product.

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB; ``source_mask`` (H, W) float in [0, 1].
    ``min_piece``: smallest piece considered, share of the product; ``max_gap``: longest
    gap considered, share of the product's longest side (farther pieces are separate
    items); ``reach``: px across the segment searched per step; ``box``: the mask's
    ``bbox`` when the caller has it (the work stays inside it, plus room for the backdrop
    beside a gap).

    >>> img = np.full((120, 60, 3), 230, np.uint8); img[10:110, 28:32] = (40, 40, 40)
    >>> img[10:30, 10:50] = img[90:110, 10:50] = (40, 40, 40)  # a shade, a stem, a base
    >>> whole = np.zeros((120, 60), np.float32); whole[10:30, 10:50] = whole[90:110, 10:50] = 1
    >>> whole[30:90, 28:32] = 1; cut = whole.copy(); cut[55:65] = 0  # the stem cut through
    >>> round(split_share(img, cut), 2), split_share(img, whole)
    (1.0, 0.0)
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    x0, y0, x1, y1 = box if box is not None else bbox(source_mask)
    binary = cv2.compare(source_mask[y0:y1, x0:x1], 0.5, cv2.CMP_GE)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 2:
        return 0.0
    h, w = source_mask.shape
    pad = 4 * reach + 16  # the backdrop beside a gap may lie just outside the box
    px0, py0 = max(0, x0 - pad), max(0, y0 - pad)
    sub = np.s_[py0 : min(h, y1 + pad), px0 : min(w, x1 + pad)]
    source_rgb, source_mask = source_rgb[sub], source_mask[sub]
    labels = np.pad(
        labels,
        (
            (y0 - py0, source_mask.shape[0] - (y0 - py0) - labels.shape[0]),
            (x0 - px0, source_mask.shape[1] - (x0 - px0) - labels.shape[1]),
        ),
    )
    areas = stats[1:, cv2.CC_STAT_AREA]
    total = float(areas.sum())
    main = 1 + int(np.argmax(areas))
    size = float(max(x1 - x0, y1 - y0))
    dist, nearest = _nearest(labels == main)
    best = 0.0
    for k in range(1, n):
        if k == main or stats[k, cv2.CC_STAT_AREA] < min_piece * total:
            continue
        ys, xs = np.nonzero(labels == k)
        i = int(np.argmin(dist[ys, xs]))
        gap = float(dist[ys[i], xs[i]])
        if gap < 2 or gap > max_gap * size:
            continue
        end_b = np.array([xs[i], ys[i]], np.float64)
        end_a = np.array(nearest[ys[i], xs[i]], np.float64)
        if max(_half_width(labels == main, end_a, gap), _half_width(labels == k, end_b, gap)) > 0.5 * gap:
            continue  # broad pieces close together (a headphone's band and cup): not a thin part cut
        best = max(best, _bridged(source_rgb, source_mask, end_a, end_b, reach, min_contrast))
    return best


def _nearest(piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to ``piece`` and, per pixel, the (x, y) of its nearest ``piece`` pixel."""
    dist, lab = cv2.distanceTransformWithLabels(
        (~piece).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(piece)
    # labels number the zero pixels in row-major scan order, starting at 1
    order = np.zeros((lab.max() + 1, 2), np.int64)
    order[1 : len(xs) + 1, 0], order[1 : len(xs) + 1, 1] = xs, ys
    return dist, order[lab]


def _half_width(piece: np.ndarray, end: np.ndarray, radius: float) -> float:
    """The piece's largest inscribed radius within ``radius`` px of ``end`` (x, y): how
    thick it is where the gap begins."""
    r = int(np.ceil(radius)) + 1
    x, y = int(end[0]), int(end[1])
    h, w = piece.shape
    window = np.pad(piece[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1], 1).astype(np.uint8)
    return float(cv2.distanceTransform(window, cv2.DIST_L2, 5).max())


def _lab_at(lab: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = lab.shape[:2]
    xi = np.clip(np.rint(pts[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.rint(pts[:, 1]).astype(int), 0, h - 1)
    return lab[yi, xi]


def _bridged(rgb, mask, end_a, end_b, reach, min_contrast) -> float:
    """Share of the steps from ``end_a`` to ``end_b`` (x, y) where the photo shows product."""
    d = end_b - end_a
    length = float(np.hypot(*d))
    u = d / length
    nrm = np.array([-u[1], u[0]])
    pad = int(length + 4 * reach + 8)
    x0, y0 = int(max(0, min(end_a[0], end_b[0]) - pad)), int(max(0, min(end_a[1], end_b[1]) - pad))
    x1 = int(min(rgb.shape[1], max(end_a[0], end_b[0]) + pad + 1))
    y1 = int(min(rgb.shape[0], max(end_a[1], end_b[1]) + pad + 1))
    lab = cv2.cvtColor(rgb[y0:y1, x0:x1].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    m = mask[y0:y1, x0:x1]
    o = np.array([x0, y0], np.float64)
    a, b = end_a - o, end_b - o
    # the product's colour just inside each end; the backdrop's beside the gap, and how far
    # its own pixels stray from their median (a textured backdrop's dark gaps and bright
    # stones are backdrop, however product-like)
    end_lab = _lab_at(lab, np.array([a - u * t for t in (1, 2, 3)] + [b + u * t for t in (1, 2, 3)]))
    product = np.median(end_lab, axis=0)
    far = np.arange(2 * reach + 2, 4 * reach + 12, dtype=np.float64)
    along = a[None, :] + np.linspace(0.0, 1.0, 5)[:, None] * (b - a)[None, :]
    side = along[:, None, None, :] + np.array([1.0, -1.0])[None, :, None, None] * far[None, None, :, None] * nrm
    side = side.reshape(-1, 2)
    side_lab = _lab_at(lab, side)
    clear = _lab_at(m[..., None], side)[:, 0] < 0.02
    if clear.sum() < 16:
        return 0.0
    backdrop = np.median(side_lab[clear], axis=0)
    spread = float(np.percentile(np.linalg.norm(side_lab[clear] - backdrop, axis=1), 95))
    contrast = float(np.linalg.norm(product - backdrop))
    if contrast < min_contrast or spread >= contrast:
        return 0.0
    if np.linalg.norm(np.median(end_lab[:3], axis=0) - np.median(end_lab[3:], axis=0)) >= 0.5 * contrast:
        return 0.0  # the two ends differ: a piece of something else (a fragment), not the product parted
    steps = np.arange(1.0, length)
    if steps.size == 0:
        return 0.0
    across = np.arange(-reach, reach + 1, dtype=np.float64)
    pts = a[None, None, :] + steps[:, None, None] * u + across[None, :, None] * nrm
    px = _lab_at(lab, pts.reshape(-1, 2)).reshape(len(steps), len(across), 3)
    product_like = (np.linalg.norm(px - product, axis=2) < 0.5 * contrast) & (
        np.linalg.norm(px - backdrop, axis=2) > spread
    )
    return float(product_like.any(axis=1).mean())
