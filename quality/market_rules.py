"""Marketplace rules beyond purity and fill: frame edges, backdrop residue, drawn borders,
aspect, shortest side, the fill range and "no upscaled images".

Pure functions over the canvas (no I/O, no Prefect). The rule *values* come from
``quality.thresholds.MarketplaceRules`` (one per export profile, built from
``imaging.profiles.ExportProfile`` by tasks/score.py); ``market_rule_checks`` grades them
into ``CheckResult``s for the gate. References: Amazon product image requirements (main
image: product and shadow inside the frame, pure white backdrop), Google Merchant Center
image requirements (no borders, product 75-90 % of the image, no upscaled images), eBay
picture policy (no borders), Etsy listing photo guidance (2000 px shortest side, 4:3 or
square).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from quality._validate import bbox, check_pair
from quality.checks import CheckResult, graded, product_box, rule
from quality.defects import defect_of
from quality.marketplace import product_fill
from quality.thresholds import Limit, MarketplaceRules, QcThresholds

if TYPE_CHECKING:
    from quality.gate import QcEvidence

__all__ = [
    "edge_touch",
    "background_residue",
    "contact_zone",
    "frame_step",
    "aspect_error",
    "strict_enlargement",
    "market_rule_checks",
]

COVERED = 1.0 / 255.0  # product coverage that counts as product (one 8-bit level)
CHAMFER_STEP = 0.955  # the least cost of one step of cv2.distanceTransform's 3x3 L2 mask (axial; diagonal 1.3693)


def _off_colour(rgb: np.ndarray, colour: tuple[int, int, int], tolerance: int) -> np.ndarray:
    lo = np.array([max(0, int(c) - tolerance) for c in colour], np.uint8)
    hi = np.array([min(255, int(c) + tolerance) for c in colour], np.uint8)
    return cv2.bitwise_not(cv2.inRange(rgb, lo, hi)) > 0


def edge_touch(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    colour: tuple[int, int, int],
    *,
    tolerance: int = 0,
    validate: bool = True,
) -> tuple[int, int]:
    """Pixels on the canvas's outermost ring that are product, or backdrop off ``colour``
    (a shadow or anything else reaching the frame edge): ``(product_px, other_px)``.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1];
    ``colour`` the required backdrop, 8-bit sRGB; ``tolerance`` levels per channel.
    Reference: Amazon main-image rules (the product and its shadow lie inside the frame).

    >>> rgb = np.full((50, 50, 3), 255, np.uint8); alpha = np.zeros((50, 50), np.float32)
    >>> rgb[49, 10:20] = 200; alpha[20:30, 0:5] = 1.0
    >>> edge_touch(rgb, alpha, (255, 255, 255))
    (10, 10)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate, False)
    product = _ring(output_alpha) >= COVERED
    other = ~product & _off_colour(_ring(output_rgb)[None], colour, tolerance)[0]
    return int(product.sum()), int(other.sum())


