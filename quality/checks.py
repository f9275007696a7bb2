"""The gate's checks, one builder per family: each turns a metric into graded CheckResults.

quality/gate.py decides what runs once per SKU and what per profile; these functions only
measure and grade. Every check name belongs to a defect class (quality/defects.py) and a
non-passing result carries that class (or a more specific statement) as its ``reason``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from quality._validate import bbox
from quality.artefacts import TILE_STEP, tile_share
from quality.cut import cut_quality
from quality.defects import defect_of
from quality.edges import edge_quality, transition_width
from quality.enclosure import enclosed_share
from quality.exposure import clipped_shares, product_exposure
from quality.fidelity import product_colour_fidelity
from quality.marketplace import background_purity, product_fill
from quality.old_backdrop import local_old_backdrop
from quality.shadow import ShadowGeometry, estimate_light_direction, shadow_geometry
from quality.shadow import work_grid as _reduce
from quality.surround import surround_backdrop_share
from quality.surround import work_grid as source_grid
from quality.thresholds import Limit, MarketplaceRules, QcThresholds, Status

if TYPE_CHECKING:
    from quality.gate import QcEvidence

RANK = {"pass": 0, "warn": 1, "fail": 2}
# 90 % -> 10 % width of a step blurred by a Gaussian, per sigma (2 x 1.2816, the normal's
# 90th percentile): what the compositor's feather (imaging/compose.py) adds to every edge.
FEATHER_WIDTH = 2.5631
T = TypeVar("T")


class CheckResult(BaseModel):
    """One graded check. ``value`` None means not measured; ``detail`` says why.
    ``reason``: for warn/fail, the defect a person would name (quality/defects.py)."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    value: float | None = None
    threshold: Limit | None = None
    detail: str = ""
    reason: str = ""


def graded(
    name: str, value: float | None, limit: Limit, detail: str = "", cap: Status = "fail", reason: str = ""
) -> CheckResult:
    if value is None:
        return CheckResult(name=name, status="pass", threshold=limit, detail=detail or "not measurable")
    status = limit.status(value)
    if RANK[status] > RANK[cap]:
        status = cap
    why = (reason or defect_of(name).name) if status != "pass" else ""
    return CheckResult(name=name, status=status, value=float(value), threshold=limit, detail=detail, reason=why)


def rule(
    name: str, value: float | None, maximum: float | None, detail: str, minimum: float | None = None
) -> CheckResult:
    """A hard marketplace rule: pass or fail, no warn band. Without a value (e.g. QC runs
    before export encoding) it passes with a "not checked" detail; export re-checks."""
    if value is None:
        return CheckResult(name=name, status="pass", detail=f"not checked: {detail}")
    limit = (
        Limit(warn=minimum, fail=minimum, worse="lower") if minimum is not None else Limit(warn=maximum, fail=maximum)
    )
    return graded(name, value, limit, detail)


def confidence_check(confidence: float, th: QcThresholds) -> CheckResult:
    """The segmenter's own certainty about its cut (``imaging.segment.mask_confidence`` of its
    raw map), which tasks/score.py and bench/qc_calibration.py add to a SKU's checks: a map
    unsure over much of the product goes to review (``segment_confidence_min``)."""
    floor = th.segment_confidence_min
    return graded(
        "segment.confidence",
        confidence,
        Limit(warn=floor, fail=floor, worse="lower"),
        "the segmenter's certainty about its cut (imaging/segment.py)",
    )


def share_lower_bound(share: float | None, n: int, z: float) -> float | None:
    """The Wilson score interval's lower end for ``share`` observed on ``n`` samples, ``z``
    standard errors below: about ``share`` on thousands of samples, well under it on a
    handful (5 of 11 reads 0.31 at z = 1; 6 of 6, 0.86). None stays None.

    >>> [round(share_lower_bound(k / n, n, 1.0), 4) for k, n in ((5, 11), (6, 6), (1200, 3000))]
    [0.3145, 0.8571, 0.3911]
    """
    if share is None or n <= 0:
        return share
    q = z * z / n
    centre = share + q / 2.0
    spread = z * math.sqrt(share * (1.0 - share) / n + q / (4.0 * n))
    return max(0.0, (centre - spread) / (1.0 + q))


_MEMO_LOCK = threading.Lock()


