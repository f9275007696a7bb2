"""The quality gate: every per-image check in one report, and the batch consistency pass.

``score_image`` runs the metrics of this package on one composite and grades each
against ``QcThresholds`` (pass / warn / fail, for green / amber / red). ``score_batch``
compares the per-image features of a batch. No I/O, no Prefect: tasks/ wraps these.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from quality._validate import check_pair
from quality.consistency import BatchConsistency, ImageFeatures, batch_outliers, image_features
from quality.edges import edge_quality, estimate_old_background
from quality.exposure import product_exposure
from quality.fidelity import placement_matrix, product_colour_fidelity
from quality.marketplace import background_purity, product_fill
from quality.shadow import ShadowGeometry, estimate_light_direction, shadow_geometry
from quality.thresholds import Limit, MarketplaceRules, QcThresholds, Status

__all__ = ["QcEvidence", "CheckResult", "QcReport", "score_image", "score_batch"]

_RANK = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class QcEvidence:
    """Everything the gate needs about one composite (validated on construction).

    ``placement``: source pixel -> canvas pixel, a 2x3 ``cv2.warpAffine`` matrix
    (``imaging.types.Placement.matrix()``) or ``(scale, offset_x, offset_y)`` in the
    pixel-corner convention of imaging/types.py. ``background_rgb``: the studio
    backdrop drawn, or None for generated scenes (and gradients: estimated locally).
    ``shadow_style``/``light_direction_deg``: what the compositor was asked to draw
    (None: unknown, e.g. generated). ``encoded_bytes``: size of the encoded file;
    ``icc_is_srgb``: whether its embedded profile is sRGB (see
    ``quality.marketplace.icc_description``); None when not encoded yet.
    """

    source_rgb: np.ndarray  # (H, W, 3) uint8 sRGB, the original photo
    source_mask: np.ndarray  # (H, W) float [0, 1], the product on the source grid
    output_rgb: np.ndarray  # (h, w, 3) uint8 sRGB canvas
    output_alpha: np.ndarray  # (h, w) float [0, 1], product coverage on the canvas
    placement: np.ndarray | tuple[float, float, float]
    background_rgb: tuple[int, int, int] | None = None
    shadow_style: Literal["soft", "hard", "floating", "none"] | None = None
    light_direction_deg: float | None = None
    grounded: bool = True
    encoded_bytes: int | None = None
    icc_is_srgb: bool | None = None
    old_background_known: bool = True  # False for sources that came cut out (own alpha): no fringe to find

    def __post_init__(self) -> None:
        # Checked once here; the metrics are then called with validate=False.
        src, mask = check_pair("source_rgb", self.source_rgb, "source_mask", self.source_mask, True)
        out, alpha = check_pair("output_rgb", self.output_rgb, "output_alpha", self.output_alpha, True)
        for name, value in (("source_rgb", src), ("source_mask", mask), ("output_rgb", out),
                            ("output_alpha", alpha), ("placement", placement_matrix(self.placement))):
            object.__setattr__(self, name, value)  # normalised: float32 masks, 2x3 matrix
        if self.shadow_style not in (None, "soft", "hard", "floating", "none"):
            raise ValueError(f"unknown shadow_style {self.shadow_style!r}")
        if self.light_direction_deg is not None and not np.isfinite(self.light_direction_deg):
            raise ValueError("light_direction_deg must be finite")
        if self.encoded_bytes is not None and self.encoded_bytes <= 0:
            raise ValueError(f"encoded_bytes must be > 0, got {self.encoded_bytes}")


class CheckResult(BaseModel):
    """One graded check. ``value`` None means not measured; ``detail`` says why."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    value: float | None = None
    threshold: Limit | None = None
    detail: str = ""


class QcReport(BaseModel):
    """The gate's verdict on one image; ``metrics`` is flat and JSON-safe."""

    status: Status
    checks: list[CheckResult]
    metrics: dict[str, float]
    failing: list[str]
    warnings: list[str]
    features: dict[str, float] = Field(description="ImageFeatures for score_batch")
    thresholds_version: str
    profile: str


