"""Is the cut right? Background kept inside the product, parts of it lost, stray fragments,
a product the photo itself cuts off. Measured on the *source* grid, once per SKU.

The cut itself says what the product and its backdrop look like: the pixels inside the
mask are (mostly) product, those outside it backdrop. Every pixel near the product is
then weighed by how much better one of the two explains it, and the cut is wrong where a
compact region of pixels is explained by the wrong side. On a working grid whose longest
side is at most ``work_side`` px around the product (areas are shares, so the grid only
sets the smallest region seen):

* **two colour models.** The backdrop: its local colour is predicted at every pixel by
  normalised convolution of the pixels outside the mask (Gaussian of ``near_frac`` of
  the product's size, so gradients, vignetting and a textured backdrop's local mean
  follow), and a 3-D histogram of how far its own pixels stray from that prediction
  (grain, mortar, gravel, text on paper) gives the likelihood of any pixel under "backdrop
  here". The product: a 3-D colour histogram of the pixels inside the mask, weighted
  towards its rim (the outline is where the cut is right by construction; a filled ring's
  backdrop-filled middle should not teach the product's colours). A pixel's evidence is
  the log-likelihood ratio backdrop : product (``llr``); histograms are 8 levels a bin,
  smoothed by one bin, with a floor.
* **two passes.** What the first pass finds (backdrop inside, product outside) is left out
  of the model it contaminated and the ratio computed again: a lost handle next to the body
  otherwise teaches the backdrop its colour, a filled hole the product its. A large
  enclosed region the second pass finds leaning backdrop but under the bar (a filled middle
  larger than the first pass saw) is left out once more.
* **background inside the product** (a filled hole, gravel stuck to the edge): compact
  regions inside the mask, a few px in from its outline, whose mean ``llr`` is at least
  ``contrast``, that stand apart from the product around them (its pixels there look like
  product, and their mean colour differs by ``min_delta`` dE76 or more, a step: not a
  gradient that keeps growing away from it, as a highlight fades into the product, nor one
  gone again a little farther out, as a band of the product's own shading is; a large
  enclosed region may instead have a rim that is an edge, or a grain ``GRAIN_STEP`` x the
  product's round it: a smooth ring's middle filled with gravel of its own mean colour), whose mean
  colour is the backdrop predicted there (within 1.25 of the backdrop's own deviation from
  its prediction, twice the median), and whose grain is the backdrop's (not print: a
  label's text is detail the backdrop lacks), with no ink darker than anything on the
  backdrop round the product (a paper label over written paper). Enclosed ones of at least
  half a visible hole (0.5 % of the product) are holes, unless they lie deep inside it and
  are only a line across (``THIN_HOLE``: a label's small print, a label's edge beside a
  highlight); ones lying along the outline are
  backdrop stuck to the edge (with stronger evidence, and up to a quarter of the product:
  more is the product; a band that meets the outline only at its ends, a logo's stripe, is
  the product's own). A region that meets the outline only through necks much narrower
  than itself (a frame's filled middle, met by the frame's specular stripes as pale as the
  backdrop) is judged, less the outline's band, as enclosed: in the models' first pass too;
  one that reaches the outline only along thin lines (a dark ring's filled middle, joined
  to it by the backdrop-grey flanks of a specular stripe) is judged with the lines opened
  away. When no region is a hole and a large one failed only for weak evidence or no step
  round it, the large enclosed region the first pass left out of the product model round it
  is judged as a region itself (``_filled_middle``), grown out to the colour edge round it or
  rounded (a white frame's middle of banded pale sky, a black ring's of dark brick: where the
  evidence clears its bar the region stops short of the hole's rim or runs into a specular
  stripe's flanks, so its step and rim were read in the wrong place).
* **stray fragments**: mask components apart from the product, under a tenth of it, whose
  pixels look like backdrop (a pair of shoes keeps both shoes).
* **part of the product missing**: regions outside the mask that look like the product
  (mean ``llr`` -1.5 or less) and differ from the backdrop around them: a bite out of the
  outline (in a bay of the cut, or carrying its outline on convexly), a large part next
  to the cut that continues the product across it (a handle, a leg: its colour at the cut
  is the product's just inside), a part of any shape the product clearly goes on into across
  the cut (a handle's roots, a frame's corner: the same colour on both sides of a cut that
  follows no edge), or a large part apart from it (a headphone's cup); a clear one that
  runs off the working crop is judged again on a crop as wide as the product (``WIDE``: a
  headphone's band lost whole, the cups kept). A cast
  shadow (darker than the backdrop around it, of its chroma, with a soft outline) is not a
  part; a shadow or a neighbour meets the product at a real edge the cut follows; regions in the
  product's own holes, or running off the crop, do not count unless they carry the
  product on (or, off the crop, are thin all along and product-coloured: a stool's legs
  lost whole; not past a side of the crop that is the photo's own edge, where nothing lies
  beyond).
* **cut off by the photo**: share of the product's outline on the photo's border (a stray
  piece of the cut along the border is a fragment, not the product).
* **cut in two** (quality/split.py): a thin part cut through, at the source's own scale.

When colour cannot tell most of the product's rim from the backdrop (a white box on paper
of the same white) the inside and lost-part figures are None (not measurable) and the
reason says so. Reference: constructed
cases in tests/quality/test_cut.py; thresholds and the figures behind them from
bench/qc_calibration.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_pair, disk, resize_to
from quality.split import split_share

__all__ = ["CutQuality", "cut_quality"]

_REACH = 2  # px of the outline band (mixed pixels) that belongs to neither side
_BINS, _SHIFT = 32, 3  # 8 levels a histogram bin, 32^3 bins
_FLOOR = 0.002  # share of a uniform density mixed into each histogram: no colour is impossible
MARGIN = 0.3  # room around the product (share of its size) for the backdrop and a lost part beside it
WIDE = 1.0  # ...and when a clear product-coloured region runs off that crop, the room it is judged again in
MIN_REGION = 0.002  # smallest region counted, share of the product (candidates from half that)
NECK = 0.5  # an enclosed body's links to the outline, their width over its thickness, at most
ENCLOSED_BAND = 0.03  # of the product's size: what lies this near the outline is not a filled middle
HOLE_BODY = 0.05  # an enclosed region this large is a filled middle, its backdrop predicted from afar
SHARP_RIM = 3.0  # ...and needs no colour step round it when its rim is this much sharper than the grain
GRAIN_STEP = 4.0  # ...or when its grain is this much the product's round it (a smooth beige ring's middle
# filled with pale gravel of the ring's own mean colour: corpus seed 55 ring-58, 35x; a black ring's middle
# of dark brick, as smooth as the ring, 2.4x, is found by _filled_middle). On corpus seeds 0, 7, 13, 21, 34,
# 55 and 89 it changed no clean render's or good cut's status (README "2.5.10")
ROUNDED = 0.25  # a large enclosed region judged on its own is opened at this share of its inscribed radius
# (a black ring's filled middle joined to the flanks of the ring's specular stripe: corpus seed 89 ring-20)
OPEN_LINES = 4  # working px: lines this thin (radius) that join a large region to the outline are opened away
MIN_HOLE = 0.005  # smallest enclosed region counted: half a visible hole (1 %); smaller ones are glints
# (the sample espresso saucer mirrors the wooden table in spots of 0.3-0.5 %) or print
THIN_HOLE = 0.01  # least half-width (inscribed radius, share of the product's size) of a region deep
# inside the product (clear of every outline) that counts as backdrop seen through it. Corpus seeds 0, 55, 89
# (--defects filled_hole): visible filled holes read 0.020-0.29 (0.004 only for a band along a frame's inner
# outline, which is not deep); a label's line of small text on gravel and a label's edge beside a bottle's
# highlight on a pale photo, deep inside, 0.0068 and 0.0062
PIXEL_LLR = 1.0  # evidence a pixel needs to join a candidate region
# background inside: region tests
RING_PRODUCT = 0.5  # share of the product around the region that must look like product
STEP = 0.8  # the colour difference next to the region is at least this share of that farther out...
FAR = 0.3  # ...and that farther out at least this share of it (the product's own colour a little farther)
ATTACHED_LLR = 3.0  # backdrop on the outline needs more evidence: a highlight meets the outline too
DETAIL = 0.03  # share of the filled region that may look like product (print inside a label)
BACKDROP_MATCH = 1.25  # the region's mean vs the predicted backdrop, in the backdrop's own deviation (tol)
REACH = 0.002  # least density of seen backdrop (normalised convolution) on the region: ~3.5 sigma
TEXTURE = 2.0  # the region's median grain no finer than half the backdrop's 5th percentile, its 90th
# percentile no coarser than twice the backdrop's 97th (print on a label is detail paper lacks)...
TEXTURE_HI = 1.25  # ...and its median no coarser than this much the backdrop's 95th
PRINT, PRINT_L = 0.025, 20.0  # share of the region (2 px in from its outline) darker by PRINT_L L* than the
# backdrop's darkest 1 % round the product: ink, so a label, not backdrop seen through a hole. Corpus seeds
# 0, 1, 7, 13: filled holes read at most 0.017 (a frame's dark rim on sky), the off-white labels read as
# holes on paper and on a pale photo 0.033-0.10
ATTACHED_MAX = 0.25  # backdrop on the outline larger than this share of the product is the product
ATTACHED_CONTACT = 0.25  # share of the ring round a region that must lie on the outline for it to be
# backdrop stuck to the edge: stuck-on fragments on corpus seed 7 read 0.65-1.0; the white stripe of the
# sample sticker's logo, which crosses the product and meets the outline only at its two ends, 0.008
# part of the product missing: region tests
LOST_LLR = 1.5  # least mean evidence for product
LOST_CONTRAST = 2.5  # dE76 the region must differ from the backdrop around it (3 for a large part)
BAY, CONVEX = 0.5, 0.9  # a bite: share in the local hull of the cut, or share of added hull it fills
BITE_CONTINUITY = 15.0  # dE76 (median, pixel to nearest product pixel) across the cut for a bite
BITE_CONTACT = 0.25  # share of a bite's outline along the cut (backdrop between a stand's legs touches
# little; bites read 0.48 and up at the 5th percentile on the corpus)...
THIN_CONTACT = 0.15  # ...or of a thin part's (a stem's gap, too thin to judge continuity: 0.18-0.26)
LARGE = 0.03  # a region beside the cut this large (share of the product) counts whatever its shape...
LARGE_LLR, LARGE_CONTINUITY = 3.0, 5.0  # ...with this much evidence and continuity across the cut
CONTINUES, CONTINUES_LLR, CONTINUES_LARGE_LLR = 2.5, 3.5, 2.5  # a region the product goes on into across
# the cut (continuity at most half LARGE_CONTINUITY) counts at any shape with this much evidence, a large one
# (LARGE) with less. bench/qc_calibration.py seeds 0, 7, 13, 21 (120 products, their true-mask renders and
# u2netp cuts): regions beside good cuts that continue this well read llr -2.5 to -3.0 (gravel stones touching
# small black headphones and frames), lost parts the bay and cap tests missed -3.8 to -6.2 (a mug handle's
# roots, frame chunks, a shoe's toe) and one whole mug handle (9.6 %) -2.7; apartness >= 3 keeps a handle
# the backdrop's own colour (2.3) out
TEXTURE_FLOOR = 1.5  # dE76: continuity across the cut is judged against the product's own pixel-to-pixel
# difference where that is larger (a grained or patterned product differs from itself too)
APART, APART_LLR = 0.05, 2.75  # a product-like region apart from the cut: size and evidence it needs
STRAY = 0.1  # a piece of the cut under this share of the product (of its largest piece) is stray, not a part
GAP = 0.05  # how far apart (share of the product's size) a separate part may lie
THIN_PART = 0.025  # mean width (area over the longer side of its box), share of the product's size, of a
# part that counts though it runs off the crop: u2netp's cuts of stands and lamps without their legs, seeds
# 0, 7, 13 and 21, read 0.6-1.9 %; regions running off the crop beside clean cuts (shadows, a mug's reflection,
# a lamp's floor) 3.4 % and up
SHADOW_WIDTH = 4.0  # working px: a region darker than the backdrop around it, of the same chroma, whose
# free outline is at least this soft (its lightness step over the 90th percentile gradient there) is a cast
# shadow, not a part. Corpus seed 7: shadows under a grey stand and a white box read 5.1-6.5 and were
# counted as 7-36 % of the product lost; lost parts read 0.03-2.5 (one lighter region 5.0)
SHADOW_CHROMA = 2.0  # dE in a*b*: a shadow darkens the backdrop without changing its colour


@dataclass(frozen=True)
class CutQuality:
    """Shares of the product area (of the canvas-independent source product)."""

    background_inside: float | None  # enclosed backdrop-like regions / product area
    background_attached: float | None  # backdrop-like regions reaching the outline / product area
    fragments: float  # detached backdrop-like mask components / product area
    lost_part: float | None  # product-like regions outside the mask / product area
    cut_off: float  # share of the product outline lying on the photo's border
    backdrop_like_share: float | None  # share of the product's rim colour cannot tell from the backdrop
    tolerance: float  # the backdrop's own deviation from its prediction (twice the median, dE76)
    split: float = 0.0  # quality.split: share of the most bridged gap between the cut's pieces


def cut_quality(
    source_rgb: np.ndarray,
    source_mask: np.ndarray,
    *,
    work_side: int = 512,
    min_delta: float = 5.0,
    contrast: float = 1.2,
    near_frac: float = 0.12,
    validate: bool = True,
    box: tuple[int, int, int, int] | None = None,
) -> CutQuality:
    """How well ``source_mask`` follows the product in ``source_rgb`` (see the module doc).

    Inputs: ``source_rgb`` (H, W, 3) uint8 sRGB; ``source_mask`` (H, W) float in [0, 1].
    ``min_delta``: dE76 a backdrop-like region must differ from the product around it;
    ``contrast``: the mean log-likelihood ratio (backdrop : product) such a region needs;
    ``near_frac``: the backdrop model's reach, share of the product's size; ``box``: the
    mask's ``bbox`` when the caller has it.

    >>> yy, xx = np.mgrid[:200, :200]; rng = np.random.default_rng(0)
    >>> ring = (np.hypot(xx - 100, yy - 100) < 60) & (np.hypot(xx - 100, yy - 100) > 42)
    >>> img = rng.normal(200, 2, (200, 200, 3)).clip(0, 255).astype(np.uint8); img[ring] = (40, 60, 160)
    >>> filled = (np.hypot(xx - 100, yy - 100) < 60).astype(np.float32)
    >>> q = cut_quality(img, filled)
    >>> round(q.background_inside, 2), q.lost_part, cut_quality(img, ring.astype(np.float32)).background_inside
    (0.54, 0.0, 0.0)
    """
    source_rgb, source_mask = check_pair("source_rgb", source_rgb, "source_mask", source_mask, validate)
    h, w = source_mask.shape
    x0, y0, x1, y1 = box if box is not None else bbox(source_mask)
    size = max(x1 - x0, y1 - y0)
    cx0, cy0, cx1, cy1 = crop = _crop((x0, y0, x1, y1), MARGIN, (h, w))
    cut_off = _cut_off(source_mask, (x0, y0, x1, y1))
    f = min(1.0, work_side / max(cx1 - cx0, cy1 - cy0))
    rgb = resize_to(source_rgb[cy0:cy1, cx0:cx1], f, exact=False)
    mask = resize_to(source_mask[cy0:cy1, cx0:cx1], f, exact=False)
    split = 0.0
    if _pieces(mask, 0.1) > 1:  # in pieces on the grid (a thin part survives a low bar): judge the gap at full scale
        split = split_share(source_rgb, source_mask, validate=False, box=(x0, y0, x1, y1))
    a = _Analysis(rgb, (mask >= 0.5).astype(np.uint8), size * f, near_frac, _photo_edges(crop, (h, w)))
    if a.outer_ring.sum() < 32:  # the product fills the photo: no backdrop to compare with
        return CutQuality(None, None, 0.0, None, cut_off, None, 0.0, split)
    inside, attached, lost = a.measure(min_delta, contrast)
    if a.past_crop and WIDE > MARGIN and crop != (0, 0, w, h):
        # a part lost farther from the cut than the crop reaches (a headphone's band, the cups
        # kept): judged again on a crop wide enough to hold it, its share the larger of the two
        lost = max(
            lost, _wide_lost(source_rgb, source_mask, (x0, y0, x1, y1), work_side, near_frac, min_delta, contrast)
        )
    share = a.rim_backdrop_share()
    if share > 0.5:  # the product's own rim looks like its backdrop: colour cannot tell
        inside = attached = lost = None
    return CutQuality(
        background_inside=inside,
        background_attached=attached,
        fragments=a.fragments(),
        lost_part=lost,
        cut_off=cut_off,
        backdrop_like_share=share,
        tolerance=a.tol,
        split=split,
    )


def _crop(box: tuple[int, int, int, int], margin: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The window ``margin`` x the product's size (+ 8 px) round ``box``, within the photo."""
    x0, y0, x1, y1 = box
    m = int(margin * max(x1 - x0, y1 - y0)) + 8
    return max(0, x0 - m), max(0, y0 - m), min(shape[1], x1 + m), min(shape[0], y1 + m)


