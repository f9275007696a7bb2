"""The gate's checks, one builder per family: each turns a metric into graded CheckResults.

quality/gate.py decides what runs once per SKU and what per profile; these functions only
measure and grade. Every check name belongs to a defect class (quality/defects.py) and a
non-passing result carries that class (or a more specific statement) as its ``reason``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from quality.artefacts import block_steps
from quality.cut import cut_quality
from quality.defects import defect_of
from quality.edges import edge_quality, estimate_old_background
from quality.exposure import product_exposure
from quality.fidelity import product_colour_fidelity
from quality.marketplace import background_purity, product_fill
from quality.shadow import ShadowGeometry, estimate_light_direction, shadow_geometry
from quality.split import split_share
from quality.thresholds import Limit, MarketplaceRules, QcThresholds, Status

if TYPE_CHECKING:
    from quality.gate import QcEvidence

RANK = {"pass": 0, "warn": 1, "fail": 2}


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
            "product-coloured regions left outside the cut, share of the product"
            if q.lost_part is not None
            else "no backdrop in the photo",
        ),
    ]
    checks.append(
        graded(
            "cut.split",
            split_share(ev.source_rgb, ev.source_mask, validate=False),
            th.cut_split,
            "share of the gap between the cut's pieces that the photo fills with product",
        )
    )
    if ev.old_background_known:
        checks.append(
            graded("source.cut_off", q.cut_off, th.source_cut_off, "share of the product outline on the photo's border")
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
    )
    thin = "" if fid.eroded else "product too thin to erode: edge pixels included"
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
    (an enlarged product's edge is as soft as the source's, times the enlargement)."""
    old_bg = estimate_old_background(ev.source_rgb, ev.source_mask, validate=False) if ev.old_background_known else None
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
    )
    s = max(1.0, enlargement(ev))
    checks = [
        graded(
            "edge.halo",
            e.halo_share,
            th.halo_share,
            f"mean excursion {e.halo_excursion:+.1f} L*, width {e.halo_width_px:.1f} px",
        ),
        graded(
            "edge.fringe",
            e.fringe_share,
            th.fringe_share,
            f"old backdrop weight {e.fringe_weight:.2f}, width {e.fringe_width_px:.1f} px"
            if e.fringe_share is not None
            else "not measurable: old backdrop unknown or too close in colour",
        ),
        graded(
            "edge.transition_width",
            e.transition_width_px / s,
            th.edge_transition_px,
            f"{e.transition_width_px:.1f} canvas px at {s:.1f}x enlargement",
        ),
        graded(
            "edge.roughness",
            e.roughness_px / s,
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
        "edge.fringe_width_px": e.fringe_width_px,
    }
    return checks, metrics


def exposure_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], dict[str, float]]:
    """Clipping the render added (the source's own clipping is not the render's fault);
    the absolute Laplacian is a figure, not a check: smooth products read low however sharp."""
    kw = dict(
        analysis_side=th.exposure_analysis_side,
        min_texture_std=th.blur_min_texture_std,
        clip_high=th.clip_high,
        clip_low=th.clip_low,
        validate=False,
    )
    out = product_exposure(ev.output_rgb, ev.output_alpha, **kw)
    src = product_exposure(ev.source_rgb, ev.source_mask, **kw)
    checks = [
        graded(
            "exposure.clipped_highlights",
            out.clipped_highlights - src.clipped_highlights,
            th.clipped_highlights,
            f"{out.clipped_highlights:.1%} of the product blown out, {src.clipped_highlights:.1%} in the photo",
        ),
        graded(
            "exposure.clipped_shadows",
            out.clipped_shadows - src.clipped_shadows,
            th.clipped_shadows,
            f"{out.clipped_shadows:.1%} of the product crushed, {src.clipped_shadows:.1%} in the photo",
        ),
    ]
    metrics = {"exposure.mean_luma": out.mean_luma, "exposure.texture_std": out.texture_std}
    if out.laplacian_variance is not None:
        metrics["sharpness.laplacian_variance"] = out.laplacian_variance
    return checks, metrics


def shadow_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], ShadowGeometry]:
    light, estimated = ev.light_direction_deg, False
    if light is None:  # generated scene: compare with the backdrop's shading, if it says anything
        est = estimate_light_direction(ev.output_rgb, ev.output_alpha, validate=False)
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
        plausible_frac=th.shadow_plausible_frac,
        validate=False,
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
    elif light is not None:
        source = "backdrop-shading estimate (warn at most)" if estimated else "stated"
        checks.append(
            graded(
                "shadow.direction",
                geo.direction_error_deg,
                th.shadow_direction_error_deg,
                f"shadow implies light at {geo.implied_light_deg:.0f} deg, {source} "
                f"{light:.0f} deg (plausible spread {geo.direction_spread_deg:.0f} deg)",
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
            float((edge >= 0.5).sum()) / max(1, int((a >= 0.5).sum()) ** 0.5),
            th.framing_cut_off,
            "product pixels on the canvas border per product width",
        )
    ]
    if ev.shipped_rgb is not None:
        checks.append(
            graded(
                "artefacts.jpeg",
                block_steps(ev.shipped_rgb, ev.output_rgb, a),
                th.jpeg_block_steps,
                "steps between the encoder's 8x8 blocks on the product, grey levels",
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
        fill = product_fill(ev.output_alpha, validate=False)
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