def _graded(name: str, value: float | None, limit: Limit, detail: str = "", cap: Status = "fail") -> CheckResult:
    if value is None:
        return CheckResult(name=name, status="pass", threshold=limit, detail=detail or "not measurable")
    status = limit.status(value)
    if _RANK[status] > _RANK[cap]:
        status = cap
    return CheckResult(name=name, status=status, value=float(value), threshold=limit, detail=detail)


def _rule(
    name: str, value: float | None, maximum: float | None, detail: str, minimum: float | None = None
) -> CheckResult:
    """A hard marketplace rule: pass or fail, no warn band. Without a value (e.g. QC runs
    before export encoding) it passes with a "not checked" detail; export re-checks."""
    if value is None:
        return CheckResult(name=name, status="pass", detail=f"not checked: {detail}")
    if minimum is not None:
        limit = Limit(warn=minimum, fail=minimum, worse="lower")
    else:
        limit = Limit(warn=maximum, fail=maximum)
    return CheckResult(name=name, status=limit.status(value), value=float(value), threshold=limit, detail=detail)


def _shadow_checks(ev: QcEvidence, th: QcThresholds) -> tuple[list[CheckResult], ShadowGeometry]:
    light, estimated = ev.light_direction_deg, False
    if light is None:  # generated scene: compare with the backdrop's shading, if it says anything
        est = estimate_light_direction(ev.output_rgb, ev.output_alpha, validate=False)
        if est.strength >= th.light_estimate_min_strength and est.r2 >= th.light_estimate_min_r2:
            light, estimated = est.light_direction_deg, True
    geo = shadow_geometry(
        ev.output_rgb, ev.output_alpha, background_rgb=ev.background_rgb,
        light_direction_deg=light, work_side=th.shadow_work_side,
        noise_floor=th.shadow_noise_floor, min_mass=th.shadow_min_mass,
        contact_depth_frac=th.contact_depth_frac, plausible_frac=th.shadow_plausible_frac, validate=False,
    )
    checks = []
    if ev.shadow_style == "none":
        checks.append(CheckResult(name="shadow.direction", status="pass", detail="no shadow drawn (style 'none')"))
    elif not geo.visible:
        status: Status = "warn" if ev.shadow_style in ("soft", "hard", "floating") else "pass"
        checks.append(CheckResult(name="shadow.direction", status=status,
                                  detail=f"no visible shadow (darkening mass {geo.darkening_mass:.4f})"))
    elif light is not None:
        source = "backdrop-shading estimate (warn at most)" if estimated else "stated"
        checks.append(_graded("shadow.direction", geo.direction_error_deg, th.shadow_direction_error_deg,
                              f"shadow implies light at {geo.implied_light_deg:.0f} deg, {source} "
                              f"{light:.0f} deg (plausible spread {geo.direction_spread_deg:.0f} deg)",
                              cap="warn" if estimated else "fail"))
    else:
        checks.append(CheckResult(name="shadow.direction", status="pass",
                                  detail="not checked: no stated light, and the backdrop shading "
                                  "is too weak to estimate one"))
    if ev.grounded and ev.shadow_style == "none":
        checks.append(CheckResult(name="shadow.contact", status="pass",
                                  detail="not checked: the template asked for no shadow (style 'none')"))
    elif ev.grounded:
        checks.append(_graded("shadow.contact", geo.contact_darkening, th.contact_darkening,
                              "darkening under the base" if geo.contact_darkening is not None
                              else "not measurable: the base touches the canvas bottom"))
    return checks, geo


