"""The working grid of quality/cut.py: its colour models (histograms, normalised convolution)
and the small geometry helpers its region tests share (see quality/cut.py's module doc)."""

from __future__ import annotations

import cv2
import numpy as np

_REACH = 2  # px of the outline band (mixed pixels) that belongs to neither side
_BINS, _SHIFT = 32, 3  # 8 levels a histogram bin, 32^3 bins
_FLOOR = 0.002  # share of a uniform density mixed into each histogram: no colour is impossible
MIN_REGION = 0.002  # smallest region counted, share of the product (candidates from half that)
PIXEL_LLR = 1.0  # evidence a pixel needs to join a candidate region


def _thickness(r8: np.ndarray) -> float:
    """Largest inscribed radius of a binary region, px (its half-width where widest)."""
    return float(cv2.distanceTransform(np.pad(r8, 1), cv2.DIST_L2, 5).max())


def _flat(q: np.ndarray) -> np.ndarray:
    """(..., 3) bin indices 0..31 -> flat index into a 32^3 histogram."""
    return (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]


def _log_density(index: np.ndarray, where: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """log of the smoothed, floored histogram density of ``index[where]`` (per bin)."""
    counts = np.bincount(index[where], None if weight is None else weight[where], minlength=_BINS**3)
    hist = counts.astype(np.float32).reshape(_BINS, _BINS, _BINS)
    for axis in range(3):  # [1 2 1] / 4 along each axis: a colour near a bin edge counts in both
        pad = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in range(3)])  # zeros: an edge bin is no denser
        lo = [slice(None)] * 3
        mid = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], mid[axis], hi[axis] = slice(0, -2), slice(1, -1), slice(2, None)
        hist = 0.25 * pad[tuple(lo)] + 0.5 * pad[tuple(mid)] + 0.25 * pad[tuple(hi)]
    total = max(1e-6, float(hist.sum()))
    return np.log((1.0 - _FLOOR) * hist.ravel() / total + _FLOOR / _BINS**3).astype(np.float32)


def _predict(values: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: weighted local mean of ``values`` (H, W, 3) and the weight
    density. Smooth at this scale, so computed on a grid ``sigma / 3`` coarser."""
    h, w = weight.shape
    k = max(1, int(sigma // 3))
    small = (max(1, w // k), max(1, h // k))
    num = cv2.resize(values * weight[..., None], small, interpolation=cv2.INTER_AREA)
    den = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    num = cv2.GaussianBlur(num, (0, 0), sigma / k)
    den = cv2.GaussianBlur(den, (0, 0), sigma / k)
    num = cv2.resize(num, (w, h), interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(den, (w, h), interpolation=cv2.INTER_LINEAR)
    return num / np.maximum(den, 1e-6)[..., None], den


def _lab_of(rgb: np.ndarray) -> np.ndarray:
    """CIELab of (N, 3) float sRGB pixels."""
    return cv2.cvtColor(rgb.reshape(-1, 1, 3) * (1.0 / 255.0), cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _exterior(product: np.ndarray) -> np.ndarray:
    """Background connected to the crop's border: outside the product's outline, holes excluded."""
    n, labels = cv2.connectedComponents((product == 0).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def _filled(region: np.ndarray) -> np.ndarray:
    """``region`` (bool) with its enclosed holes filled."""
    n, labels = cv2.connectedComponents((np.pad(region, 1) == 0).astype(np.uint8), connectivity=4)
    return (labels != labels[0, 0])[1:-1, 1:-1]


def _hull_area(binary: np.ndarray) -> float:
    points = cv2.findNonZero(binary.astype(np.uint8))
    return 0.0 if points is None else float(cv2.contourArea(cv2.convexHull(points)))


def _delta(lab: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """dE76 between the mean colours of two pixel sets (0 when either is empty)."""
    if not a.any() or not b.any():
        return 0.0
    diff = lab[a].mean(axis=0) - lab[b].mean(axis=0)
    return float(np.sqrt((diff * diff).sum()))


def _gradient_of(lightness: np.ndarray) -> np.ndarray:
    """|grad| of a (H, W) float32 lightness per px (Sobel / 8)."""
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy) * 0.125


def _rounded(part: np.ndarray, frac: float) -> np.ndarray:
    """``part`` (uint8 0/1) opened by a disk of ``frac`` x its inscribed radius (two distance
    transforms: its pieces thinner than that go, its round body stays)."""
    depth = cv2.distanceTransform(part, cv2.DIST_L2, 5)
    r = frac * float(depth.max())
    return ((cv2.distanceTransform((depth < r).astype(np.uint8), cv2.DIST_L2, 5) <= r) & (part > 0)).astype(np.uint8)


def _window(stat: np.ndarray, pad: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A component's bounding box (``connectedComponentsWithStats`` row) grown by ``pad``."""
    x, y, bw, bh = (int(v) for v in stat[:4])
    h, w = shape
    return np.s_[max(0, y - pad) : min(h, y + bh + pad), max(0, x - pad) : min(w, x + bw + pad)]
