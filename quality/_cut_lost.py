"""Part of the product missing: the region tests of quality/cut.py for product-like regions
outside the cut (``LostTests``, a part of its ``_Analysis``; see that module's doc)."""

from __future__ import annotations

import cv2
import numpy as np

from quality._cut_grid import _REACH, MIN_REGION, _delta, _hull_area, _window
from quality._validate import disk

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
THIN_PART = 0.025  # mean width (area over the longer side of its box), share of the product's size, of a
# part that counts though it runs off the crop: u2netp's cuts of stands and lamps without their legs, seeds
# 0, 7, 13 and 21, read 0.6-1.9 %; regions running off the crop beside clean cuts (shadows, a mug's reflection,
# a lamp's floor) 3.4 % and up
SHADOW_WIDTH = 4.0  # working px: a region darker than the backdrop around it, of the same chroma, whose
# free outline is at least this soft (its lightness step over the 90th percentile gradient there) is a cast
# shadow, not a part. Corpus seed 7: shadows under a grey stand and a white box read 5.1-6.5 and were
# counted as 7-36 % of the product lost; lost parts read 0.03-2.5 (one lighter region 5.0)
SHADOW_CHROMA = 2.0  # dE in a*b*: a shadow darkens the backdrop without changing its colour


class LostTests:
    """Whether a product-like region outside the cut is a lost part (methods of quality/cut.py's ``_Analysis``)."""

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