def _ring(a: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of ``a`` (H, W[, C]), each pixel once, as (N[, C])."""
    if a.shape[0] <= 2 or a.shape[1] <= 2:  # no inside: every pixel is on the ring
        return a.reshape(-1, *a.shape[2:])
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def background_residue(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    colour: tuple[int, int, int],
    *,
    levels: int,
    clearance: float,
    contact: float = 0.0,
    floating: bool = False,
    validate: bool = True,
) -> float | None:
    """Share of the far backdrop that is off ``colour`` by more than ``levels``: grey or
    off-white residue (specks, leftovers of the old backdrop, a grey haze) away from the
    product and the shadow the compositor draws next to it.

    The far backdrop is every backdrop pixel (coverage < 1/255) more than ``clearance``
    times the canvas's longest side away from the product, less the contact zone when
    ``contact`` > 0: the base line +- ``contact`` x the product's size, across the base
    and ``contact`` x its size beyond (``contact_zone``; under the whole product and twice
    as far down for a ``floating`` shadow). None when nothing is left.
    Inputs as ``edge_touch``. Reference: Amazon main image (pure white background, no
    props or residue).

    >>> rgb = np.full((100, 100, 3), 255, np.uint8); alpha = np.zeros((100, 100), np.float32)
    >>> alpha[40:60, 40:60] = 1.0; rgb[40:60, 40:60] = 30; rgb[2:4, 2:7] = 235
    >>> round(background_residue(rgb, alpha, (255, 255, 255), levels=6, clearance=0.15), 4)
    0.0013
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate, False)
    if not 0.0 <= clearance < 1.0 or not 0 <= levels <= 255:
        raise ValueError(f"need 0 <= clearance < 1 and 0 <= levels <= 255, got {clearance}, {levels}")
    far = _far_backdrop(output_alpha, clearance * max(output_alpha.shape))
    if contact > 0.0 and cv2.minMaxLoc(output_alpha)[1] >= 0.5:  # a product to stand on
        x0, y0, x1, y1 = contact_zone(output_alpha, contact, floating)
        far[y0:y1, x0:x1] = 0
    n = cv2.countNonZero(far)
    if n == 0:
        return None
    lo = np.array([max(0, int(c) - levels) for c in colour], np.uint8)
    hi = np.array([min(255, int(c) + levels) for c in colour], np.uint8)
    on_colour = cv2.countNonZero(cv2.bitwise_and(cv2.inRange(output_rgb, lo, hi), far))
    return (n - on_colour) / n


