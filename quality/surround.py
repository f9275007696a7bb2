"""Whether the cut is the product at all: what lies just outside it should be the backdrop.

A segmenter can follow the wrong outline and leave no trace the other cut checks see: the
hole of a ring or a frame cut instead of the ring, the label of a box cut instead of the
box. Such a cut is clean on both sides, so halo, fringe and the colour models round the
outline (quality/cut.py, which learn the backdrop from outside the cut) all pass it. What
gives it away is its surround: outside a right cut lies the backdrop, and the photo's own
border is backdrop too (the product is framed inside it; ``source.cut_off`` reports a
product that runs off it). So the measure is the share of a band round the cut whose
colours the photo's border also has, with a cast shadow (the backdrop darker, its chroma
kept) counted as backdrop. A right cut reads near 1, white on white included (the band is
the border's white); a cut of a hole or a label reads near 0 (its band is the ring's red,
the box's black). None when the border is mostly product (nothing to learn the backdrop
from) or the band is too small to judge.

The colours are binned coarsely (a colour a bin away counts as seen), so a product of a
low-chroma colour near the backdrop's (a brown frame on grey seamless) is partly "seen" in
the band round a cut of its hole: seed 0 frame-04 read 0.69 and only warned. What gives that
cut away is its inside: the hole is the backdrop, all of it seen, more than the band round it.
So the share is lowered by how far the cut's own inside (less the same gap) is more
backdrop-coloured than its surround: a right cut has the backdrop outside, not inside, and
is never lowered (its surround reads ~1); a white product on white reads ~1 on both sides.
frame-04 now reads 0.38 (fail); on bench/qc_calibration.py seeds 0, 7, 13, 21 and 34 the 450
clean renders read at least 0.918 (the band alone 0.959) and u2netp's 176 good cuts 0.984.

Colours seen at all cannot tell a plain ring from fur of many browns: the ring's grey-brown is
among them, so the band round u2netp's cut of the ring's hole reads all backdrop and the hole
too (seed 144 ring-65: 1.0, passed). How much of each colour can: the band is all one
grey-brown and barely overlaps the border's mix of colours, while the hole is the border's
fur. So the share is also lowered by ``MIX`` x how much more the cut's inside overlaps the
border's colour histogram than the band does (histogram intersection; a band colour matches
the border's share of it up to ``SHADOW_BINS`` lighter, so a shadow round a white product on
white does not count against it). On seeds 0-233 (9 x 90 products) the 1,279 true and good
u2netp cuts read at most -0.04 on that difference, u2netp's 14 cuts of a ring's or frame's hole
0.47-0.98.
"""

from __future__ import annotations

import cv2
import numpy as np

from quality._validate import disk, resize_to

__all__ = ["border_strip", "reduced_cut", "surround_backdrop_share", "work_grid"]

WORK_SIDE = 384  # px: the measure reads colours, not detail
BAND_GAP = 0.01  # of the product's size: the mixed rim right outside the cut is left out
BAND = 0.05  # of the product's size: the band's width beyond the gap (at least 3 px)
# The strip along the photo's edge the backdrop is learnt from, share of its shorter side.
# Narrow, because a product that nearly fills the photo reaches into a wide one and its own
# colours then count as backdrop: with 0.04, u2netp's cut of a ring's hole (seed 21 ring-26,
# the gravel inside it) read 1.0 and was exported; with 0.02 it reads 0, a frame's hole
# (seed 0 frame-04) 0.69, and every clean render and good cut of bench/qc_calibration.py
# (seeds 0, 7, 13, 21) still reads >= 0.987, six of them measured now that read None before.
BORDER = 0.02
MIN_BORDER = 0.3  # least share of the strip clear of the product for a backdrop to learn
L_BINS, AB_BINS = 8, 16  # Lab (8-bit) quantised: 32 levels of L, 16 of a and b
SHADOW_BINS = 2  # a band pixel this many L bins darker than a border colour is its shadow
FLOOR = 0.002  # least share of the border (after a one-bin blur) a colour needs to count
# the histogram overlap's weight: twice the difference, so the smallest a hole's cut reads
# (0.47, seed 7 ring-74) fails; good cuts read at most -0.04 and are not lowered
MIX = 2.0


