"""Is the cut right? Background kept inside the product, parts of it lost, stray fragments,
a product the photo itself cuts off. Measured on the *source* grid, once per SKU.

All four compare the mask with the photo, around the product, on a working grid whose
longest side is at most ``work_side`` px (areas are shares, so the grid only sets the
smallest region seen):

* **backdrop model.** The photo's backdrop is what lies outside the mask. Its colour is
  predicted *at every pixel* near it by normalised convolution of the outside pixels
  (CIELab, Gaussian of ``near_frac`` of the product's size, so gradients and vignetting
  follow), and so is its texture (local RMS of L* less its 2 px Gaussian blur: grain, not
  shading). A pixel's distance to the backdrop is
  ``sqrt(dLab^2 + dTexture^2)`` with the colour smoothed over 1.5 working px. How far true
  backdrop pixels sit from their own prediction (a ring just outside the mask, 97th
  percentile, floor ``min_delta``) is the tolerance: within it a pixel is *backdrop-like*.
* **background inside the product** (a filled hole, gravel stuck to the edge): connected
  backdrop-like regions inside the mask, ``_REACH`` px in from its edge and near enough
  to the backdrop for a hole to show it, that stand apart from the product around them
  (that ring is not backdrop-like and its mean colour is ``contrast`` tolerances away: a
  smooth highlight fades into the product, a hole does not) and have the backdrop's
  texture. Enclosed ones are holes; ones reaching the mask's outline are backdrop stuck
  to the edge (up to a quarter of the product: more is the product itself).
* **stray fragments**: mask components apart from the product, under a tenth of it, that
  are mostly backdrop-like (a pair of shoes keeps both shoes).
* **part of the product missing**: regions outside the mask, next to it, that are not
  backdrop-like and not shadow (a shadow is darker than the backdrop with the same
  chromaticity, keeping at least ``shadow_max_factor`` of its light), and into which the
  product visibly goes on: next to the cut they look like the product just inside it (a
  shadow or a neighbouring object meets the product at a real edge, which the cut
  follows). Components reaching the crop's edge are the scene, not the product.
* **cut off by the photo**: share of the product's outline on the photo's border.

When most of the product is itself backdrop-like (a white box on white paper, a black
bottle on black gravel) colour cannot tell them apart: the inside figures are None (not
measurable) and the reason says so. Reference: constructed cases in
tests/quality/test_cut.py; thresholds from bench/qc_calibration.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_pair, disk

__all__ = ["CutQuality", "cut_quality"]

_REACH = 4  # px the colour smoothing (Gaussian 1.5) and texture window (5x5) reach
MIN_REGION = 0.0025  # smallest region inside the product counted, share of the product
SLIVER = 0.4  # a region whose inscribed circle is under this share of its equal-area circle's is a sliver
STEP = 0.75  # a hole's edge is a step: the difference next to it is most of that farther out
CONVEX_FILL = 0.9  # share of the hull a region adds that it must fill to carry the outline on
LARGE_PART = 0.03  # a region beside the cut this large (share of the product) that continues it is
# a part left out whatever its shape (a mug's handle); of a smaller one only what lies in a bay of the cut counts


@dataclass(frozen=True)
class CutQuality:
    """Shares of the product area (of the canvas-independent source product)."""

    background_inside: float | None  # enclosed backdrop-like regions / product area
    background_attached: float | None  # backdrop-like regions reaching the outline / product area
    fragments: float  # detached backdrop-like mask components / product area
    lost_part: float | None  # non-backdrop regions just outside the mask / product area
    cut_off: float  # share of the product outline lying on the photo's border
    backdrop_like_share: float | None  # share of the product interior that looks like backdrop
    tolerance: float  # the backdrop distance tolerance used (dE76 + texture units)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _resize(a: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """cv2.resize for any channel count (its area filter takes at most 4)."""
    if a.ndim == 2 or a.shape[2] <= 4:
        return cv2.resize(a, size, interpolation=interpolation)
    return np.dstack(
        [
            cv2.resize(np.ascontiguousarray(a[..., i : i + 4]), size, interpolation=interpolation)
            for i in range(0, a.shape[2], 4)
        ]
    )


def _predict(values: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: weighted local mean of ``values`` and the weight density.
    Smooth at this scale, so computed on a grid ``sigma / 4`` coarser and upsampled."""
    w = weight[..., None] if values.ndim == 3 else weight
    num, den = values * w, weight
    k = max(1, int(sigma // 4))
    h, wd = weight.shape
    if k > 1:
        small = (max(1, wd // k), max(1, h // k))
        num = _resize(num, small, cv2.INTER_AREA)
        den = cv2.resize(den, small, interpolation=cv2.INTER_AREA)
    num = cv2.GaussianBlur(num, (0, 0), sigma / k)
    den = cv2.GaussianBlur(den, (0, 0), sigma / k)
    if k > 1:
        num = _resize(num, (wd, h), cv2.INTER_LINEAR)
        den = cv2.resize(den, (wd, h), interpolation=cv2.INTER_LINEAR)
    safe = np.maximum(den, 1e-6)
    return num / (safe[..., None] if values.ndim == 3 else safe), den


def _backdrop(rgb: np.ndarray, seen: np.ndarray, sigma: float, max_factor: float):
    """Per pixel: (Lab, distance to the predicted backdrop, shadow-like, texture std of L*,
    weight of the backdrop seen nearby).

    The backdrop is predicted from the ``seen`` pixels within a few ``sigma`` only: farther
    in, a backdrop's average says nothing about what a hole would show. Shadow-like: the
    predicted backdrop's channels scaled alike (same chromaticity) by a factor in
    [``max_factor``, 1)."""
    lab = _lab(rgb)
    fine = lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 2.0)  # texture, not gradients or shading
    std = np.sqrt(cv2.blur(fine * fine, (5, 5)))
    smooth_rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.5)
    feat = np.dstack([cv2.GaussianBlur(lab, (0, 0), 1.5), std, smooth_rgb])
    pred, weight = _predict(feat, seen.astype(np.float32), sigma)
    diff = feat[..., :4] - pred[..., :4]
    dist = np.sqrt((diff * diff).sum(axis=2))
    ratio = (feat[..., 4:] + 4.0) / (pred[..., 4:] + 4.0)  # +4 levels: noise on dark pixels
    same_hue = ratio.max(axis=2) <= 1.3 * ratio.min(axis=2)
    # ...and the same texture, dimmed alike: a shadow falls on the backdrop's pattern, a
    # flat brown box is not brick in shadow
    light = ratio.mean(axis=2)
    same_texture = np.abs(std - light * pred[..., 3]) <= np.maximum(1.0, 0.5 * light * pred[..., 3])
    shadow = (light < 1.0) & (light >= max_factor) & same_hue & same_texture
    return lab, dist, shadow, std, weight


def cut_quality(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    *,
    work_side: int = 512,
    min_delta: float = 6.0,
    contrast: float = 1.25,
    near_frac: float = 0.12,
    shadow_max_factor: float = 0.25,
    validate: bool = True,
) -> CutQuality:
    """How well ``source_mask`` follows the product in ``source_rgb`` (see the module doc).

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB; ``source_mask`` (H, W) float in [0, 1].
    ``min_delta``: floor of the backdrop tolerance (dE76 + texture, ~3x the noise of a
    plain backdrop); ``contrast``: how many tolerances a region must differ from the product
    across its edge; ``near_frac``: the backdrop model's reach, share of the product's size;
    ``shadow_max_factor``: the darkest a shadow makes the backdrop (share of its
    light left).

    >>> yy, xx = np.mgrid[:200, :200]; rng = np.random.default_rng(0)
    >>> ring = (np.hypot(xx - 100, yy - 100) < 60) & (np.hypot(xx - 100, yy - 100) > 42)
    >>> img = rng.normal(200, 2, (200, 200, 3)).clip(0, 255).astype(np.uint8); img[ring] = (40, 60, 160)
    >>> filled = (np.hypot(xx - 100, yy - 100) < 60).astype(np.float32)
    >>> q = cut_quality(img, filled)
    >>> round(q.background_inside, 2), q.lost_part, cut_quality(img, ring.astype(np.float32)).background_inside
    (0.48, 0.0, 0.0)
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    h, w = source_mask.shape
    x0, y0, x1, y1 = bbox(source_mask)
    m = int(0.5 * max(x1 - x0, y1 - y0)) + 4  # room for a lost part beside the cut
    cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    f = min(1.0, work_side / max(cx1 - cx0, cy1 - cy0))
    size = (max(1, round((cx1 - cx0) * f)), max(1, round((cy1 - cy0) * f)))
    rgb = cv2.resize(source_rgb[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(source_mask[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_AREA)

    product = (mask >= 0.5).astype(np.uint8)
    area = max(1, int(product.sum()))
    edge = (
        (source_mask[0] >= 0.5).sum()
        + (source_mask[-1] >= 0.5).sum()
        + (source_mask[:, 0] >= 0.5).sum()
        + (source_mask[:, -1] >= 0.5).sum()
    )
    outline = cv2.findContours((source_mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0]
    cut_off = float(edge) / max(1.0, float(sum(len(c) for c in outline)))

    # The colour smoothing and the texture window reach _REACH px: pixels that close to the
    # outline mix both sides and belong to neither test.
    outside = cv2.dilate(product, disk(_REACH)) == 0
    ring = outside & (cv2.dilate(product, disk(_REACH + 6)) > 0)
    if ring.sum() < 32:  # the product fills the photo: no backdrop to compare with
        return CutQuality(None, None, 0.0, None, cut_off, None, 0.0)
    # The backdrop is learnt outside the product's convex hull (a part the cut left out sits
    # in a bay of the mask and would teach the model its own colour); the tolerance is how
    # far the backdrop's own pixels next to the product sit from their prediction
    # (_ring_tolerance). Then once more without what that found foreign, so a part left
    # out does not colour the backdrop predicted around it either.
    sigma = max(2.0, near_frac * max(x1 - x0, y1 - y0) * f)
    seen = outside & (mask < 0.02) & ~_hull(product, 2 * _REACH)
    if seen.sum() < 64:
        seen = outside & (mask < 0.02)
    lab, dist, shadow, std, _ = _backdrop(rgb, seen, sigma, shadow_max_factor)
    tol = max(min_delta, _ring_tolerance(dist, ring))
    foreign = _opened(outside & (dist > tol) & ~shadow)
    seen &= cv2.dilate(foreign, disk(_REACH)) == 0
    lab, dist, shadow, std, weight = _backdrop(rgb, seen, sigma, shadow_max_factor)
    bg_like = dist <= tol
    foreign = _opened(outside & ~bg_like & ~shadow)

    inner = cv2.erode(product, disk(_REACH)).astype(bool)
    # Can colour tell this product from its backdrop at all? Judged on its outer rim (a
    # filled hole, however large, is not the product's rim): a white box on white paper no.
    exterior = _exterior(product)
    rim = inner & (cv2.dilate(exterior.astype(np.uint8), disk(3 * _REACH)) > 0)
    share = float(bg_like[rim].mean()) if rim.any() else 0.0
    inside = attached = None
    if share <= 0.5:
        clear = outside & ~(cv2.dilate(product, disk(2 * _REACH)) > 0) & (cv2.dilate(product, disk(4 * _REACH)) > 0)
        ring_std = tuple(float(v) for v in np.percentile(std[clear if clear.sum() >= 32 else ring], (3, 97)))
        inside, attached = _inside_regions(
            bg_like & inner, product, exterior, lab, bg_like, std, weight, ring_std, contrast * tol
        )
        inside, attached = float(inside / area), float(attached / area)
    fragments = _detached(product, bg_like) / area

    # Outside: not backdrop, not shadow (darker, same chroma), next to the product.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(foreign, connectivity=8)
    touching = np.unique(labels[(cv2.dilate(product, disk(_REACH + 2)) > 0) & (foreign > 0)])
    lost: float | None = 0.0
    hh, ww = foreign.shape
    for k in touching:
        x, y, bw, bh, _ = stats[k]
        if not k or x == 0 or y == 0 or x + bw == ww or y + bh == hh:
            continue
        region = (labels == k).astype(np.uint8)
        if stats[k, cv2.CC_STAT_AREA] < LARGE_PART * area and not _continues_outline(region, product, stats[k]):
            region = _in_bay(region, product, stats[k])  # a small region counts where the cut bends round it
            if region.sum() < MIN_REGION * area:
                continue
        if _continues(region, product, inner, lab, contrast * tol):
            lost += int(((cv2.dilate(region, disk(_REACH - 1)) > 0) & (product == 0)).sum())  # + the band it spans
    if share > 0.5:
        lost = None  # a product that looks like its backdrop: what lies outside the cut cannot tell
    return CutQuality(
        background_inside=inside,
        background_attached=attached,
        fragments=float(fragments),
        lost_part=None if lost is None else lost / area,
        cut_off=float(cut_off),
        backdrop_like_share=share,
        tolerance=tol,
    )


def _delta(lab: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """dE76 between the mean colours of two pixel sets."""
    diff = lab[a].mean(axis=0) - lab[b].mean(axis=0)
    return float(np.sqrt((diff * diff).sum()))


def _hull(product: np.ndarray, grow: int) -> np.ndarray:
    """The convex hull of the product's pixels, grown by ``grow`` px, as bool."""
    points = cv2.findNonZero(product)
    hull = np.zeros(product.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return cv2.dilate(hull, disk(grow)) > 0


def _exterior(product: np.ndarray) -> np.ndarray:
    """Background connected to the crop's border: outside the product's outline, holes excluded."""
    n, labels = cv2.connectedComponents((product == 0).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def _inside_regions(
    cand: np.ndarray,
    product: np.ndarray,
    exterior: np.ndarray,
    lab: np.ndarray,
    bg_like: np.ndarray,
    std: np.ndarray,
    weight: np.ndarray,
    ring_std: tuple[float, float],
    contrast: float,
) -> tuple[float, float]:
    """(enclosed, attached) areas of backdrop-like regions inside the product that stand
    apart from the product around them and have the backdrop's texture (a smooth patch of
    the product's own colour inside a wood-grain backdrop is the product)."""
    # Thin lines the backdrop draws through a region (mortar, wood grain, printed text on
    # paper) split it into pieces whose neighbours are each other: bridge them first.
    cand = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_CLOSE, disk(2)) & product
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
    enclosed = attached = 0.0
    # candidates stay _REACH px inside the outline: one within reach of it touches the outside
    # (a region next to a hole the cut kept open is still inside the product's outline)
    open_outside = cv2.dilate(exterior.astype(np.uint8), disk(_REACH + 2)).astype(bool)
    smallest = MIN_REGION * product.sum()
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < smallest:
            continue  # a letter of white print, a glint: a hole or a stuck-on piece is one region
        x, y, bw, bh, a = stats[k]
        pad = 3 * _REACH + 8
        sl = np.s_[max(0, y - pad) : y + bh + pad, max(0, x - pad) : x + bw + pad]
        region = (labels[sl] == k).astype(np.uint8)
        if weight[sl][region > 0].max() < 0.002:
            continue  # no backdrop seen within ~3.5 sigma of any of it: nothing a hole could show
        around = (
            (cv2.dilate(region, disk(_REACH + 4)) > 0) & ~(cv2.dilate(region, disk(_REACH)) > 0) & (product[sl] > 0)
        )
        if around.sum() < 4 or bg_like[sl][around].mean() > 0.5:
            continue  # the product around it looks the same: a highlight or the product's own colour
        beyond = (
            (cv2.dilate(region, disk(3 * _REACH + 4)) > 0)
            & ~(cv2.dilate(region, disk(3 * _REACH)) > 0)
            & (product[sl] > 0)
        )
        near, far = (_delta(lab[sl], region > 0, ring) for ring in (around, beyond))
        if near < contrast or (beyond.sum() >= 4 and near < STEP * far):
            continue  # too little difference, or one that keeps growing away from it: a highlight
            # or shading fades into the product; a hole's edge is a step
        inscribed = float(cv2.distanceTransform(region, cv2.DIST_L2, 5).max())
        if inscribed < SLIVER * np.sqrt(region.sum() / np.pi):
            continue  # a sliver: the backdrop mirrored in a glossy surface; holes and stuck-on
            # pieces are blobs
        filled = _filled(region)
        if _opened(filled & ~bg_like[sl]).sum() > 0.1 * filled.sum():
            continue  # detail inside it that the backdrop lacks (print, text; not grain, which
            # the opening removes): a label on the product
        texture = float(np.median(std[sl][region > 0]))
        if not ring_std[0] <= texture <= ring_std[1]:  # the backdrop's own texture range (3-97 %,
            # measured clear of the outline, whose own step the texture filter would pick up)
            continue
        # the smoothing blurs ~3 px of its outline into the product: count them back
        grown = float(((cv2.dilate(region, disk(_REACH - 1)) > 0) & (product[sl] > 0)).sum())
        if open_outside[sl][region > 0].any():
            if grown > 0.25 * product.sum():
                continue  # a quarter of the product is not stuck-on backdrop: it is the product
            attached += grown
        else:
            enclosed += grown
    return enclosed, attached


def _ring_tolerance(dist: np.ndarray, ring: np.ndarray, sectors: int = 16) -> float:
    """The 97th percentile of the ring's distances (a textured backdrop's grain and mortar
    lines are backdrop), per angular sector around the product, and the median sector: a
    part left out of the cut fills a few sectors of the ring, not most of them."""
    ys, xs = np.nonzero(ring)
    angle = np.arctan2(ys - ys.mean(), xs - xs.mean())
    bins = np.minimum(((angle + np.pi) / (2 * np.pi) * sectors).astype(int), sectors - 1)
    d = dist[ys, xs]
    per = [float(np.percentile(d[bins == b], 97)) for b in range(sectors) if (bins == b).sum() >= 16]
    return float(np.median(per)) if per else float(np.percentile(d, 97))


def _filled(region: np.ndarray) -> np.ndarray:
    """``region`` (uint8, with a background margin) with its enclosed holes filled, as bool."""
    n, labels = cv2.connectedComponents((region == 0).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~np.isin(labels, border)


def _opened(where: np.ndarray) -> np.ndarray:
    """``where`` without lines and specks under 3 px (mortar, grain, noise), as uint8."""
    return cv2.morphologyEx(where.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _continues(region: np.ndarray, product: np.ndarray, inner: np.ndarray, lab: np.ndarray, contrast: float) -> bool:
    """Whether the product goes on across the cut into ``region``: the region's pixels next to
    the outline and the product's just inside it are alike. A shadow or a neighbouring object
    meets the product at a real edge (the cut follows it); a cut stem or a chunk cut off does not."""
    reach = 2 * _REACH + 4
    core = cv2.erode(region, disk(_REACH))  # its own colour, not the mix at its edges
    near_cut = ((core if core.sum() >= 16 else region) > 0) & (cv2.dilate(product, disk(reach + _REACH)) > 0)
    facing = inner & (cv2.dilate(region, disk(reach + _REACH)) > 0)
    if near_cut.sum() < 4 or facing.sum() < 4:
        return False
    diff = lab[near_cut].mean(axis=0) - lab[facing].mean(axis=0)
    return float(np.sqrt((diff * diff).sum())) < contrast


def _around(stat: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A component's bounding box (``connectedComponentsWithStats`` row) grown by its own
    size again on each side, clipped to ``shape``: the neighbourhood the bay tests judge."""
    x, y, bw, bh, _ = (int(v) for v in stat)
    pad = max(bw, bh) + 2
    h, w = shape
    return np.s_[max(0, y - pad) : min(h, y + bh + pad), max(0, x - pad) : min(w, x + bw + pad)]


def _in_bay(region: np.ndarray, product: np.ndarray, stat: np.ndarray) -> np.ndarray:
    """The part of ``region`` in a bay of the cut: inside the convex hull of the product's
    pixels around it (a window its own size again on each side), as uint8. A bite taken
    out of the outline is such a bay (the outline's shoulders on either side span it); a
    backdrop crevice or a drawn line meeting a straight or convex edge is not."""
    sl = _around(stat, product.shape)
    out = np.zeros_like(region)
    points = cv2.findNonZero(product[sl])
    if points is not None:
        hull = np.zeros(product[sl].shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        out[sl] = region[sl] & hull
    return out


def _hull_area(binary: np.ndarray) -> float:
    points = cv2.findNonZero(binary)
    return 0.0 if points is None else float(cv2.contourArea(cv2.convexHull(points)))


def _continues_outline(region: np.ndarray, product: np.ndarray, stat: np.ndarray) -> bool:
    """Whether ``region`` carries the product's outline on convexly (a cap sliced off a
    round body): what it adds to the cut (with the band between them) fills at least
    ``CONVEX_FILL`` of what it adds to the cut's convex hull, locally. A crevice or a drawn
    line sticking out of the outline adds far more hull than pixels."""
    sl = _around(stat, product.shape)
    alone = product[sl]
    reach = disk(_REACH + 1)  # the band left out next to the cut, between the two
    union = alone | region[sl] | (cv2.dilate(region[sl], reach) & cv2.dilate(alone, reach))
    added = float(union.sum() - alone.sum())
    return added >= CONVEX_FILL * max(1.0, _hull_area(union) - _hull_area(alone))


def _detached(product: np.ndarray, bg_like: np.ndarray) -> float:
    """Area of mask components other than the largest that are mostly backdrop-like."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(product, connectivity=8)
    if n <= 2:
        return 0.0
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    total = 0.0
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] > 0.1 * product.sum():
            continue  # a tenth of the product is no stray piece: a part of it (the other shoe)
        if k != largest and bg_like[labels == k].mean() > 0.5:
            total += float(stats[k, cv2.CC_STAT_AREA])
    return total