def contact_zone(alpha: np.ndarray, reach: float, floating: bool = False) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``, half-open: where the compositor's shadow under the product lies.
    The base is the product's columns (coverage >= 0.5) in its lowest 8 % of rows, the span
    imaging/compose.py draws its contact ellipse under (1.1x the base's width, fading within
    0.04 of the product's size of the base line); the zone runs ``reach`` x the product's
    size beyond the base on each side and above and below the base line. A ``floating``
    shadow is an ellipse 0.8x the product's width after a gap, reaching at most 0.09 of its
    size below the base line: its zone spans the product's box and twice ``reach`` below.
    A product that stands on legs or two ear cups has its shadow between them, however far
    that lies from any product pixel.

    >>> a = np.zeros((100, 100), np.float32); a[20:80, 30:33] = 1; a[20:80, 67:70] = 1; a[20:24, 30:70] = 1
    >>> contact_zone(a, 0.1), contact_zone(a, 0.1, floating=True)
    ((24, 74, 76, 86), (24, 74, 76, 92))
    """
    x0, y0, x1, y1 = bbox(alpha)
    size = max(x1 - x0, y1 - y0)
    pad = round(reach * size)
    h, w = alpha.shape
    if floating:
        return max(0, x0 - pad), max(0, y1 - pad), min(w, x1 + pad), min(h, y1 + 2 * pad)
    top = max(y0, y1 - max(1, math.ceil(0.08 * (y1 - y0))))
    cols = np.flatnonzero((alpha[top:y1, x0:x1] >= 0.5).any(axis=0)) + x0
    return max(0, int(cols[0]) - pad), max(0, y1 - pad), min(w, int(cols[-1]) + 1 + pad), min(h, y1 + pad)


def _far_backdrop(alpha: np.ndarray, radius: float) -> np.ndarray:
    """uint8 mask (255) of the pixels farther than ``radius`` px from every pixel of coverage
    >= 1/255 (the chamfer distance of ``cv2.distanceTransform``, 3x3 mask).

    A clearance of many pixels is measured on blocks of ``k`` px (``k`` = radius / 32, 1 to
    16: exact for a small radius): a block with any covered pixel counts as covered,
    and a block is far when its distance less a block's diagonal (1.5 blocks) still exceeds
    the radius, so no pixel nearer than ``radius`` counts as far; the far region loses a rim
    under 3 ``k`` px wide (the margin and a block's diagonal; 4-20 px of 60-260 px
    clearances on 30 random layouts against the exact transform), and the transform runs on ``k``² times
    fewer pixels.

    >>> a = np.zeros((400, 400), np.float32); a[180:220, 180:220] = 1
    >>> far = _far_backdrop(a, 100.0); bool(far[199, 60]), bool(far[199, 95]), bool(far[199, 70])
    (True, False, True)
    """
    free = cv2.compare(alpha, COVERED, cv2.CMP_LT)  # 255 where backdrop
    k = min(16, max(1, int(radius // 32)))  # 16: one covered pixel still averages to 1 over a block
    if k > 1:
        h, w = free.shape
        hp, wp = -(-h // k) * k, -(-w // k) * k
        covered = cv2.copyMakeBorder(255 - free, 0, hp - h, 0, wp - w, cv2.BORDER_CONSTANT, value=0)
        # area averaging by an integer factor: any covered pixel leaves a block > 0 (255 / k^2 >= 0.5)
        blocks = cv2.resize(covered, (wp // k, hp // k), interpolation=cv2.INTER_AREA)
        small = _far_backdrop((blocks > 0).astype(np.float32), radius / k + 1.5)
        return cv2.resize(small, (wp, hp), interpolation=cv2.INTER_NEAREST)[:h, :w]
    x, y, w, h = cv2.boundingRect(255 - free)
    if w == 0:
        return free
    # Each step of the chamfer path costs at least CHAMFER_STEP px, so a pixel more than
    # radius / CHAMFER_STEP px from the coverage's box along either axis is far: the transform
    # runs on that window alone (the same figures; the window holds every shortest path).
    m = int(radius / CHAMFER_STEP) + 2
    win = slice(max(0, y - m), y + h + m), slice(max(0, x - m), x + w + m)
    far = np.full(alpha.shape, 255, np.uint8)
    far[win] = cv2.compare(cv2.distanceTransform(free[win], cv2.DIST_L2, 3), radius, cv2.CMP_GT)
    return far


def frame_step(output_rgb: np.ndarray, output_alpha: np.ndarray, max_px: int, validate: bool = True) -> float:
    """A border drawn round the image, in grey levels: for each side the largest median
    step between neighbouring rows (or columns) of backdrop within ``max_px`` of the edge,
    then the smallest over the four sides. A frame shows on every side; a scene's own
    edge does not, and the product's outline is left out (steps next to product pixels,
    coverage >= 1/255, do not count; a depth where under a quarter of the side is
    backdrop is skipped).

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1].
    Reference: Google Merchant Center and eBay image rules (no borders).

    >>> rgb = np.full((60, 80, 3), 240, np.uint8); alpha = np.zeros((60, 80), np.float32)
    >>> frame_step(rgb, alpha, 8)
    0.0
    >>> rgb[:4], rgb[-4:], rgb[:, :4], rgb[:, -4:] = 90, 90, 90, 90
    >>> frame_step(rgb, alpha, 8)
    150.0
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate, False)
    if min(output_alpha.shape) < 4:
        raise ValueError(f"output_rgb must be at least 4 px on each side, got {output_alpha.shape}")
    depth = max(1, min(max_px, min(output_alpha.shape) // 2 - 1))
    product = output_alpha >= COVERED
    turns = (lambda a: a, lambda a: a[::-1], lambda a: a.swapaxes(0, 1), lambda a: a.swapaxes(0, 1)[::-1])
    per_side = []
    for turn in turns:
        band = turn(output_rgb)[: depth + 1].astype(np.int16)
        covered = turn(product)[: depth + 1]
        steps = np.abs(np.diff(band, axis=0)).max(axis=2)  # (depth, length)
        free = ~(covered[:-1] | covered[1:])
        best = 0.0
        for row, ok in zip(steps, free, strict=True):
            if ok.sum() >= 0.25 * ok.size:
                best = max(best, float(np.median(row[ok])))
        per_side.append(best)
    return min(per_side)


def aspect_error(size: tuple[int, int], ratios: tuple[tuple[int, int], ...]) -> float:
    """Relative distance of ``size`` (w, h) from the nearest allowed ``w:h`` ratio.

    >>> aspect_error((2000, 2000), ((1, 1), (4, 3))), round(aspect_error((1600, 900), ((4, 3),)), 4)
    (0.0, 0.3333)
    """
    if not ratios or size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"need a positive size and at least one ratio, got {size}, {ratios}")
    actual = size[0] / size[1]
    return min(abs(actual / (a / b) - 1.0) for a, b in ratios)


def strict_enlargement(th: QcThresholds, rules: MarketplaceRules) -> QcThresholds:
    """The thresholds the source-resolution check uses for a profile that refuses upscaled
    images (``rules.max_enlargement``): both enlargement limits become that factor, for
    classical and learned upscaling alike (a learned upscaler's pixels are upscaled too).

    >>> th = strict_enlargement(QcThresholds(), MarketplaceRules(name="g", max_enlargement=1.05))
    >>> th.source_enlargement.fail, th.source_enlargement_learned.fail
    (1.05, 1.05)
    """
    if rules.max_enlargement is None:
        return th
    strict = Limit(warn=rules.max_enlargement, fail=rules.max_enlargement)
    return th.model_copy(update={"source_enlargement": strict, "source_enlargement_learned": strict})


def _within(name: str, value: float, low: float, high: float, detail: str) -> CheckResult:
    ok = low <= value <= high
    return CheckResult(
        name=name,
        status="pass" if ok else "fail",
        value=float(value),
        detail=f"{detail} (allowed {low:g}..{high:g})",
        reason="" if ok else defect_of(name).name,
    )


def market_rule_checks(ev: QcEvidence, th: QcThresholds, rules: MarketplaceRules) -> list[CheckResult]:
    """The rules of ``rules`` that ``quality.checks.marketplace_checks`` does not grade."""
    h, w = ev.output_alpha.shape
    checks: list[CheckResult] = []
    if rules.fill_range is not None:
        fill = product_fill(ev.output_alpha, validate=False, box=product_box(ev))
        checks.append(_within("market.fill_range", fill, *rules.fill_range, "product box / canvas longest side"))
    if rules.min_shortest_side is not None:
        checks.append(
            rule("market.min_short_side", min(h, w), None, f"shortest side {min(h, w)} px", rules.min_shortest_side)
        )
    if rules.aspect_ratios is not None:
        allowed = ", ".join(f"{a}:{b}" for a, b in rules.aspect_ratios)
        checks.append(
            rule("market.aspect", aspect_error((w, h), rules.aspect_ratios), 0.01, f"{w}x{h} against {allowed}")
        )
    if rules.edge_clear:
        colour = rules.background_rgb or (255, 255, 255)
        product, other = edge_touch(
            ev.output_rgb, ev.output_alpha, colour, tolerance=th.purity_tolerance, validate=False
        )
        what = "product" if product else "shadow or residue" if other else ""
        checks.append(
            CheckResult(
                name="market.edge_clear",
                status="fail" if what else "pass",
                value=float(product + other),
                detail=f"{product} product and {other} off-white pixels on the frame's outermost ring",
                reason=f"{what} reaches the frame edge" if what else "",
            )
        )
    if rules.residue_free:
        colour = rules.background_rgb or (255, 255, 255)
        floating = getattr(ev, "shadow_style", None) == "floating"
        clearance = th.residue_clearance_floating if floating else th.residue_clearance
        share = background_residue(
            ev.output_rgb,
            ev.output_alpha,
            colour,
            levels=th.residue_levels,
            clearance=clearance,
            contact=th.residue_contact_zone,
            floating=floating,
            validate=False,
        )
        checks.append(
            graded(
                "market.residue",
                share,
                th.background_residue,
                f"share of the backdrop beyond {clearance:.0%} of the frame from the product "
                "and out of the shadow's zone under its base "
                f"that is more than {th.residue_levels} levels off white"
                if share is not None
                else "no backdrop far from the product",
            )
        )
    if rules.frameless:
        checks.append(
            graded(
                "market.border",
                frame_step(ev.output_rgb, ev.output_alpha, th.frame_max_px, validate=False),
                th.frame_step,
                f"step round all four sides within {th.frame_max_px} px of the edge, grey levels",
            )
        )
    return checks