def surround_backdrop_share(source_rgb: np.ndarray, source_mask: np.ndarray) -> float | None:
    """Share of the band just outside the cut whose colour the photo's border has (a shadow
    of such a colour included), less how much more of the cut's inside has such a colour (see
    the module doc). Inputs: (H, W, 3) uint8 sRGB and (H, W) float in [0, 1],
    already checked.

    >>> rgb = np.full((200, 200, 3), 230, np.uint8); mask = np.zeros((200, 200), np.float32)
    >>> rgb[50:150, 50:150] = (200, 30, 30); mask[50:150, 50:150] = 1.0  # a red box, cut right
    >>> round(surround_backdrop_share(rgb, mask), 2)
    1.0
    >>> label = np.zeros_like(mask); label[80:120, 80:120] = 1.0  # only a patch of the box
    >>> round(surround_backdrop_share(rgb, label), 2)
    0.0
    """
    reduced = reduced_cut(source_rgb, source_mask)
    if reduced is None:
        return None
    rgb, product, side = reduced
    gap = max(1, round(BAND_GAP * side))
    band_px = max(3, round(BAND * side))
    near = cv2.dilate(product, disk(gap))
    reach = cv2.dilate(product, disk(gap + band_px))
    band = (reach > 0) & (near == 0)
    inside = cv2.erode(product, disk(gap)) > 0
    strip = border_strip(product.shape)
    border = strip & (reach == 0)
    if border.sum() < MIN_BORDER * strip.sum() or band.sum() < 32:
        return None
    bins = _bins(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB))
    counts = np.bincount(bins[border], minlength=L_BINS * AB_BINS * AB_BINS).astype(np.float32)
    share = counts / max(float(border.sum()), 1.0)
    seen = _with_shadows(_blur(share.reshape(L_BINS, AB_BINS, AB_BINS))).reshape(-1) >= FLOOR
    around = float(seen[bins[band]].mean())
    within = float(seen[bins[inside]].mean()) if inside.any() else 0.0
    # more backdrop inside the cut than round it: in the colours seen at all, or in how much
    # of each (the histograms' overlap with the border's, where a ring's grey-brown is seen
    # among the fur's browns but the band is all of it, and the hole's fur is the border's);
    # a band colour matches the border's share of it up to SHADOW_BINS lighter, its shadow
    lit = _with_shadows(share.reshape(L_BINS, AB_BINS, AB_BINS)).reshape(-1)
    more = max(within - around, MIX * (_overlap(share, bins[inside]) - _overlap(lit, bins[band])))
    return max(0.0, around - max(0.0, more))


def _with_shadows(hist: np.ndarray) -> np.ndarray:
    """Each (L, a, b) bin takes the largest of itself and the bins up to ``SHADOW_BINS``
    lighter of the same a and b: a colour seen lighter on the border counts for its shadow."""
    out = hist.copy()
    for k in range(1, SHADOW_BINS + 1):
        out[:-k] = np.maximum(out[:-k], hist[k:])
    return out


def _overlap(share: np.ndarray, bins: np.ndarray) -> float:
    """Histogram intersection of the pixels ``bins`` with the border's colour ``share``s."""
    if bins.size == 0:
        return 0.0
    own = np.bincount(bins, minlength=share.size).astype(np.float32) / bins.size
    return float(np.minimum(own, share).sum())


def work_grid(source_rgb: np.ndarray, source_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its cut area-reduced to ``WORK_SIDE`` (as they are when already smaller):
    what this module and quality/enclosure.py read. quality/checks.py reduces once for both.
    The reduction takes ``resize_to``'s integer step first (a 1800 px photo: 12 -> 6 ms),
    dropping the last few rows and columns for it: the measures read regions, not positions."""
    h, w = source_mask.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale == 1.0:
        return source_rgb, source_mask
    return resize_to(source_rgb, scale, exact=False), resize_to(source_mask.astype(np.float32), scale, exact=False)


def reduced_cut(source_rgb: np.ndarray, source_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(photo, cut as uint8 0/1, the cut's size: the square root of its area) on the work
    grid; None when the cut covers under 64 px there (too small to judge its surround)."""
    rgb, mask = work_grid(source_rgb, source_mask)
    product = (mask >= 0.5).astype(np.uint8)
    area = int(product.sum())
    return None if area < 64 else (rgb, product, float(np.sqrt(area)))


def border_strip(shape: tuple[int, ...]) -> np.ndarray:
    """The photo's outermost ``BORDER`` of its shorter side, all round (at least 2 px)."""
    hh, ww = shape[:2]
    b = max(2, round(BORDER * min(hh, ww)))
    strip = np.zeros((hh, ww), bool)
    strip[:b], strip[-b:], strip[:, :b], strip[:, -b:] = True, True, True, True
    return strip


def _bins(lab: np.ndarray) -> np.ndarray:
    lab = lab.astype(np.int32)
    return (
        (lab[..., 0] * L_BINS // 256) * AB_BINS * AB_BINS
        + (lab[..., 1] * AB_BINS // 256) * AB_BINS
        + (lab[..., 2] * AB_BINS // 256)
    )


def _blur(hist: np.ndarray) -> np.ndarray:
    """Each bin takes the largest of its neighbours (a colour a bin away counts as seen)."""
    out = hist.copy()
    for axis in range(3):
        for shift in (-1, 1):
            out = np.maximum(out, np.roll(hist, shift, axis=axis))
    return out