def memo(ev: QcEvidence, key: object, make: Callable[[], T]) -> T:
    """What ``make()`` measures on one render's evidence, measured once: the checks of a
    render (and of its SKU) share intermediates such as the product's box and the reduced
    canvas instead of each passing over the full-resolution arrays again. Thread-safe:
    ``quality.gate.score_sku`` runs the check families side by side, and a family that
    asks for what another is measuring waits for it rather than measuring it twice."""
    state = ev.__dict__
    cache = state.get("_memo")
    if cache is None or key not in cache:
        with _MEMO_LOCK:  # evidence unpickled from before the field existed has no _memo
            cache = state.setdefault("_memo", {})
            lock = state.setdefault("_memo_locks", {}).setdefault(key, threading.RLock())
        with lock:
            if key not in cache:
                cache[key] = make()
    return cache[key]


def product_box(ev: QcEvidence) -> tuple[int, int, int, int]:
    """``bbox(output_alpha)``: the product's box on the canvas (alpha >= 0.5)."""
    return memo(ev, "box", lambda: bbox(ev.output_alpha))


def source_box(ev: QcEvidence) -> tuple[int, int, int, int]:
    """``bbox(source_mask)``: the product's box on the photo (mask >= 0.5)."""
    return memo(ev, "source_box", lambda: bbox(ev.source_mask))


def product_pixels(ev: QcEvidence) -> int:
    """Canvas pixels of the product (alpha >= 0.5), counted inside its box."""

    def count() -> int:
        x0, y0, x1, y1 = product_box(ev)
        return cv2.countNonZero(cv2.compare(ev.output_alpha[y0:y1, x0:x1], 0.5, cv2.CMP_GE))

    return memo(ev, "n_product", count)