def _wide_lost(rgb, mask, box, work_side, near_frac, min_delta, contrast) -> float:
    """The lost-part share measured on a crop ``WIDE`` x the product's size around it."""
    cx0, cy0, cx1, cy1 = _crop(box, WIDE, mask.shape)
    f = min(1.0, work_side / max(cx1 - cx0, cy1 - cy0))
    small = resize_to(mask[cy0:cy1, cx0:cx1], f, exact=False)
    size = max(box[2] - box[0], box[3] - box[1]) * f
    a = _Analysis(
        resize_to(rgb[cy0:cy1, cx0:cx1], f, exact=False),
        (small >= 0.5).astype(np.uint8),
        size,
        near_frac,
        _photo_edges((cx0, cy0, cx1, cy1), mask.shape),
    )
    return a.measure(min_delta, contrast)[2] if a.outer_ring.sum() >= 32 else 0.0


def _thickness(r8: np.ndarray) -> float:
    """Largest inscribed radius of a binary region, px (its half-width where widest)."""
    return float(cv2.distanceTransform(np.pad(r8, 1), cv2.DIST_L2, 5).max())


def _photo_edges(crop: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """Which sides of ``crop`` (left, top, right, bottom) are the photo's own edges."""
    x0, y0, x1, y1 = crop
    return x0 == 0, y0 == 0, x1 == shape[1], y1 == shape[0]


def _pieces(mask: np.ndarray, level: float, min_piece: float = 0.005) -> int:
    """Connected pieces of ``mask > level`` of at least ``min_piece`` of its area."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.compare(mask, level, cv2.CMP_GT), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int((areas >= min_piece * max(1, areas.sum())).sum())


def _cut_off(mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of the product's outline on the photo's border: border pixels of the product
    over its outline's length (traced inside the box only). Stray pieces of the cut (under
    ``STRAY`` of its largest piece, as ``fragments`` counts them) are not the product: a
    sliver of backdrop cut along the photo's edge is a fragment (which a new cut can fix),
    not a product the photo cuts off (which none can)."""
    x0, y0, x1, y1 = box
    h, w = mask.shape
    if x0 > 0 and y0 > 0 and x1 < w and y1 < h:
        return 0.0
    binary = cv2.compare(mask[y0:y1, x0:x1], 0.5, cv2.CMP_GE)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n > 2:
        areas = stats[1:, cv2.CC_STAT_AREA]
        binary = np.isin(labels, 1 + np.flatnonzero(areas >= STRAY * areas.max())).astype(np.uint8)
    bh, bw = binary.shape
    edge = 0
    if y0 == 0:
        edge += cv2.countNonZero(binary[0])
    if y1 == h:
        edge += cv2.countNonZero(binary[bh - 1])
    if x0 == 0:
        edge += cv2.countNonZero(binary[:, 0])
    if x1 == w:
        edge += cv2.countNonZero(binary[:, bw - 1])
    outline = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0]
    return float(edge) / max(1.0, float(sum(len(c) for c in outline)))


