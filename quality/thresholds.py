"""QC thresholds and marketplace rules: one versioned config, kept apart from the metrics.

``QcThresholds`` is a plain pydantic model (a Prefect block in blocks/ embeds it); every
value carries the reason it has that value in its field description. Bump ``version``
whenever a value changes: reports and cache keys record it.

Each graded metric has a ``Limit`` with a warn and a fail level, so the UI can show
green / amber / red. Per-profile overrides replace whole limits for one marketplace
profile (``QcThresholds.for_profile``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Status", "Limit", "MarketplaceRules", "QcThresholds", "MARKETPLACE_PROFILES"]

Status = Literal["pass", "warn", "fail"]


class Limit(BaseModel):
    """Warn and fail levels for one metric; ``worse`` says which direction is bad.

    >>> Limit(warn=1.5, fail=3.0).status(2.0), Limit(warn=0.9, fail=0.8, worse="lower").status(0.7)
    ('warn', 'fail')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: float
    fail: float
    worse: Literal["higher", "lower"] = "higher"

    @model_validator(mode="after")
    def _ordered(self) -> "Limit":
        inverted = self.warn > self.fail if self.worse == "higher" else self.warn < self.fail
        if inverted:
            raise ValueError(f"warn level {self.warn} lies beyond fail level {self.fail} (worse={self.worse})")
        return self

    def status(self, value: float) -> Status:
        if self.worse == "higher":
            return "fail" if value > self.fail else "warn" if value > self.warn else "pass"
        return "fail" if value < self.fail else "warn" if value < self.warn else "pass"

    def describe(self) -> str:
        op = ">" if self.worse == "higher" else "<"
        return f"warn {op} {self.warn:g}, fail {op} {self.fail:g}"


def _hi(warn: float, fail: float, why: str) -> object:
    return Field(default=Limit(warn=warn, fail=fail), description=why)


def _lo(warn: float, fail: float, why: str) -> object:
    return Field(default=Limit(warn=warn, fail=fail, worse="lower"), description=why)