def work_grid(ev: QcEvidence, side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The canvas (rgb, alpha) reduced to ``side`` px (``quality.shadow.work_grid``): the
    shadow check and the batch features read the same grid."""
    return memo(ev, ("work", side), lambda: _reduce(ev.output_rgb, ev.output_alpha, side))


def enlargement(ev: QcEvidence) -> float:
    """Canvas px per source px of the product (the placement's linear scale)."""
    return math.sqrt(abs(float(np.linalg.det(ev.placement[:, :2]))))


def cut_checks(ev: QcEvidence, th: QcThresholds) -> list[CheckResult]:
    """Mask vs photo, once per SKU: background inside, lost parts, fragments, cut-off photo."""
    q = cut_quality(
        ev.source_rgb,
        ev.source_mask,
        work_side=th.cut_work_side,
        min_delta=th.cut_min_delta,
        contrast=th.cut_contrast,
        near_frac=th.cut_near_frac,
        validate=False,
        box=source_box(ev),
    )
    flat = (
        f"not measurable: the product looks like its backdrop ({q.backdrop_like_share:.0%} of it)"
        if q.backdrop_like_share is not None
        else "no backdrop in the photo"
    )
    checks = [
        graded(
            "cut.background_inside",
            q.background_inside,
            th.cut_background_inside,
            "enclosed backdrop-coloured regions, share of the product" if q.background_inside is not None else flat,
        ),
        graded(
            "cut.background_attached",
            q.background_attached,
            th.cut_background_attached,
            "backdrop-coloured regions on the outline, share of the product"
            if q.background_attached is not None
            else flat,
        ),
        graded("cut.fragments", q.fragments, th.cut_fragments, "detached backdrop pieces, share of the product"),
        graded(
            "cut.lost_part",
            q.lost_part,
            th.cut_lost_part,
            "product-coloured regions left outside the cut, share of the product" if q.lost_part is not None else flat,
        ),
    ]
    checks.append(
        graded(
            "cut.split",
            q.split,
            th.cut_split,
            "share of the gap between the cut's pieces that the photo fills with product",
        )
    )
    if ev.old_background_known:
        checks.append(
            graded("source.cut_off", q.cut_off, th.source_cut_off, "share of the product outline on the photo's border")
        )
        rgb, mask = source_grid(ev.source_rgb, ev.source_mask)  # reduced once for both measures
        surround = surround_backdrop_share(rgb, mask)
        checks.append(
            graded(
                "cut.wrong_object",
                surround,
                th.cut_surround_backdrop,
                "share of the band round the cut in the colours of the photo's border (the backdrop), "
                "less how much more of the cut's own inside is"
                if surround is not None
                else "not measurable: the photo's border is mostly product",
            )
        )
        enclosed = enclosed_share(rgb, mask)
        checks.append(
            graded(
                "cut.enclosed",
                enclosed,
                th.cut_enclosed,
                "share of the rays out of the cut that meet a long edge before the photo's border"
                if enclosed is not None
                else "not measurable: a textured backdrop, or the photo's border mostly product",
            )
        )
    return checks


def resolution_check(ev: QcEvidence, th: QcThresholds, profile: str) -> CheckResult:
    s = enlargement(ev)
    limit = th.source_enlargement_learned if ev.upscaled else th.source_enlargement
    how = "a learned upscaler" if ev.upscaled else "classical resampling"
    return graded(
        "source.resolution",
        s,
        limit,
        f"product enlarged {s:.1f}x by {how}",
        reason=f"source too small for {profile}: needs {s:.1f}x enlargement",
    )


def colour_checks(ev: QcEvidence, th: QcThresholds) -> list[CheckResult]:
    fid = product_colour_fidelity(
        ev.source_rgb,
        ev.source_mask,
        ev.output_rgb,
        ev.output_alpha,
        ev.placement,
        pixel_threshold=th.fidelity_pixel_delta_e,
        erode_px=th.fidelity_erode_px,
        max_side=th.analysis_max_side,
        min_texture_std=th.sharpness_min_texture_std,
        validate=False,
        source_box=source_box(ev),
    )
    thin = "" if fid.eroded else "product too thin to erode: edge pixels included"
    if not fid.opaque:
        thin = "soft cut: no pixel fully covered, its pixels of coverage >= 0.5 read"
    return [
        graded("colour.delta_e_mean", fid.delta_e_mean, th.delta_e_mean, thin),
        graded("colour.delta_e_p95", fid.delta_e_p95, th.delta_e_p95, thin),
        graded(
            "colour.delta_e_share_above",
            fid.share_above,
            th.delta_e_share_above,
            f"share of interior pixels with dE00 > {th.fidelity_pixel_delta_e:g}",
        ),
        graded("colour.delta_e_of_means", fid.delta_e_of_means, th.delta_e_of_means),
        graded("placement.iou", fid.placement_iou, th.placement_iou),
        graded(
            "sharpness.vs_source",
            fid.sharpness_ratio,
            th.sharpness_ratio,
            "LoG variance, output / source at the source's scale"
            if fid.sharpness_ratio is not None
            else "not measurable: flat product interior",
        ),
    ]


def edge_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], dict[str, float]]:
    """Halo and fringe on the canvas; width and roughness judged at the source's own scale
    (an enlarged product's edge is as soft as the source's, times the enlargement), the
    width against the photo's own cut: how much softer the canvas's edge is than the
    source mask's (a soft mask is the photo's, not the render's)."""
    old_bg = (
        local_old_backdrop(ev.source_rgb, ev.source_mask, ev.placement, validate=False)
        if ev.old_background_known
        else None
    )
    s = enlargement(ev)
    e = edge_quality(
        ev.output_rgb,
        ev.output_alpha,
        old_background_rgb=old_bg,
        profile_px=th.edge_profile_px,
        rim_px=th.edge_rim_px,
        ref_px=th.edge_ref_px,
        halo_delta_l=th.halo_delta_l,
        fringe_weight=th.fringe_weight,
        fringe_min_separation=th.fringe_min_separation,
        smooth_px=th.edge_smooth_px,
        validate=False,
        box=product_box(ev),
        scale=s,
    )
    big = max(1.0, s)
    width = e.transition_width_px / big  # source px (canvas px where the canvas shrinks)
    photo = (transition_width(ev.source_mask, profile_px=th.edge_profile_px) or 0.0) * min(1.0, s)
    feather = FEATHER_WIDTH * ev.feather_px / big  # the compositor's own, on purpose: not a defect
    softer = math.sqrt(max(width**2 - photo**2 - feather**2, 0.0))
    checks = [
        graded(
            "edge.halo",
            e.halo_share,
            th.halo_share,
            f"mean excursion {e.halo_excursion:+.1f} L*, width {e.halo_width_px:.1f} px",
        ),
        graded(
            "edge.fringe",
            share_lower_bound(e.fringe_share, e.fringe_measured, th.fringe_confidence_z),
            th.fringe_share,
            f"{e.fringe_share:.0%} of {e.fringe_measured} measurable edge profiles (judged at "
            f"{th.fringe_confidence_z:g} standard error below), old backdrop weight {e.fringe_weight:.2f}, "
            f"width {e.fringe_width_px:.1f} px"
            if e.fringe_share is not None
            else "not measurable: old backdrop unknown or too close in colour",
        ),
        graded(
            "edge.transition_width",
            softer,
            th.edge_transition_px,
            f"edge {width:.1f} px wide against the photo's cut {photo:.1f} px and the feather's "
            f"{feather:.1f} px (source px; {e.transition_width_px:.1f} canvas px at {s:.1f}x enlargement)",
        ),
        graded(
            "edge.roughness",
            e.roughness_px / big,
            th.edge_roughness_px,
            f"{e.roughness_px:.2f} canvas px at {s:.1f}x enlargement",
        ),
    ]
    metrics = {
        "edge.n_profiles": e.n_profiles,
        "edge.halo_excursion": e.halo_excursion,
        "edge.halo_width_px": e.halo_width_px,
        "edge.halo_product_side": e.halo_product_side_share,
        "edge.fringe_weight": e.fringe_weight,
        "edge.fringe_measured": e.fringe_measured,
        "edge.fringe_width_px": e.fringe_width_px,
        "edge.width_px": width,
        "edge.photo_width_px": photo,
    }
    if e.fringe_share is not None:
        metrics["edge.fringe_share"] = e.fringe_share  # as read; edge.fringe is its lower bound
    return checks, metrics