def score_image(evidence: QcEvidence, thresholds: QcThresholds, profile_rules: MarketplaceRules) -> QcReport:
    """Grade one composite: colour fidelity, edges, shadow, sharpness/exposure, marketplace.

    Returns a ``QcReport`` whose ``status`` is the worst check's; ``failing`` and
    ``warnings`` list the check names at fail / warn. Thresholds are
    ``thresholds.for_profile(profile_rules.name)``. See tests/quality/test_gate.py.
    """
    ev, th, rules = evidence, thresholds.for_profile(profile_rules.name), profile_rules
    metrics: dict[str, float] = {}

    fid = product_colour_fidelity(
        ev.source_rgb, ev.source_mask, ev.output_rgb, ev.output_alpha, ev.placement,
        pixel_threshold=th.fidelity_pixel_delta_e, erode_px=th.fidelity_erode_px,
        max_side=th.analysis_max_side, min_texture_std=th.sharpness_min_texture_std, validate=False,
    )
    thin = "" if fid.eroded else "product too thin to erode: edge pixels included"
    checks = [
        _graded("colour.delta_e_mean", fid.delta_e_mean, th.delta_e_mean, thin),
        _graded("colour.delta_e_p95", fid.delta_e_p95, th.delta_e_p95, thin),
        _graded("colour.delta_e_share_above", fid.share_above, th.delta_e_share_above,
                f"share of interior pixels with dE00 > {th.fidelity_pixel_delta_e:g}"),
        _graded("colour.delta_e_of_means", fid.delta_e_of_means, th.delta_e_of_means),
        _graded("placement.iou", fid.placement_iou, th.placement_iou),
        _graded("sharpness.vs_source", fid.sharpness_ratio, th.sharpness_ratio,
                "" if fid.sharpness_ratio is not None else "not measurable: flat product interior"),
    ]
    metrics.update({"colour.n_pixels": fid.n_pixels, "colour.working_scale": fid.working_scale})

    old_bg = (estimate_old_background(ev.source_rgb, ev.source_mask, validate=False)
              if ev.old_background_known else None)
    edge = edge_quality(
        ev.output_rgb, ev.output_alpha, old_background_rgb=old_bg, profile_px=th.edge_profile_px,
        rim_px=th.edge_rim_px, ref_px=th.edge_ref_px, halo_delta_l=th.halo_delta_l,
        fringe_weight=th.fringe_weight, fringe_min_separation=th.fringe_min_separation, smooth_px=th.edge_smooth_px,
        validate=False,
    )
    checks += [
        _graded("edge.halo", edge.halo_share, th.halo_share,
                f"mean excursion {edge.halo_excursion:+.1f} L*, width {edge.halo_width_px:.1f} px"),
        _graded("edge.fringe", edge.fringe_share, th.fringe_share,
                f"old backdrop weight {edge.fringe_weight:.2f}, width {edge.fringe_width_px:.1f} px"
                if edge.fringe_share is not None else "not measurable: old backdrop unknown or too close in colour"),
        _graded("edge.transition_width", edge.transition_width_px, th.edge_transition_px),
        _graded("edge.roughness", edge.roughness_px, th.edge_roughness_px),
    ]
    metrics.update({"edge.n_profiles": edge.n_profiles, "edge.halo_excursion": edge.halo_excursion,
                    "edge.halo_width_px": edge.halo_width_px, "edge.fringe_weight": edge.fringe_weight,
                    "edge.fringe_width_px": edge.fringe_width_px})

    shadow_checks, geo = _shadow_checks(ev, th)
    checks += shadow_checks
    metrics.update({"shadow.darkening_mass": geo.darkening_mass, "shadow.match": geo.match,
                    "shadow.direction_spread_deg": geo.direction_spread_deg})
    if geo.implied_light_deg is not None:
        metrics["shadow.implied_light_deg"] = geo.implied_light_deg

    exp = product_exposure(
        ev.output_rgb, ev.output_alpha, analysis_side=th.exposure_analysis_side,
        min_texture_std=th.blur_min_texture_std, clip_high=th.clip_high, clip_low=th.clip_low, validate=False,
    )
    checks += [
        _graded("sharpness.laplacian_variance", exp.laplacian_variance, th.blur_laplacian_var,
                "" if exp.laplacian_variance is not None
                else f"not measurable: flat product (std {exp.texture_std:.1f})"),
        _graded("exposure.clipped_highlights", exp.clipped_highlights, th.clipped_highlights),
        _graded("exposure.clipped_shadows", exp.clipped_shadows, th.clipped_shadows),
    ]
    metrics.update({"exposure.mean_luma": exp.mean_luma, "exposure.texture_std": exp.texture_std})

    checks += _marketplace_checks(ev, th, rules)
    features = image_features(ev.output_rgb, ev.output_alpha, work_side=th.batch_work_side, validate=False).as_dict()
    for c in checks:
        if c.value is not None:
            metrics[c.name] = c.value
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    worst = max((c.status for c in checks), key=_RANK.__getitem__)
    return QcReport(
        status=worst, checks=checks, metrics=metrics,
        failing=[c.name for c in checks if c.status == "fail"],
        warnings=[c.name for c in checks if c.status == "warn"],
        features=features, thresholds_version=th.version, profile=rules.name,
    )