class MarketplaceRules(BaseModel):
    """What one marketplace demands of an image; None switches a rule off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Profile name; also the key of QcThresholds.profile_overrides.")
    background_rgb: tuple[int, int, int] | None = Field(
        None, description="Required backdrop colour, 8-bit sRGB.")
    fill_target: float | None = Field(
        None, gt=0, le=1, description="Product bbox longest side / canvas longest side.")
    min_longest_side: int | None = Field(None, gt=0, description="Smallest allowed longest side, px.")
    max_longest_side: int | None = Field(None, gt=0, description="Largest allowed longest side, px.")
    max_megapixels: float | None = Field(None, gt=0, description="Largest allowed pixel count, millions.")
    require_srgb: bool = Field(False, description="The encoded file must carry (or imply) an sRGB profile.")
    max_file_bytes: int | None = Field(None, gt=0, description="Largest allowed encoded file, bytes.")


MARKETPLACE_PROFILES: dict[str, MarketplaceRules] = {
    # Amazon main image: pure white 255,255,255 backdrop, product ~85 % of the frame,
    # longest side >= 1600 px so zoom works (DESIGN.md), <= 10,000 px, <= 10 MB, sRGB.
    "amazon-main": MarketplaceRules(
        name="amazon-main", background_rgb=(255, 255, 255), fill_target=0.85, min_longest_side=1600,
        max_longest_side=10_000, require_srgb=True, max_file_bytes=10 * 1024 * 1024,
    ),
    # Shopify: at most 4472 x 4472 px / 20 megapixels and 20 MB per image; browsers
    # colour-manage, so a tagged non-sRGB file is accepted (not required to be sRGB).
    "shopify": MarketplaceRules(
        name="shopify", max_longest_side=4472, max_megapixels=20.0, max_file_bytes=20 * 1024 * 1024,
    ),
    # Our own lifestyle/catalogue output without marketplace rules.
    "generic": MarketplaceRules(name="generic"),
}


class QcThresholds(BaseModel):
    """Every number the quality gate compares against, with the reason for each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field("1.1.0", description="Bump on any change; recorded in every QcReport and cache key.")

    # --- analysis resolution (speed; the metrics say where they downsample) ---
    analysis_max_side: int = Field(
        384, ge=64, description="Cap on the colour-fidelity grid across the product: 384 px gives >50k "
        "interior pixels on typical products, plenty for stable dE statistics, and keeps the gate well "
        "under 0.3 s per 2048 px image.")
    shadow_work_side: int = Field(
        256, ge=64, description="Canvas size for shadow analysis: shadows are large and soft, 256 px "
        "resolves a 1 % offset of the frame.")
    exposure_analysis_side: int = Field(
        512, ge=64, description="The product is resampled to this longest side before the Laplacian, "
        "so the blur threshold does not depend on how big the product is drawn.")
    batch_work_side: int = Field(
        256, ge=32, description="Canvas size for batch features (means and medians of large regions).")

    # --- product colour fidelity (CIEDE2000) ---
    fidelity_erode_px: int = Field(
        3, ge=0, description="Interior erosion on the working grid: resampling and the feathered alpha "
        "touch 1-2 px of the edge; 3 px leaves a margin.")
    fidelity_pixel_delta_e: float = Field(
        5.0, gt=0, description="Per-pixel dE00 counted as 'changed': ~5 is an obvious difference side "
        "by side (JND ~1, noticeable at a glance ~2-3).")
    delta_e_mean: Limit = _hi(
        1.5, 3.0, "Product pixels are composited back by construction, so the mean dE00 should stay "
        "near resampling noise (<0.5); >1.5 (above the ~1 JND) means the pipeline touched the product, "
        ">3 is visible on a catalogue grid.")
    delta_e_p95: Limit = _hi(
        4.0, 7.0, "Local damage (a repainted logo, a colour patch) shows in the tail before the mean "
        "moves.")
    delta_e_share_above: Limit = _hi(
        0.03, 0.10, "Share of interior pixels above fidelity_pixel_delta_e: 3 % is a small patch, 10 % "
        "a visible region.")
    delta_e_of_means: Limit = _hi(
        1.0, 2.0, "A global cast (white balance, tone curve applied to the product) is the most "
        "visible change; customers return items whose colour differs from the photo.")
    placement_iou: Limit = _lo(
        0.97, 0.90, "IoU of the warped source mask and the output alpha on the working grid: edge "
        "pixels alone cost ~1-2 %; lower means the recorded placement does not match what was drawn.")
    sharpness_ratio: Limit = _lo(
        0.75, 0.55, "Laplacian variance of the output over the source on the same grid: plain bilinear "
        "resampling keeps ~0.85; below 0.55 the product visibly lost detail.")
    sharpness_min_texture_std: float = Field(
        4.0, gt=0, description="Grey-level std (0..255) below which a product interior is too flat for "
        "any Laplacian measure; such products are reported as not measurable.")

    # --- edges (canvas pixels, full resolution) ---
    edge_profile_px: int = Field(
        10, ge=4, description="Half-length of the normal profiles: covers the transition plus both "
        "reference bands.")
    edge_rim_px: int = Field(
        3, ge=1, description="Half-width of the rim where halos/fringes are looked for: matting halos "
        "are 1-3 px at output size.")
    edge_ref_px: tuple[int, int] = Field(
        (5, 9), description="Reference bands on both sides, clear of the rim and of a 1-3 px "
        "transition.")
    edge_smooth_px: float = Field(
        16.0, gt=0, description="Scale of the smoothed outline for roughness (local quadratic fit over "
        "3x this arc length): longer than the steps of an upsampled low-res mask (2-12 px), so they "
        "show; curvature is followed without bias; corners stay a minority on products over ~300 px "
        "(the statistic is a median).")
    halo_delta_l: float = Field(
        8.0, gt=0, description="L* excursion beyond both sides that counts as a halo: ~8 L* is a "
        "visible rim on white at 1-3 px width, product texture stays under it (the reference range "
        "takes all samples).")
    halo_share: Limit = _hi(
        0.05, 0.25, "Share of the outline with a halo: a short stretch may be a specular highlight. "
        "Fail at 25 %, not 15: products with a physically darker or lighter rim (saucers, bottle lips, "
        "piped seams) read 10-20 % on clean cuts (sample espresso cup: 0.16 after decontamination); "
        "a cut-out halo all round reads > 30 %.")
    fringe_weight: float = Field(
        0.3, gt=0, lt=1, description="Weight of the old background in an edge pixel that counts as a "
        "fringe: 30 % of a contrasting colour is visible.")
    fringe_min_separation: float = Field(
        20.0, gt=0, description="8-bit sRGB distance the old background must keep from the "
        "product/backdrop mix line to be measurable (and max residual of the mixing fit).")
    fringe_share: Limit = _hi(
        0.05, 0.25, "Share of the measurable outline with old-background fringe. Fail at 25 %: when "
        "the old backdrop is near the product's own colour (red cup on brown wood) the mixing fit "
        "cannot tell a fringe from product shading and reads 15-20 % on clean cuts.")
    edge_transition_px: Limit = _hi(
        5.0, 9.0, "Median 90->10 % alpha width: an anti-aliased edge reads ~1.5 px, a 3x upscaled one "
        "~4; wider reads as a soft, pasted-on look.")
    edge_roughness_px: Limit = _hi(
        0.4, 0.8, "Robust sigma of the outline about its smoothed course: clean anti-aliased masks "
        "read 0.1-0.2 px, a binary (aliased) one ~0.3, masks upsampled from 1/2..1/8 resolution "
        "0.65-1.3.")

    # --- shadows ---
    shadow_noise_floor: float = Field(
        0.02, ge=0, lt=1, description="Backdrop darkening below 2 % is noise, JPEG or paper texture, "
        "not shadow.")
    shadow_min_mass: float = Field(
        0.005, gt=0, description="Darkening mass (per product area) below which no shadow is visible; "
        "a faint contact shadow alone reads ~0.01.")
    shadow_plausible_frac: float = Field(
        0.9, gt=0, le=1, description="Offset directions matching at least 90 % as well as the best are "
        "all plausible (contact-only shadows carry little direction).")
    shadow_direction_error_deg: Limit = _hi(
        30.0, 60.0, "Angle between the stated light and the nearest plausible light implied by the "
        "shadow: viewers accept ~30 deg, beyond 60 the shadow visibly contradicts the lighting.")
    contact_depth_frac: float = Field(
        0.03, gt=0, description="Depth of the strip under the base read for the contact shadow, share "
        "of product height.")
    contact_darkening: Limit = _lo(
        0.06, 0.03, "Median darkening just under the base of a grounded product: rendered contact "
        "shadows darken it 10-60 %; under 3 % the product reads as floating.")
    light_estimate_min_strength: float = Field(
        0.10, ge=0, description="Relative backdrop brightness change across the frame needed before "
        "the shading-based light estimate is used at all.")
    light_estimate_min_r2: float = Field(
        0.5, ge=0, le=1, description="Share of backdrop variance a plane must explain before its "
        "gradient is trusted as light direction.")

    # --- sharpness and exposure of the product ---
    blur_laplacian_var: Limit = _lo(
        40.0, 15.0, "Variance of the Laplacian (grey levels^2) at 512 px across the product: the "
        "classic ~100 rule of thumb for general photos, lowered because products are mostly smooth "
        "surfaces; calibrate on labelled batches.")
    blur_min_texture_std: float = Field(
        4.0, gt=0, description="Interior grey-level std below which the product is too flat to judge "
        "blur without a reference.")
    clip_high: int = Field(
        250, ge=0, le=255, description="All channels at or above this count as a blown highlight.")
    clip_low: int = Field(
        5, ge=0, le=255, description="All channels at or below this count as crushed black.")
    clipped_highlights: Limit = _hi(
        0.02, 0.10, "Specular glints are normal (<2 %); a tenth of the product blown out loses its "
        "texture.")
    clipped_shadows: Limit = _hi(0.02, 0.10, "Same reasoning as highlights, for crushed blacks.")

    # --- marketplace measurements ---
    purity_tolerance: int = Field(
        0, ge=0, le=255, description="Allowed deviation per channel from the required backdrop colour: "
        "Amazon says exactly 255,255,255.")
    border_px: int = Field(
        8, ge=1, description="Width of the canvas frame checked for purity; thumbnails show the edge "
        "first.")
    border_impure_share: Limit = _hi(
        0.0, 0.01, "Any off-colour border pixel is a warning; >1 % of the frame is a visible grey or "
        "tinted edge.")
    background_impure_share: Limit = _hi(
        0.20, 0.40, "Share of backdrop pixels off the required colour, the drawn shadow included: "
        "imaging.compose's soft shadow covers ~15 % of the backdrop at 85 % fill, a hard one ~9 %; "
        "more is a grey or tinted backdrop.")
    fill_deviation: Limit = _hi(
        0.05, 0.10, "|fill - fill_target|: 0.80-0.90 for an 85 % target is normal composition "
        "latitude.")

    # --- segmentation (read by tasks/score.py with imaging.segment.mask_confidence) ---
    segment_confidence_min: float = Field(
        0.8, ge=0, le=1, description="Masks less certain than this go to review: on the segmentation "
        "benchmark good cuts score ~0.93 (median) and crisp cuts of the wrong object ~0.76 "
        "(imaging/segment.py).")

    # --- batch consistency ---
    batch_z_limit: float = Field(
        2.0, gt=0, description="Robust z beyond which an image is an outlier (DESIGN.md: beyond 2 "
        "sigma).")
    batch_min_size: int = Field(
        4, ge=3, description="Below 4 images a median and MAD say too little; no flags.")
    batch_sigma_floor: dict[str, float] = Field(
        default_factory=lambda: {
            "brightness_l": 1.0, "white_balance_a": 0.75, "white_balance_b": 0.75, "background_l": 0.75,
            "scale": 0.01, "centroid_x": 0.01, "centroid_y": 0.01,
        },
        description="Smallest sigma per feature (its own units: L*, a*, b*, share of frame): keeps "
        "near-identical batches from flagging invisible differences (2 x 1 L* ~ 2 JND).",
    )

    profile_overrides: dict[str, dict[str, Limit]] = Field(
        default_factory=lambda: {
            "amazon-main": {
                "border_impure_share": Limit(warn=0.0, fail=0.0),
            }
        },
        description="Per marketplace profile, limits that replace the defaults: Amazon rejects main "
        "images with an off-white edge (a grey frame shows on its white pages), so any impure border "
        "pixel fails there.",
    )

    @model_validator(mode="after")
    def _overrides_name_limits(self) -> "QcThresholds":
        limits = {k for k, v in type(self).model_fields.items() if v.annotation is Limit}
        for profile, over in self.profile_overrides.items():
            unknown = set(over) - limits
            if unknown:
                raise ValueError(f"profile_overrides[{profile!r}] names no Limit field: {sorted(unknown)}")
        if not 0 < self.edge_rim_px < self.edge_ref_px[0] < self.edge_ref_px[1] <= self.edge_profile_px:
            raise ValueError("need 0 < edge_rim_px < edge_ref_px[0] < edge_ref_px[1] <= edge_profile_px")
        return self

    def for_profile(self, name: str) -> "QcThresholds":
        """These thresholds with ``profile_overrides[name]`` applied (unchanged if none).

        >>> QcThresholds().for_profile("amazon-main").border_impure_share.fail
        0.0
        """
        over = self.profile_overrides.get(name)
        return self.model_copy(update=over) if over else self