def exposure_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], dict[str, float]]:
    """Clipping the render added (the source's own clipping is not the render's fault);
    the absolute Laplacian is a figure, not a check: smooth products read low however sharp."""
    out = product_exposure(
        ev.output_rgb,
        ev.output_alpha,
        analysis_side=th.exposure_analysis_side,
        min_texture_std=th.blur_min_texture_std,
        clip_high=th.clip_high,
        clip_low=th.clip_low,
        validate=False,
        box=product_box(ev),
    )
    src_high, src_low = clipped_shares(
        ev.source_rgb, ev.source_mask, clip_high=th.clip_high, clip_low=th.clip_low, box=source_box(ev)
    )
    checks = [
        graded(
            "exposure.clipped_highlights",
            out.clipped_highlights - src_high,
            th.clipped_highlights,
            f"{out.clipped_highlights:.1%} of the product blown out, {src_high:.1%} in the photo",
        ),
        graded(
            "exposure.clipped_shadows",
            out.clipped_shadows - src_low,
            th.clipped_shadows,
            f"{out.clipped_shadows:.1%} of the product crushed, {src_low:.1%} in the photo",
        ),
    ]
    metrics = {"exposure.mean_luma": out.mean_luma, "exposure.texture_std": out.texture_std}
    if out.laplacian_variance is not None:
        metrics["sharpness.laplacian_variance"] = out.laplacian_variance
    return checks, metrics


def shadow_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], ShadowGeometry | None]:
    """The shadow against the light, and the contact under the base; None for the geometry
    of a cut-out on transparency, which has no backdrop to measure a shadow on."""
    if not ev.backdrop:
        return [
            CheckResult(name="shadow.direction", status="pass", detail="not checked: a cut-out on transparency")
        ], None
    light, estimated = ev.light_direction_deg, False
    if light is None:  # generated scene: compare with the backdrop's shading, if it says anything
        est = estimate_light_direction(
            ev.output_rgb,
            ev.output_alpha,
            work_side=th.shadow_work_side,
            validate=False,
            work=work_grid(ev, th.shadow_work_side),
        )
        if est.strength >= th.light_estimate_min_strength and est.r2 >= th.light_estimate_min_r2:
            light, estimated = est.light_direction_deg, True
    geo = shadow_geometry(
        ev.output_rgb,
        ev.output_alpha,
        background_rgb=ev.background_rgb,
        light_direction_deg=light,
        work_side=th.shadow_work_side,
        noise_floor=th.shadow_noise_floor,
        min_mass=th.shadow_min_mass,
        contact_depth_frac=th.contact_depth_frac,
        min_lean_mass=th.shadow_min_lean_mass,
        validate=False,
        work=work_grid(ev, th.shadow_work_side),
        box=product_box(ev),
    )
    checks = []
    if ev.shadow_style == "none":
        checks.append(CheckResult(name="shadow.direction", status="pass", detail="no shadow drawn (style 'none')"))
    elif not geo.visible:
        status: Status = "warn" if ev.shadow_style in ("soft", "hard", "floating") else "pass"
        checks.append(
            CheckResult(
                name="shadow.direction",
                status=status,
                detail=f"no visible shadow (darkening mass {geo.darkening_mass:.4f})",
                reason="no visible shadow" if status == "warn" else "",
            )
        )
    elif light is not None and geo.direction_error_deg is None:
        checks.append(
            CheckResult(
                name="shadow.direction",
                status="pass",
                detail="not measurable: the shadow is even all round or lies under the base only (it says "
                f"nothing of the light; one-sided darkening {geo.lean * geo.side_mass:.4f})",
            )
        )
    elif light is not None:
        source = "backdrop-shading estimate (warn at most)" if estimated else "stated"
        checks.append(
            graded(
                "shadow.direction",
                geo.direction_error_deg,
                th.shadow_direction_error_deg,
                f"shadow implies light at {geo.implied_light_deg:.0f} deg, {source} "
                f"{light:.0f} deg (the darkening leans {geo.lean:.0%} to one side)",
                cap="warn" if estimated else "fail",
            )
        )
    else:
        checks.append(
            CheckResult(
                name="shadow.direction",
                status="pass",
                detail="not checked: no stated light, and the backdrop shading is too weak to estimate one",
            )
        )
    if ev.grounded and ev.shadow_style == "none":
        checks.append(
            CheckResult(
                name="shadow.contact",
                status="pass",
                detail="not checked: the template asked for no shadow (style 'none')",
            )
        )
    elif ev.grounded:
        checks.append(
            graded(
                "shadow.contact",
                geo.contact_darkening,
                th.contact_darkening,
                "darkening under the base"
                if geo.contact_darkening is not None
                else "not measurable: the base touches the canvas bottom",
            )
        )
    return checks, geo


