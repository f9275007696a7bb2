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
  pixels look like backdrop (a pair of shoes keeps both shoes), or whose colours the largest
  piece has none of (``FOREIGN``: another object of the scene, black marks on a pale sky kept
  beside a blue headphone).
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

from quality._cut_grid import (
    _BINS,
    _FLOOR,
    _REACH,
    _SHIFT,
    MIN_REGION,
    PIXEL_LLR,
    _exterior,
    _flat,
    _gradient_of,
    _lab_of,
    _log_density,
    _predict,
    _window,
)
from quality._cut_inside import ATTACHED_MAX, HOLE_BODY, InsideTests
from quality._cut_lost import LostTests
from quality._validate import bbox, check_pair, disk, resize_to
from quality.split import split_share

__all__ = ["CutQuality", "cut_quality"]

MARGIN = 0.3  # room around the product (share of its size) for the backdrop and a lost part beside it
WIDE = 1.0  # ...and when a clear product-coloured region runs off that crop, the room it is judged again in
STRAY = 0.1  # a piece of the cut under this share of the product (of its largest piece) is stray, not a part
GAP = 0.05  # how far apart (share of the product's size) a separate part may lie
# A stray piece whose median colour is this close to the floor of the largest piece's colour
# model (a multiple of it: no such colour, nor one a bin away, in the product) is another
# object of the scene: black marks on pale sky kept beside a blue headphone (u2netp, seeds 55
# and 233). On seeds 0-233 the 12 such pieces of u2netp's cuts (2.4-6.1 % of the product)
# read the floor itself; the product's own stray pieces of 0.2 % or more (a stand's legs cut
# apart: 18 of them) read at least 16 000 x it, but one: a black headphone's cup cut apart
# from a cut that took a blob of the dark backdrop with it (seed 21, a bad cut anyway).
FOREIGN = 3.0


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


class _Analysis(InsideTests, LostTests):
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

    # -- fragments and measurability -----------------------------------------------------
    def fragments(self) -> float:
        """Share of the product in mask components apart from the largest, under a tenth of
        the product, whose pixels look like backdrop, or whose colours the largest piece
        lacks (``FOREIGN``: another object of the scene kept with the product)."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(self.product, connectivity=8)
        if n <= 2:
            return 0.0
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        total = 0.0
        own = None  # the largest piece's colours, learnt when a piece first needs them
        for k in range(1, n):
            a = int(stats[k, cv2.CC_STAT_AREA])
            if k == largest or a > STRAY * self.area:
                continue  # a tenth of the product is no stray piece: a part of it (the other shoe)
            sl = _window(stats[k], 0, labels.shape)
            piece = labels[sl] == k
            if float(self.llr[sl][piece].mean()) > 0:
                total += a
            elif a >= MIN_REGION * self.area:
                if own is None:
                    main = labels == largest
                    core = main & self.inner
                    own = _log_density(self.colour, core if core.any() else main)
                if float(np.median(own[self.colour[sl][piece]])) <= np.log(FOREIGN * _FLOOR / _BINS**3):
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