def _marketplace_checks(ev: QcEvidence, th: QcThresholds, rules: MarketplaceRules) -> list[CheckResult]:
    checks = []
    h, w = ev.output_alpha.shape
    if rules.background_rgb is not None:
        pur = background_purity(ev.output_rgb, ev.output_alpha, rules.background_rgb,
                                tolerance=th.purity_tolerance, border_px=th.border_px, validate=False)
        want = ",".join(str(c) for c in rules.background_rgb)
        checks += [
            _graded("market.border_purity", pur.border_impure_share, th.border_impure_share,
                    f"outer {th.border_px} px not exactly {want}; max deviation {pur.max_deviation}"),
            _graded("market.background_purity", pur.background_impure_share, th.background_impure_share,
                    f"backdrop pixels not {want} (shadow included)"),
        ]
    if rules.fill_target is not None:
        fill = product_fill(ev.output_alpha, validate=False)
        checks.append(_graded("market.fill", abs(fill - rules.fill_target), th.fill_deviation,
                              f"fill {fill:.3f} vs target {rules.fill_target:.2f}"))
    if rules.min_longest_side is not None:
        checks.append(_rule("market.min_size", max(h, w), None, f"longest side {max(h, w)} px", rules.min_longest_side))
    if rules.max_longest_side is not None:
        checks.append(_rule("market.max_size", max(h, w), rules.max_longest_side, f"longest side {max(h, w)} px"))
    if rules.max_megapixels is not None:
        checks.append(_rule("market.megapixels", h * w / 1e6, rules.max_megapixels, f"{h * w / 1e6:.2f} MP"))
    if rules.require_srgb:
        srgb = None if ev.icc_is_srgb is None else float(ev.icc_is_srgb)
        what = ("no colour profile information" if srgb is None
                else "embedded profile is sRGB" if ev.icc_is_srgb else "embedded profile is not sRGB")
        checks.append(_rule("market.srgb", srgb, None, what, 1.0))
    if rules.max_file_bytes is not None:
        checks.append(_rule("market.file_size", ev.encoded_bytes, rules.max_file_bytes,
                            f"{ev.encoded_bytes} bytes" if ev.encoded_bytes else "no encoded size given"))
    return checks


def score_batch(
    features: Sequence[ImageFeatures | Mapping[str, float]], thresholds: QcThresholds
) -> BatchConsistency:
    """Robust outlier flags across a batch; ``.flagged[i]`` lists image i's outlying
    dimensions (``quality.consistency.DIMENSIONS``). Accepts ``QcReport.features`` dicts.
    Fewer than ``thresholds.batch_min_size`` images: no flags, and ``.note`` says so.
    """
    feats = [f if isinstance(f, ImageFeatures) else ImageFeatures(**f) for f in features]
    return batch_outliers(feats, z_limit=thresholds.batch_z_limit, min_batch=thresholds.batch_min_size,
                          sigma_floor=thresholds.batch_sigma_floor)