# ------------------------------------------------------------------------- the models


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


class _Analysis:
    """The working grid around one product: models, evidence and the region tests."""

    def __init__(
        self,
        rgb: np.ndarray,
        product: np.ndarray,
        size_px: float,
        near_frac: float,
        photo_edges: tuple[bool, bool, bool, bool] = (False, False, False, False),
    ):
        self.photo_edges = photo_edges  # (left, top, right, bottom): the grid's side is the photo's edge
        self.rgb = rgb.astype(np.float32)
        self.rgb8 = rgb
        self.product = product
        self.area = max(1, int(product.sum()))
        self.size_px = max(1.0, size_px)
        # distances instead of dilations with large disks: one transform each way
        self.depth = cv2.distanceTransform(product, cv2.DIST_L2, 3)
        self.away = cv2.distanceTransform(1 - product, cv2.DIST_L2, 3)
        self.inner = self.depth > _REACH
        self.outer = self.away > _REACH
        self.exterior = _exterior(product)
        self.to_exterior = cv2.distanceTransform((~self.exterior).astype(np.uint8), cv2.DIST_L2, 3)
        self.near_exterior = self.to_exterior <= _REACH + 1
        self.near_product = self.away <= _REACH + 2
        self.outer_ring = self.outer & (self.away <= _REACH + 8)
        self.sigma = max(2.0, near_frac * self.size_px)
        self.lab = cv2.cvtColor(self.rgb * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
        self.colour = _flat(rgb.astype(np.int32) >> _SHIFT)
        # the product's colours are learnt mostly from its rim: deep inside, a filled hole hides
        self.rim_weight = np.where(self.depth <= max(3.0, 0.05 * self.size_px), 1.0, 0.3).astype(np.float32)
        # pass 0, colour only: product-coloured pixels outside (a lost handle) do not teach
        # the backdrop's local colour
        fg = _log_density(self.colour, self.inner, self.rim_weight)
        s0 = cv2.GaussianBlur(_log_density(self.colour, self.outer)[self.colour] - fg[self.colour], (0, 0), 1.0)
        seen = self.outer & (s0 >= -PIXEL_LLR)
        self.seen = seen if seen.sum() >= 0.5 * self.outer.sum() else self.outer
        self.backdrop, self.density = _predict(self.rgb, self.seen.astype(np.float32), self.sigma)
        ring = self.outer_ring & self.seen
        dev = self.lab[ring] - _lab_of(self.backdrop[ring]) if ring.any() else np.zeros((0, 3), np.float32)
        # robust: twice the median deviation (a contact shadow in the ring is not the backdrop's grain)
        self.tol = 2.0 * float(np.median(np.sqrt((dev * dev).sum(axis=1)))) if len(dev) else 0.0
        self.llr = self._evidence(self.outer, self.inner, self.seen, self.backdrop, fg)
        self._grain = None
        self._gradient = None
        self._dark = None
        self._smooth_gradient = None
        self._colour_gradient = None
        self._drift = None
        self.past_crop = False  # a clear product-coloured region ran off the working crop (see WIDE)

    @property
    def grain(self) -> np.ndarray:
        """Local grain (RMS of the grey level less its 5x5 median: texture, not edges, which a
        median keeps), and the backdrop's 5th, 95th and 97th percentiles of it near the product;
        computed when a region first needs it."""
        if self._grain is None:
            gray = cv2.cvtColor(self.rgb8, cv2.COLOR_RGB2GRAY)
            fine = cv2.subtract(gray, cv2.medianBlur(gray, 5), dtype=cv2.CV_32F)
            self._grain = np.sqrt(cv2.blur(fine * fine, (3, 3)))
            clear = (self.away > 2 * _REACH + 4) & (self.away <= 4 * _REACH + 12)
            ref = self._grain[clear if clear.sum() >= 32 else self.outer_ring]
            self.grain_range = tuple(float(v) for v in np.percentile(ref, (5, 95, 97))) if len(ref) else (0.0,) * 3
        return self._grain

    def _evidence(self, bg, fg, seen, backdrop=None, fg_density=None) -> np.ndarray:
        """Per pixel log-likelihood ratio backdrop : product."""
        if backdrop is None:
            backdrop, _ = _predict(self.rgb, seen.astype(np.float32), self.sigma)
        # +132: a residual of 0 falls mid-bin (128 would split a clean backdrop across two bins)
        residual = _flat(np.clip(self.rgb - backdrop + 132.0, 0, 255).astype(np.int32) >> _SHIFT)
        if fg_density is None:
            fg_density = _log_density(self.colour, fg, self.rim_weight)
        return _log_density(residual, bg)[residual] - fg_density[self.colour]

    # -- candidates ---------------------------------------------------------------------
    def _inside_candidates(self, llr):
        smooth = cv2.GaussianBlur(llr, (0, 0), 1.0)
        cand = (self.inner & (smooth > PIXEL_LLR)).astype(np.uint8)
        # bridge the thin lines a backdrop draws through a region (mortar, grain, text)
        cand = cv2.morphologyEx(cand, cv2.MORPH_CLOSE, disk(4)) & self.inner.astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
        keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= 0.5 * MIN_REGION * self.area]
        return smooth, labels, stats, keep

    def _outside_candidates(self, llr):
        smooth = cv2.GaussianBlur(llr, (0, 0), 0.7)  # less: a thin leg is a few px wide here
        cand = (self.outer & (smooth < -PIXEL_LLR)).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
        near = self.away <= max(_REACH + 2, int(GAP * self.size_px))
        touching = np.unique(labels[near & (cand > 0)])
        keep = [int(k) for k in touching if k and stats[k, cv2.CC_STAT_AREA] >= 0.5 * MIN_REGION * self.area]
        return labels, stats, keep

    def measure(self, min_delta: float, contrast: float) -> tuple[float, float, float]:
        """(enclosed backdrop, attached backdrop, lost product) as shares of the product."""
        # pass 1: what is found leaves the model it contaminated
        _, labels, stats, keep = self._inside_candidates(self.llr)
        drop_fg = np.isin(labels, keep) if keep else np.zeros_like(self.inner)
        o_labels, _, o_keep = self._outside_candidates(self.llr)
        drop_bg = np.isin(o_labels, o_keep) if o_keep else np.zeros_like(self.outer)
        add_bg = self._big_enclosed(self.llr)  # a filled ring: the backdrop shows through it
        drop_fg |= add_bg
        if drop_bg.sum() > 0.5 * self.outer.sum():
            drop_bg[:] = False  # most of the backdrop "looks like product": the models are confused, keep them
        if drop_fg.any() or drop_bg.any():
            self.llr = self._evidence(
                (self.outer & ~drop_bg) | add_bg, self.inner & ~drop_fg, (self.seen & ~drop_bg) | add_bg
            )
        smooth, labels, stats, keep = self._inside_candidates(self.llr)
        # a filled middle larger than pass 1 found still teaches the product its colours, and
        # its evidence stays under the bar (a green frame's middle of pale sky: 1.16): once more
        # without it
        more = [k for k in keep if self._weak_body(k, labels, stats, contrast)]
        if more:
            body = np.isin(labels, more)
            drop_fg, add_bg = drop_fg | body, add_bg | body
            self.llr = self._evidence(
                (self.outer & ~drop_bg) | add_bg, self.inner & ~drop_fg, (self.seen & ~drop_bg) | add_bg
            )
            smooth, labels, stats, keep = self._inside_candidates(self.llr)
        # pass 2: the regions, judged
        inside = attached = 0.0
        missed = []  # large candidates too weak or with no step round them: maybe a piece of a middle
        for k in keep:
            kind, share = self._backdrop_region(k, labels, stats, smooth, min_delta, contrast)
            if kind != "inside" and stats[k, cv2.CC_STAT_AREA] >= HOLE_BODY * self.area:
                kind, share = self._opened_body(k, labels, stats, smooth, min_delta, contrast) or (kind, share)
                missed += [k] if kind in ("weak", "step") else []
            if kind == "inside":
                inside += share
            elif kind == "attached" and share <= ATTACHED_MAX:
                attached += share
        if missed and not inside:
            inside = self._filled_middle(add_bg, np.isin(labels, missed), smooth, min_delta, contrast)
        o_labels, o_stats, o_keep = self._outside_candidates(self.llr)
        lost = float(sum(self._lost_region(k, o_labels, o_stats) for k in o_keep))
        return inside, attached, lost

    def _weak_body(self, k, labels, stats, contrast) -> bool:
        """Whether candidate ``k`` is a large enclosed region (``HOLE_BODY``) that leans backdrop
        but under ``contrast``."""
        if stats[k, cv2.CC_STAT_AREA] < HOLE_BODY * self.area:
            return False
        sl = _window(stats[k], 2, labels.shape)
        region = labels[sl] == k
        if self._reaches_outline(sl, region.astype(np.uint8)):
            return False
        return 0.3 <= float(self.llr[sl][region].mean()) < contrast

    def _big_enclosed(self, llr) -> np.ndarray:
        """Large enclosed regions that lean backdrop (a filled ring's middle, where the product
        model is half backdrop): a lower bar, only to leave them out of the product model."""
        low = (self.inner & (cv2.GaussianBlur(llr, (0, 0), 1.0) > 0)).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(low, connectivity=8)
        out = np.zeros(low.shape, bool)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < 0.02 * self.area:
                continue
            sl = _window(stats[k], 2, low.shape)
            region = labels[sl] == k
            if (region & self.near_exterior[sl]).any():
                region = self._necked_core(sl, region)  # a frame's middle met by its specular stripes
                if region is None:
                    continue
            if llr[sl][region].mean() < 0.3:
                continue
            out[sl] |= region
        return out

    # -- background inside ---------------------------------------------------------------
    def _backdrop_region(self, k, labels, stats, smooth, min_delta, contrast) -> tuple[str, float]:
        """("inside" | "attached", share of the product) for candidate ``k``, else (why not, 0.0):
        "weak" (its evidence under ``contrast``), "step" (no step or edge round it) or ""."""
        sl = _window(stats[k], 3 * _REACH + 12, labels.shape)
        region = labels[sl] == k
        llr = self.llr[sl]
        if float(llr[region].mean()) < contrast:
            return "weak", 0.0
        reach = self.density[sl][region]
        if float(reach.max()) < REACH:
            return "", 0.0  # no backdrop seen near it: a label or print deep inside the product
        product = self.product[sl] > 0
        inner = self.inner[sl]
        lab = self.lab[sl]
        r8 = region.astype(np.uint8)
        grown = cv2.dilate(r8, disk(_REACH + 1)) > 0
        ring = (cv2.dilate(r8, disk(_REACH + 4)) > 0) & ~(cv2.dilate(r8, disk(_REACH)) > 0) & inner
        if not ring.any() or float((smooth[sl][ring] < 0).mean()) < RING_PRODUCT:
            return "", 0.0  # the product around it looks the same: a highlight, the product's own colour
        beyond = (cv2.dilate(r8, disk(3 * _REACH + 8)) > 0) & ~(cv2.dilate(r8, disk(3 * _REACH + 4)) > 0) & inner
        near, far = _delta(lab, region, ring), _delta(lab, region, beyond)
        reaches = self._reaches_outline(sl, r8)
        body = float(region.sum()) >= HOLE_BODY * self.area and not reaches
        if near < min_delta or near < STEP * far or (beyond.any() and far < FAR * near):
            # too little difference, one that keeps growing (shading fades, a hole steps), or one
            # gone again farther out (a band of the product's own shading); unless a large enclosed
            # region's rim is an edge (a pale ring's filled middle, a shade off its backdrop)
            if not (body and (self._sharp_rim(sl, r8) or self._grain_step(sl, r8))):
                return "step", 0.0
        wsum = max(1e-6, float(reach.sum()))
        dev = ((lab[region] - _lab_of(self.backdrop[sl][region])) * reach[:, None]).sum(axis=0) / wsum
        allowed = BACKDROP_MATCH * max(self.tol, 1.0)
        if body and near >= min_delta:
            # a large enclosed region (a filled middle) is predicted from afar: its prediction
            # may be off by the backdrop's drift over its mean distance from where it was seen
            far_px = float(self.to_exterior[sl][region].mean())
            c = (self.backdrop[sl][region] * reach[:, None]).sum(axis=0) / wsum
            step = np.full(3, self.drift * far_px / np.sqrt(3.0))  # a drift in lightness
            drifted, here = _lab_of(np.stack([c + step, c]).astype(np.float32))
            allowed += float(np.sqrt(((drifted - here) ** 2).sum()))
        if float(np.sqrt((dev * dev).sum())) > allowed:
            return "", 0.0  # not the backdrop predicted there: a paler label, not a hole
        filled = _filled(cv2.morphologyEx(r8, cv2.MORPH_CLOSE, disk(4)) > 0) & product
        if float(((filled & ~region) & (smooth[sl] < -PIXEL_LLR)).sum()) > DETAIL * max(1, filled.sum()):
            return "", 0.0  # print inside it: a label on the product
        core = cv2.erode(r8, np.ones((3, 3), np.uint8)) > 0
        grain = self.grain[sl][core if core.sum() >= 10 else region]
        lo, hi, top = self.grain_range
        if not lo / TEXTURE <= float(np.median(grain)) <= hi * TEXTURE_HI:
            return "", 0.0  # not the backdrop's grain
        if float(np.percentile(grain, 90)) > TEXTURE * max(top, 0.5):
            return "", 0.0  # fine detail the backdrop lacks: print on a label
        if self._inked(sl, r8):
            return "", 0.0  # print darker than anything on the backdrop round it: a label
        share = float((grown & product).sum()) / self.area  # + the band the smoothing blurred
        if share < MIN_REGION:
            return "", 0.0
        if reaches:
            ring_out = (cv2.dilate(r8, disk(1)) > 0) & ~region
            contact = float((ring_out & self.near_exterior[sl]).sum()) / max(1, int(ring_out.sum()))
            if contact < ATTACHED_CONTACT:
                # reaches the outline only at its ends: a band of the product's own, unless
                # what reaches it are necks off an enclosed body (a frame's filled middle, met
                # by the frame's specular stripes): that body, less the outline's band, is a hole
                return self._enclosed_body(sl, r8, product)
            return ("attached", share) if float(llr[region].mean()) >= ATTACHED_LLR else ("", 0.0)
        if float(self.depth[sl][region].min()) > 2 * _REACH + 2 and _thickness(r8) < THIN_HOLE * self.size_px:
            return "", 0.0  # a line deep inside the product: print or a highlight's edge, not a hole
        return ("inside", share) if share >= MIN_HOLE else ("", 0.0)

    def _opened_body(self, k, labels, stats, smooth, min_delta, contrast) -> tuple[str, float] | None:
        """A large candidate that reaches the outline only along thin lines (a dark ring's
        filled middle, joined to its outline by the mid-grey flanks of a specular stripe):
        its body, the lines opened away (``OPEN_LINES``), judged as an enclosed region; or,
        when it meets the outline's band only through necks (a frame's filled middle met by
        its specular stripes, which as a whole reads as print framed by product), its necked
        core (``_necked_core``); None when no such body is left."""
        sl = _window(stats[k], 0, labels.shape)
        r8 = (labels[sl] == k).astype(np.uint8)
        if not self._reaches_outline(sl, r8):
            return None  # enclosed already: judged as it is
        for part in (cv2.morphologyEx(r8, cv2.MORPH_OPEN, disk(OPEN_LINES)), self._necked_core(sl, r8 > 0)):
            judged = self._body_of(sl, part, labels.shape, smooth, min_delta, contrast)
            if judged is not None:
                return judged
        return None

    def _filled_middle(self, bodies, missed, smooth, min_delta, contrast) -> float:
        """Share of the product in the large enclosed regions (``HOLE_BODY``) the first pass left
        out of the product model (``bodies``) that hold a large candidate judged not a hole
        (``missed``), judged as enclosed regions themselves: each grown out to the colour edge
        round it (``_grown``), else rounded (opened at ``ROUNDED`` x its inscribed radius: a
        specular stripe's flanks that joined it go). A candidate is where the evidence clears its
        bar, and a filled middle whose backdrop in places looks like the product (a white frame's
        middle of pale sky whose bands match the frame; a black ring's of dark brick, joined to
        the ring's stripe) is a piece of the middle, or the middle and a flank, so its evidence,
        step and rim were read in the wrong place. Only a large candidate too weak or with no step
        round it: one judged print or not the backdrop's colour (a label's line, its plain rest
        the backdrop's colour: corpus seed 89 bottle-17) may lie in a body that is the label."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(bodies.astype(np.uint8), connectivity=8)
        whole = (slice(0, labels.shape[0]), slice(0, labels.shape[1]))
        found = 0.0
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < HOLE_BODY * self.area or not missed[labels == k].any():
                continue
            part = (labels == k).astype(np.uint8)
            for shape in (self._grown(part), _rounded(part, ROUNDED)):
                judged = self._body_of(whole, shape, labels.shape, smooth, min_delta, contrast)
                if judged is not None:
                    found += judged[1]
                    break
        return found

    def _grown(self, part: np.ndarray) -> np.ndarray | None:
        """``part`` grown over what is smoother than ``SHARP_RIM`` x the grain of its core (the
        colour gradient: a rim a shade off in lightness may be a step in hue), clear of the
        outline's band; None when it does not grow (a textured backdrop's grain breaks it up)."""
        core = cv2.erode(part, disk(_REACH + 2)) > 0
        if not core.any():
            return None
        if self._colour_gradient is None:
            lab = cv2.GaussianBlur(self.lab, (0, 0), 1.5)  # the grain out, edges kept (``_sharp_rim``)
            self._colour_gradient = np.sqrt(sum(_gradient_of(np.ascontiguousarray(lab[..., c])) ** 2 for c in range(3)))
        g = self._colour_gradient
        free = ((g < SHARP_RIM * max(float(np.median(g[core])), 0.125)) & self.inner & ~self.near_exterior).astype(
            np.uint8
        )
        _, pieces = cv2.connectedComponents(free, connectivity=4)
        ids, counts = np.unique(pieces[core & (free > 0)], return_counts=True)
        if not len(ids):
            return None
        grown = (pieces == int(ids[np.argmax(counts)])).astype(np.uint8)
        return grown if grown.sum() >= part.sum() else None

    def _body_of(self, sl, part, shape, smooth, min_delta, contrast) -> tuple[str, float] | None:
        """The largest piece of ``part`` (window ``sl``), judged as an enclosed region when it is
        large (``HOLE_BODY``) and clear of the outline; ("inside", share) or None."""
        if part is None:
            return None
        n, body, bstats, _ = cv2.connectedComponentsWithStats(part.astype(np.uint8), connectivity=8)
        if n < 2:
            return None
        part = (body == 1 + int(np.argmax(bstats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
        if part.sum() < HOLE_BODY * self.area or self._reaches_outline(sl, part):
            return None
        only = np.zeros(shape, np.int32)
        only[sl][part > 0] = 1
        x, y, w, h = cv2.boundingRect(part)
        row = np.array([[0, 0, 0, 0, 0], [x + sl[1].start, y + sl[0].start, w, h, int(part.sum())]])
        kind, share = self._backdrop_region(1, only, row, smooth, min_delta, contrast)
        return (kind, share) if kind == "inside" else None

    def _reaches_outline(self, sl, r8) -> bool:
        """Whether region ``r8`` (window ``sl``) comes within the outline's band."""
        return bool(((cv2.dilate(r8, disk(_REACH + 1)) > 0) & self.near_exterior[sl]).any())

    def _sharp_rim(self, sl, r8) -> bool:
        """Whether the region's rim is an edge (a hole's: the product ends there), not one more
        level of the product's shading: the lightness gradient across the rim (its upper
        quartile) ``SHARP_RIM`` x the grain inside the region and in the product round it."""
        if self._smooth_gradient is None:  # blurred: the grain out, edges kept
            self._smooth_gradient = _gradient_of(cv2.GaussianBlur(np.ascontiguousarray(self.lab[..., 0]), (0, 0), 1.5))
        g = self._smooth_gradient[sl]
        rim = (cv2.dilate(r8, disk(_REACH + 2)) > 0) & ~(cv2.erode(r8, disk(2)) > 0) & self.inner[sl]
        core, ring = self._core_and_ring(sl, r8)
        if not rim.any() or not core.any() or not ring.any():
            return False
        grain = max(float(np.median(g[core])), float(np.median(g[ring])), 0.125)
        return float(np.percentile(g[rim], 75)) >= SHARP_RIM * grain

    def _core_and_ring(self, sl, r8) -> tuple[np.ndarray, np.ndarray]:
        """The region's core (clear of its rim) and the product round it, a few px out."""
        core = cv2.erode(r8, disk(_REACH + 2)) > 0
        ring = (cv2.dilate(r8, disk(3 * _REACH + 4)) > 0) & ~(cv2.dilate(r8, disk(_REACH + 4)) > 0) & self.inner[sl]
        return core, ring

    def _grain_step(self, sl, r8) -> bool:
        """Whether the region's grain is ``GRAIN_STEP`` x the product's round it: a smooth product's
        middle filled with a textured backdrop of its own mean colour (a beige ring on pale gravel),
        which the colours' step cannot show. Whether that grain is the backdrop's is tested after."""
        core, ring = self._core_and_ring(sl, r8)
        if not core.any() or not ring.any():
            return False
        g = self.grain[sl]
        return float(np.median(g[core])) >= GRAIN_STEP * max(float(np.median(g[ring])), 0.5)

    def _necked_core(self, sl, region) -> np.ndarray | None:
        """``region`` (a window ``sl`` of the grid) less the outline's band, when it meets that
        band only through necks, narrower than ``NECK`` x its thickness (a frame's filled
        middle met by the frame's specular stripes); else None (a band crossing the product
        meets it with its full width, twice; backdrop stuck on lies along it)."""
        band = self.to_exterior[sl] <= max(_REACH + 1.0, ENCLOSED_BAND * self.size_px)
        core = region & ~band
        if not core.any():
            return None
        thick = 2.0 * float(cv2.distanceTransform(core.astype(np.uint8), cv2.DIST_L2, 3).max())
        meets = (cv2.dilate(core.astype(np.uint8), disk(1)) > 0) & band & region
        return core if float(meets.sum()) <= NECK * thick else None

    def _enclosed_body(self, sl, r8, product) -> tuple[str, float]:
        """("inside", share) when region ``r8`` is an enclosed body that meets the outline
        only through necks (``_necked_core``), else ("", 0.0)."""
        core = self._necked_core(sl, r8 > 0)
        if core is None:
            return "", 0.0
        share = float(((cv2.dilate(core.astype(np.uint8), disk(_REACH + 1)) > 0) & product).sum()) / self.area
        return ("inside", share) if share >= MIN_HOLE else ("", 0.0)

    def _inked(self, sl, r8) -> bool:
        """Whether ``PRINT`` of the region's core is darker by ``PRINT_L`` L* than the backdrop's
        darkest 1 % round the product (a paper label's print on a paper backdrop: the paper
        matches, the colour models and the grain cannot tell, the ink is darker than any
        writing on the backdrop; a hole shows the backdrop, whose darks are its own)."""
        core = cv2.erode(r8, disk(2)) > 0
        if not core.any():
            return False
        if self._dark is None:
            ring = self.outer & (self.away <= _REACH + 12) & self.seen
            self._dark = float(np.percentile(self.lab[..., 0][ring], 1)) if ring.any() else -np.inf
        return float((self.lab[sl][..., 0][core] < self._dark - PRINT_L).mean()) >= PRINT

    # -- part of the product missing -----------------------------------------------------
    def _lost_region(self, k, labels, stats) -> float:
        """Share of the product that candidate ``k`` (outside the mask) is, or 0."""
        x, y, bw, bh, pixels = (int(v) for v in stats[k])
        sl = _window(stats[k], max(bw, bh) + 2 * _REACH + 10, labels.shape)
        region = labels[sl] == k
        llr = float(self.llr[sl][region].mean())
        if llr > -LOST_LLR or not (region & self.exterior[sl]).any():
            return 0.0  # weak, or inside one of the product's own holes
        hh, ww = labels.shape
        border = x == 0 or y == 0 or x + bw == ww or y + bh == hh  # the scene, unless it carries the product on
        # ...past the crop: a side that is the photo's own edge has nothing past it (a dark gap in
        # the floor under a black ring at the photo's foot is no leg; a leg the photo cuts off is
        # source.cut_off's business)
        left, top, right, bottom = self.photo_edges
        off_crop = (x == 0 and not left) or (y == 0 and not top)
        off_crop = off_crop or (x + bw == ww and not right) or (y + bh == hh and not bottom)
        apart = not (region & self.near_product[sl]).any()
        product = self.product[sl]
        r8 = region.astype(np.uint8)
        share = float(((cv2.dilate(r8, disk(_REACH + 1)) > 0) & (product == 0)).sum()) / self.area
        if share < MIN_REGION:
            return 0.0
        lab = self.lab[sl]
        around = (cv2.dilate(r8, disk(4)) > 0) & ~(cv2.dilate(r8, disk(1)) > 0)
        around &= ~(cv2.dilate(product, disk(_REACH + 2)) > 0)
        apartness = _delta(lab, region, around)  # a shadow on black, a white leg on white: ~0
        if apartness < LOST_CONTRAST:
            return 0.0
        if self._cast_shadow(sl, r8):
            return 0.0
        if off_crop and llr <= -LARGE_LLR and apartness >= LOST_CONTRAST + 0.5:
            self.past_crop = True
        if apart:
            ok = share >= APART and llr <= -APART_LLR and apartness >= LOST_CONTRAST + 0.5
            return share if ok and not border else 0.0
        continuity = self._continuity(sl, region)
        if border:
            clear = llr <= -LARGE_LLR and apartness >= LOST_CONTRAST + 0.5
            ok = clear and share >= LARGE and continuity <= 2.0
            # a leg or stem lost whole runs off the working crop (which is framed on the cut):
            # thin all along, product-coloured, and too thin at the cut to judge continuity or
            # going on across it
            thin = pixels <= THIN_PART * self.size_px * max(bw, bh)
            leg = clear and thin and off_crop and (continuity == np.inf or continuity <= LARGE_CONTINUITY)
            return share if ok or leg else 0.0
        large = share >= LARGE and llr <= -LARGE_LLR and apartness >= LOST_CONTRAST + 0.5
        if large and (continuity <= LARGE_CONTINUITY or (continuity == np.inf and llr <= -4.0)):
            return share
        if continuity <= CONTINUES and apartness >= LOST_CONTRAST + 0.5:
            # the product going on across the cut, whatever the shape (a handle's roots, a
            # frame's corner, a shoe's toe): no bay and no convex cap, but the same colour on
            # both sides of a cut that follows no edge, and clearly the product's colour
            if llr <= -CONTINUES_LLR or (share >= LARGE and llr <= -CONTINUES_LARGE_LLR):
                return share
        if continuity == np.inf and llr > -LOST_LLR - 1.0:
            return 0.0  # too thin to tell continuity: the colour must say it clearly
        if continuity != np.inf and (continuity > BITE_CONTINUITY or (continuity > LARGE_CONTINUITY and llr > -5.0)):
            return 0.0  # the cut follows a real edge here, unless the colour says product very clearly
        outline = region & ~(cv2.erode(r8, np.ones((3, 3), np.uint8)) > 0)
        contact = THIN_CONTACT if continuity == np.inf else BITE_CONTACT
        if float((outline & self.near_product[sl]).sum()) < contact * max(1, outline.sum()):
            return 0.0  # touches the cut at a point: backdrop between legs, not a bite
        return share if self._bite(sl, r8, product) else 0.0

    def _cast_shadow(self, sl, r8) -> bool:
        """A region darker than the backdrop around it, of the same chroma, with a soft free
        outline (away from the product): the product's shadow on its backdrop, not a part."""
        away = self.away[sl] > _REACH + 3
        core = cv2.erode(r8, disk(3)) > 0
        region = core if core.any() else r8 > 0
        around = (cv2.dilate(r8, disk(6)) > 0) & ~(cv2.dilate(r8, disk(3)) > 0) & away
        free = (cv2.dilate(r8, disk(2)) > 0) & ~(cv2.erode(r8, disk(2)) > 0) & away
        if around.sum() < 8 or free.sum() < 8:
            return False
        lab = self.lab[sl]
        step = lab[region].mean(axis=0) - lab[around].mean(axis=0)
        if step[0] >= 0 or float(np.hypot(step[1], step[2])) > SHADOW_CHROMA:
            return False  # lighter than its surroundings, or another colour: not a shadow
        gradient = float(np.percentile(self.lightness_gradient[sl][free], 90))
        return -float(step[0]) >= SHADOW_WIDTH * max(gradient, 1e-3)

    @property
    def lightness_gradient(self) -> np.ndarray:
        """|grad L*| per working px, computed when a region first needs it."""
        if self._gradient is None:
            self._gradient = _gradient_of(np.ascontiguousarray(self.lab[..., 0]))
        return self._gradient

    @property
    def drift(self) -> float:
        """How fast the backdrop's own (smoothed) colour drifts where it was seen, RGB levels per
        px: a filled middle lies away from every place it was seen, and its prediction can be
        off by that drift over the distance (a vignette lighter in the photo's middle, a sweep)."""
        if self._drift is None:
            ring = self.outer_ring & self.seen
            gy, gx = np.gradient(self.backdrop, axis=(0, 1))
            drift = np.sqrt((gy * gy).sum(axis=2) + (gx * gx).sum(axis=2))
            self._drift = float(np.median(drift[ring])) if ring.any() else 0.0
        return self._drift

    def _continuity(self, sl, region) -> float:
        """Median dE76 between the region's pixels next to the cut and their nearest product
        pixel just inside it, scaled down where the product's own pixels differ more than
        ``TEXTURE_FLOOR`` at that spacing: ~0 where the product goes on across the cut, large
        where the cut follows a real edge (inf: too few pixels to tell)."""
        inner = self.inner[sl]
        dist, nearest = cv2.distanceTransformWithLabels(
            (~inner).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
        )
        sel = region & (dist <= 2 * _REACH + 3)
        ys, xs = np.nonzero(inner)
        if sel.sum() < 3 or not len(ys):
            return np.inf
        order = np.zeros((int(nearest.max()) + 1, 2), np.int64)
        order[1 : len(xs) + 1, 0], order[1 : len(xs) + 1, 1] = ys, xs  # labels number zero pixels in scan order
        ny, nx = order[nearest[sel]].T
        lab = self.lab[sl]
        diff = lab[sel] - lab[ny, nx]
        across = float(np.median(np.sqrt((diff * diff).sum(axis=1))))
        # the product's own texture: those product pixels against product pixels as far apart
        step, (h, w) = 2 * _REACH + 1, inner.shape
        own = []
        for dy, dx in ((0, step), (step, 0), (0, -step), (-step, 0)):
            qy, qx = ny + dy, nx + dx
            ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            ok[ok] = inner[qy[ok], qx[ok]]
            d = lab[ny[ok], nx[ok]] - lab[qy[ok], qx[ok]]
            own.append(np.sqrt((d * d).sum(axis=1)))
        own = np.concatenate(own)
        texture = float(np.median(own)) if len(own) else 0.0
        return across * TEXTURE_FLOOR / max(TEXTURE_FLOOR, texture)

    @staticmethod
    def _bite(sl, r8, product) -> bool:
        """A bite out of the outline: most of the region lies in the local convex hull of the
        cut (the outline's shoulders span it), or what it adds to the cut fills most of what it
        adds to the cut's hull (a cap sliced off a round body)."""
        points = cv2.findNonZero(product)
        if points is None:
            return False
        hull = np.zeros(product.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        region = r8 > 0
        if float((region & (hull > 0)).sum()) >= BAY * region.sum():
            return True
        band = disk(_REACH + 1)
        union = product | r8 | (cv2.dilate(r8, band) & cv2.dilate(product, band))
        added = float(union.sum() - product.sum())
        return added >= CONVEX * max(1.0, _hull_area(union) - _hull_area(product))

    # -- fragments and measurability -----------------------------------------------------
    def fragments(self) -> float:
        """Share of the product in mask components apart from the largest, under a tenth of
        the product, whose pixels look like backdrop."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(self.product, connectivity=8)
        if n <= 2:
            return 0.0
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        total = 0.0
        for k in range(1, n):
            a = int(stats[k, cv2.CC_STAT_AREA])
            if k == largest or a > STRAY * self.area:
                continue  # a tenth of the product is no stray piece: a part of it (the other shoe)
            sl = _window(stats[k], 0, labels.shape)
            if float(self.llr[sl][labels[sl] == k].mean()) > 0:
                total += a
        return total / self.area

    def rim_backdrop_share(self) -> float:
        """Share of the product's outer rim that colour cannot tell from the backdrop (not
        clearly product): most of it for a white box on white paper; at most 0.42 on the
        calibration corpus (a white lamp on paper, a black one on dark seamless)."""
        rim = self.inner & (self.to_exterior <= _REACH + 6)
        if not rim.any():
            return 0.0
        return float((cv2.GaussianBlur(self.llr, (0, 0), 1.0)[rim] >= -PIXEL_LLR).mean())
