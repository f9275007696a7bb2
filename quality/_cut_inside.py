"""Background inside the product and stuck to its edge: the region tests of quality/cut.py
(``InsideTests``, a part of its ``_Analysis``; see that module's doc, "background inside")."""

from __future__ import annotations

import cv2
import numpy as np

from quality._cut_grid import (
    _REACH,
    MIN_REGION,
    PIXEL_LLR,
    _delta,
    _filled,
    _gradient_of,
    _lab_of,
    _rounded,
    _thickness,
    _window,
)
from quality._validate import disk

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


class InsideTests:
    """Whether a candidate region inside the cut is backdrop (methods of quality/cut.py's ``_Analysis``)."""

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