def framing_checks(ev: QcEvidence, th: QcThresholds) -> list[CheckResult]:
    """The product must not run off the canvas, and the shipped file must not be blocky."""
    a = ev.output_alpha
    edge = np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])
    checks = [
        graded(
            "framing.cut_off",
            float((edge >= 0.5).sum()) / max(1, product_pixels(ev) ** 0.5),
            th.framing_cut_off,
            "product pixels on the canvas border per product width",
        )
    ]
    if ev.jpeg_quality is not None:
        checks.append(
            graded(
                "artefacts.jpeg_quality",
                ev.jpeg_quality,
                th.jpeg_quality_floor,
                f"encoded at JPEG quality {ev.jpeg_quality:.0f} (the IJG quality its luma table matches)",
            )
        )
    shipped = ev.shipped_grey if ev.shipped_grey is not None else ev.shipped_rgb
    if shipped is not None:
        checks.append(
            graded(
                "artefacts.jpeg",
                tile_share(shipped, ev.output_rgb, a, validate=False),
                th.jpeg_tiles,
                f"share of the encoder's 8x8 block edges on the product that step by > {TILE_STEP} grey levels",
            )
        )
    return checks


def marketplace_checks(ev: QcEvidence, th: QcThresholds, rules: MarketplaceRules) -> list[CheckResult]:
    checks = []
    h, w = ev.output_alpha.shape
    if rules.background_rgb is not None:
        pur = background_purity(
            ev.output_rgb,
            ev.output_alpha,
            rules.background_rgb,
            tolerance=th.purity_tolerance,
            border_px=th.border_px,
            validate=False,
        )
        want = ",".join(str(c) for c in rules.background_rgb)
        checks += [
            graded(
                "market.border_purity",
                pur.border_impure_share,
                th.border_impure_share,
                f"outer {th.border_px} px not exactly {want}; max deviation {pur.max_deviation}",
            ),
            graded(
                "market.background_purity",
                pur.background_impure_share,
                th.background_impure_share,
                f"backdrop pixels not {want} (shadow included)",
            ),
        ]
    if rules.fill_target is not None:
        fill = product_fill(ev.output_alpha, validate=False, box=product_box(ev))
        checks.append(
            graded(
                "market.fill",
                abs(fill - rules.fill_target),
                th.fill_deviation,
                f"fill {fill:.3f} vs target {rules.fill_target:.2f}",
            )
        )
    if rules.min_longest_side is not None:
        checks.append(rule("market.min_size", max(h, w), None, f"longest side {max(h, w)} px", rules.min_longest_side))
    if rules.max_longest_side is not None:
        checks.append(rule("market.max_size", max(h, w), rules.max_longest_side, f"longest side {max(h, w)} px"))
    if rules.max_megapixels is not None:
        checks.append(rule("market.megapixels", h * w / 1e6, rules.max_megapixels, f"{h * w / 1e6:.2f} MP"))
    if rules.require_srgb:
        srgb = None if ev.icc_is_srgb is None else float(ev.icc_is_srgb)
        what = (
            "no encoded file to read"
            if srgb is None
            else "the file's embedded profile is sRGB"
            if ev.icc_is_srgb
            else "the file carries no sRGB profile"
        )
        checks.append(rule("market.srgb", srgb, None, what, 1.0))
    if rules.max_file_bytes is not None:
        checks.append(
            rule(
                "market.file_size",
                ev.encoded_bytes,
                rules.max_file_bytes,
                f"{ev.encoded_bytes} bytes" if ev.encoded_bytes else "no encoded size given",
            )
        )
    return checks
