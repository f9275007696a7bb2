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
    def _ordered(self) -> Limit:
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
    background_rgb: tuple[int, int, int] | None = Field(None, description="Required backdrop colour, 8-bit sRGB.")
    fill_target: float | None = Field(None, gt=0, le=1, description="Product bbox longest side / canvas longest side.")
    min_longest_side: int | None = Field(None, gt=0, description="Smallest allowed longest side, px.")
    max_longest_side: int | None = Field(None, gt=0, description="Largest allowed longest side, px.")
    max_megapixels: float | None = Field(None, gt=0, description="Largest allowed pixel count, millions.")
    require_srgb: bool = Field(False, description="The encoded file must carry (or imply) an sRGB profile.")
    max_file_bytes: int | None = Field(None, gt=0, description="Largest allowed encoded file, bytes.")
    fill_range: tuple[float, float] | None = Field(
        None, description="Allowed product fill (bbox longest side / canvas longest side), inclusive: a hard rule."
    )
    min_shortest_side: int | None = Field(None, gt=0, description="Smallest allowed shortest side, px.")
    aspect_ratios: tuple[tuple[int, int], ...] | None = Field(
        None, description="Allowed w:h ratios (within 1 %), e.g. ((1, 1), (4, 3))."
    )
    max_enlargement: float | None = Field(
        None, gt=0, description="No upscaled images: canvas px per source px of the product, at most."
    )
    edge_clear: bool = Field(
        False, description="Nothing but backdrop on the frame's outermost ring (no product, shadow)."
    )
    residue_free: bool = Field(False, description="No grey or off-white residue on the backdrop away from the product.")
    frameless: bool = Field(False, description="No border drawn round the image.")


MARKETPLACE_PROFILES: dict[str, MarketplaceRules] = {
    # Amazon main image: pure white 255,255,255 backdrop, product ~85 % of the frame,
    # longest side >= 1600 px so zoom works (DESIGN.md), <= 10,000 px, <= 10 MB, sRGB.
    "amazon-main": MarketplaceRules(
        name="amazon-main",
        background_rgb=(255, 255, 255),
        fill_target=0.85,
        min_longest_side=1600,
        max_longest_side=10_000,
        require_srgb=True,
        max_file_bytes=10 * 1024 * 1024,
    ),
    # Shopify: at most 4472 x 4472 px / 20 megapixels and 20 MB per image; browsers
    # colour-manage, so a tagged non-sRGB file is accepted (not required to be sRGB).
    "shopify": MarketplaceRules(
        name="shopify",
        max_longest_side=4472,
        max_megapixels=20.0,
        max_file_bytes=20 * 1024 * 1024,
    ),
    # Our own lifestyle/catalogue output without marketplace rules.
    "generic": MarketplaceRules(name="generic"),
}


class QcThresholds(BaseModel):
    """Every number the quality gate compares against, with the reason for each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(
        "2.5.12",
        description="Bump on any change; recorded in every QcReport and cache key. "
        "2.0.0: every limit recalibrated on the labelled corpus (bench/qc_calibration.py). "
        "2.1.0: halos judged against the compositing equation on the backdrop side (fail 0.05), "
        "lost parts counted in the cut's bays only, the cut-in-two check (cut.split). "
        "2.2.0: marketplace residue and drawn-border checks (market.residue, market.border). "
        "2.3.0: edge width judged against the photo's own cut (edge.transition_width), the shadow's "
        "direction read where its darkening leans with the contact zone left out (shadow.direction). "
        "2.3.1: a soft cast shadow of the backdrop's own chroma is not a lost part (cut.lost_part); a band of "
        "the backdrop's colour that meets the outline only at its ends is not backdrop stuck to it; "
        "source.cut_off fails at 0.003 (was 0.02). "
        "2.3.2: the compositor's feather is not a soft edge (edge.transition_width fails at 3.0, was 3.25). "
        "2.4.0: a cut whose surround is not the backdrop is not the product (cut.wrong_object). "
        "2.4.1: a region inked darker than anything on the backdrop round the product is a printed "
        "label, not background inside (quality/cut.py PRINT). "
        "2.4.2: JPEG blocking is the share of visible tile edges (jpeg_tiles), not the mean block step, "
        "which failed every file of quality 85 and below. "
        "2.4.3: residue is not looked for in the contact zone under the base (residue_contact_zone). "
        "2.4.4: the fringe share is judged at its lower confidence bound (fringe_confidence_z). "
        "2.5.0: the shipped JPEG's own quantiser has a floor (artefacts.jpeg_quality). "
        "2.5.1: the fringe is read against the photo's backdrop beside each place of the outline "
        "(quality/old_backdrop.py), not one median colour for the whole photo. "
        "2.5.2: a backdrop-like region that meets the outline only through necks (a frame's "
        "filled middle met by its specular stripes) is background inside (quality/cut.py NECK). "
        "2.5.3: cut.wrong_object learns the backdrop from a 2 % border strip (was 4 %), clear of a "
        "product that nearly fills the photo (quality/surround.py BORDER). "
        "2.5.4: a large enclosed region is a filled middle when its rim is an edge though its colour "
        "steps little (quality/cut.py SHARP_RIM), and its backdrop prediction may drift with the "
        "distance from where the backdrop was seen (a vignette). "
        "2.5.5: a thin product-coloured part lost whole counts though it runs past the working crop "
        "(a stool's legs; quality/cut.py THIN_PART); a large backdrop-like region that reaches the "
        "outline only along thin lines (a dark ring's filled middle, met by a specular stripe's "
        "flanks) is judged with the lines opened away (OPEN_LINES); source.cut_off leaves the cut's "
        "stray pieces out (a sliver of backdrop along the photo's edge is a fragment, which a re-cut "
        "can fix, not a product the photo cuts off). "
        "2.5.6: a region the product goes on into across the cut counts as lost whatever its shape "
        "(a mug handle's roots, a frame's corner; quality/cut.py CONTINUES). "
        "2.5.7: where the photo's backdrop lies between the product and the studio white on their "
        "line (black on dark gravel), the fringe is read from the canvas's alpha: an opaque rim moved "
        "toward the old colour, and not past it (a rim light), is old backdrop (quality/edges.py). "
        "2.5.8: a clear product-coloured region that runs off the working crop is judged again on a crop "
        "as wide as the product (quality/cut.py WIDE: a headphone's band lost, the cups kept), and a large "
        "enclosed region the second pass finds under the bar is left out of the product model once more "
        "(a frame's filled middle of sky); "
        "cut.wrong_object is lowered when the cut's inside is more backdrop-coloured than its surround (a "
        "frame's hole cut, its low-chroma frame partly binned as backdrop); bench/qc_calibration.py grades "
        "u2netp's cuts with production's segment.confidence check. "
        "2.5.9: a cut whose ways out cross a long edge before the photo's border, on a smooth backdrop, lies "
        "inside another object's outline (cut.enclosed, quality/enclosure.py: a box's label cut instead of a "
        "box of the backdrop's colours); segment.confidence no longer counts a crisp map's one-pixel "
        "anti-aliased outline as doubt (imaging/segment.py: a lamp's thin stem). "
        "2.5.10: a product-coloured region runs off the working crop (a leg lost whole) only past a side "
        "that is not the photo's own edge (dark floor gaps under a black ring at the photo's foot), and a "
        "backdrop-like line deep inside the product, narrower than THIN_HOLE x its size, is print or a "
        "highlight's edge, not a hole; a large enclosed region whose grain is GRAIN_STEP x the product's round it "
        "is a filled middle though its mean colour makes no step (a smooth ring on gravel of its colour) "
        "(quality/cut.py; corpus seeds 55 and 89, first graded 2026-12-05). "
        "2.5.11: when a large candidate is too weak or steps too little to be a hole, the large enclosed "
        "region the first pass left out of the product model round it is judged itself, grown to the colour "
        "edge round it or rounded (quality/_cut_inside.py _filled_middle: a white frame's middle of banded sky, a "
        "black ring's of dark brick joined to its stripe's flanks); cut.enclosed is read where a few long edges "
        "cross the photo's border strip (a cloud band, two marks) when the cut is walled in on 90 % of its ways "
        "out (quality/enclosure.py BUSY_HI, SURE: a white box on pale sky cut as its label). "
        "2.5.12 (corpus seeds 144 and 233, first graded 2026-12-05): a stray piece of the cut whose colours "
        "the largest piece has none of is a fragment (quality/cut.py FOREIGN: black marks of a pale sky "
        "kept beside a blue headphone), and cut.wrong_object is lowered by twice how much more the cut's "
        "inside overlaps the border's colour histogram than the band round it does (quality/surround.py MIX: "
        "u2netp's cut of a grey-brown ring's hole in fur of browns, which colours seen at all passed).",
    )
    # --- analysis resolution (speed; the metrics say where they downsample) ---
    analysis_max_side: int = Field(
        384,
        ge=64,
        description="Cap on the colour-fidelity grid across the product: 384 px gives >50k "
        "interior pixels on typical products, plenty for stable dE statistics, and keeps the gate well "
        "under 0.3 s per 2048 px image.",
    )
    shadow_work_side: int = Field(
        256,
        ge=64,
        description="Canvas size for shadow analysis: shadows are large and soft, 256 px "
        "resolves a 1 % offset of the frame.",
    )
    exposure_analysis_side: int = Field(
        512,
        ge=64,
        description="The product is resampled to this longest side before the Laplacian, "
        "so the blur threshold does not depend on how big the product is drawn.",
    )
    batch_work_side: int = Field(
        256, ge=32, description="Canvas size for batch features (means and medians of large regions)."
    )

    # --- product colour fidelity (CIEDE2000) ---
    fidelity_erode_px: int = Field(
        3,
        ge=0,
        description="Interior erosion on the working grid: resampling and the feathered alpha "
        "touch 1-2 px of the edge; 3 px leaves a margin.",
    )
    fidelity_pixel_delta_e: float = Field(
        4.0,
        gt=0,
        description="dE00 at which a region of the product counts as changed (judged on a grid 2 "
        "working px coarser, regions of 3x3 or more): a visible patch is dE >= 5; clean renders read at most "
        "2.2 there (p95 1.7), so 4 keeps a margin both ways (bench/qc_calibration.py).",
    )
    delta_e_mean: Limit = _hi(
        1.4,
        1.9,
        "Product pixels are composited back by construction: clean renders read p50 0.66, worst "
        "1.32 (resampling); casts of dE00 >= 2 read 2.9 and up. Fail between the two (bench/qc_calibration.py).",
    )
    delta_e_p95: Limit = _hi(
        2.6,
        3.5,
        "95th percentile of the local dE00: clean worst 2.2 (p95 1.7); a patch over more than 5 % "
        "of the product moves it before the mean does. Smaller patches are share_above's.",
    )
    delta_e_share_above: Limit = _hi(
        0.002,
        0.005,
        "Share of the product in changed regions (see fidelity_pixel_delta_e): no clean render "
        "has any; a visible patch (dE >= 5 on >= 1 % of the product) reads at least about half its area, "
        "so 0.5 % catches it.",
    )
    delta_e_of_means: Limit = _hi(
        0.5,
        1.0,
        "A global cast is the most visible change: clean renders read p95 0.05, worst 0.09; a "
        "visible cast (dE00 of means >= 2) reads 2.9 and up. Fail at 1.0, half the visible level.",
    )
    placement_iou: Limit = _lo(
        0.95,
        0.90,
        "IoU of the warped source mask and the output alpha on the working grid: clean renders "
        "read p50 0.999, worst 0.979 (bench/qc_calibration.py); lower means the recorded placement does not "
        "match what was drawn (a pipeline fault, no corpus class).",
    )
    sharpness_ratio: Limit = _lo(
        0.8,
        0.65,
        "LoG variance of output over source, on a grid 1.5x coarser than the finer of source and "
        "canvas: clean renders read p50 0.98, worst 0.90; visible blur (sigma >= 1.5 px at the source's "
        "scale) reads 0.42 and below (p95). Fail between (0.65).",
    )
    sharpness_min_texture_std: float = Field(
        4.0,
        gt=0,
        description="Grey-level std (0..255) below which a product interior is too flat for "
        "any Laplacian measure; such products are reported as not measurable.",
    )

    # --- edges (canvas pixels, full resolution) ---
    edge_profile_px: int = Field(
        10, ge=4, description="Half-length of the normal profiles: covers the transition plus both reference bands."
    )
    edge_rim_px: int = Field(
        3,
        ge=1,
        description="Half-width of the rim where halos/fringes are looked for: matting halos "
        "are 1-3 px at output size.",
    )
    edge_ref_px: tuple[int, int] = Field(
        (5, 9), description="Reference bands on both sides, clear of the rim and of a 1-3 px transition."
    )
    edge_smooth_px: float = Field(
        16.0,
        gt=0,
        description="Scale of the smoothed outline for roughness (local quadratic fit over "
        "3x this arc length): longer than the steps of an upsampled low-res mask (2-12 px), so they "
        "show; curvature is followed without bias; corners stay a minority on products over ~300 px "
        "(the statistic is a median).",
    )
    halo_delta_l: float = Field(
        8.0,
        gt=0,
        description="L* excursion beyond both sides that counts as a halo: ~8 L* is a "
        "visible rim on white at 1-3 px width, product texture stays under it (the reference range "
        "takes all samples).",
    )
    halo_share: Limit = _hi(
        0.03,
        0.1,
        "Share of the outline with a halo on the backdrop side of the edge (alpha < 0.5: a rim "
        "there is painted, never the product's own, so a saucer's dark lip does not count). "
        "bench/qc_calibration.py (seed 0): renders from the true mask read at most 0.021, u2netp's "
        "good cuts (IoU >= 0.98) at most 0.083 (their edge pixels carry the photo's local backdrop), "
        "visible halos (>= 15 L*, >= 2 px) 0.89 and up; on a development set (seed 1, 30 products) "
        "visible halos read 0.12 and up. Fail at 0.1, between the good cuts and the visible halos.",
    )
    fringe_weight: float = Field(
        0.35,
        gt=0,
        lt=1,
        description="Weight of the old background in an edge pixel that counts as a fringe. "
        "2.5.1: read against the photo's backdrop beside each place of the outline, clean renders' "
        "own edge blend (a cast shadow beside a red frame, a pale seamless beside a white box) reads "
        "0.32-0.36 where they flag, and the corpus's visible fringes start at 0.4. Fringe in every "
        "product of seed 13 (60 clean renders, 334 visible fringes, edge.fringe alone): 0.3 fails 3 "
        "clean and catches 250, 0.35 fails 1 and catches 232, 0.4 fails 1 and catches 192; the photo's "
        "median colour at 0.3 (2.5.0) fails none and catches 186.",
    )
    fringe_min_separation: float = Field(
        20.0,
        gt=0,
        description="8-bit sRGB distance the old background must keep from the "
        "product/backdrop mix line to be measurable (and max residual of the mixing fit).",
    )
    fringe_confidence_z: float = Field(
        1.0,
        ge=0,
        description="The fringe share is judged at the lower end of its Wilson interval, this many "
        "standard errors below: on black on dark or white on light the old backdrop can be told apart on "
        "a handful of edge profiles only, and 5 flagged of 11 is noise, not a fringe round the product. "
        "Corpus seeds 0, 7, 13 (270 clean renders, 373 visible fringes, 2026-12-03): the two clean "
        "renders failed for fringe read 5 of 11 and 3 of 7 measurable profiles; at z = 1 none fails "
        "and visible fringes failed for fringe go from 235 to 231 (z = 0.5: 232; 1.64: 225).",
    )
    fringe_share: Limit = _hi(
        0.3,
        0.4,
        "Share of the measurable outline with old-backdrop fringe (at its lower bound). 2.5.7 (black "
        "on dark measurable, fringe in every product of 24, seeds 0, 13, 21): clean renders worst "
        "0.11-0.29, visible fringes 94 of 98 caught. 2.5.1 "
        "(bench/qc_calibration.py, seeds 0, 7, 13, 21): clean renders read p95 0.08-0.19, worst 0.14-0.31 "
        "except one white box on white seamless at 0.83 (37 measurable profiles); visible fringes read "
        "p50 0.57-0.89. At 0.4: 1 of 240 clean renders, 28 of 36 visible fringes (the misses mostly not "
        "measurable: the photo's backdrop on the product/backdrop line).",
    )
    edge_transition_px: Limit = _hi(
        2.5,
        3.0,
        "How much softer the canvas's edge is than the photo's own cut and the compositor's feather: "
        "sqrt(width^2 - photo width^2 - feather width^2) of the median 90->10 % alpha widths, source px "
        "(canvas px where the canvas shrinks), on profiles that run 10 source px each way (so an enlarged "
        "product's blurred edge is not cut short); the feather (1 px studio, 1 px per 1024 canvas px in a "
        "lifestyle scene) adds 2.56 px per px of sigma to every edge on purpose. bench/qc_calibration.py: "
        "clean renders read p50 0, p95 1.25 / 1.26, worst 1.33 / 1.47 (seeds 0 / 7); visible blur (sigma >= "
        "1.5 source px) p5 3.68 / 3.77; 'between' 2.21 / 2.35. Clean products at camera size (8000x6000, "
        "the canvas shrinking 0.8x, a regime the corpus lacks) read up to 2.24. Fail at 3.0: every visible "
        "blur caught on both seeds, room above the camera-size clean edges; warn from 2.5 (2.3.1 and "
        "earlier counted the feather as softness and rejected clean products drawn at 1:1 or smaller).",
    )
    edge_roughness_px: Limit = _hi(
        0.5,
        0.8,
        "Robust sigma of the outline about its smoothed course, source px: clean renders read p95 "
        "0.22, worst 0.64 (u2netp's own cuts); masks upsampled from 1/4-1/8 resolution read 0.65-1.3.",
    )
    # --- shadows ---
    shadow_noise_floor: float = Field(
        0.02, ge=0, lt=1, description="Backdrop darkening below 2 % is noise, JPEG or paper texture, not shadow."
    )
    shadow_min_mass: float = Field(
        0.005,
        gt=0,
        description="Darkening mass (per product area) below which no shadow is visible; "
        "a faint contact shadow alone reads ~0.01.",
    )
    shadow_plausible_frac: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Not read since 2.3.0 (the direction is where the darkening leans, quality/shadow.py); "
        "kept so stored settings that name it still load.",
    )
    shadow_min_lean_mass: float = Field(
        0.001,
        ge=0,
        description="One-sided darkening (how far the darkening leans to one side x its mass outside the "
        "contact zone, per product area) below which no direction is read: a fifth of the visible mass. An "
        "even rim or a contact-only shadow says nothing about the light (the constructed contact-only shadow "
        "reads 0.0001, white_floating's ellipse under the product 0.0005); shadows drawn >= 90 deg off read "
        "0.0029 and up (150 corpus products, seeds 0 and 1, white_studio and white_studio_hard).",
    )
    shadow_direction_error_deg: Limit = _hi(
        40.0,
        50.0,
        "Angle between the stated light and the light the shadow implies (where the darkening leans, the "
        "contact zone under the base left out: quality/shadow.py). bench/qc_calibration.py (seed 0): clean "
        "renders read p95 13, worst 15; shadows drawn >= 90 deg off p5 79, p50 150 (the ROC's 'between' "
        "point 35). The corpus draws only white_studio and white_studio_hard; on the other studio templates "
        "(40 products each) clean renders read up to 18 on gradient_studio and up to 46 on colour_studio "
        "(light at 110 deg: a soft shadow leaning mostly down, into the contact zone), shadows >= 90 deg off "
        "52 and up. Fail at 50 so every studio template's clean renders pass; warn from 40.",
    )
    contact_depth_frac: float = Field(
        0.03,
        gt=0,
        description="Depth of the strip under the base read for the contact shadow, share of product height.",
    )
    contact_darkening: Limit = _lo(
        0.15,
        0.08,
        "Median darkening just under the base of a grounded product: clean renders read p50 "
        "0.59, worst 0.28; a floating or shadowless product reads under 0.005. Fail at 0.08.",
    )
    light_estimate_min_strength: float = Field(
        0.10,
        ge=0,
        description="Relative backdrop brightness change across the frame needed before "
        "the shading-based light estimate is used at all.",
    )
    light_estimate_min_r2: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of backdrop variance a plane must explain before its "
        "gradient is trusted as light direction.",
    )

    # --- sharpness and exposure of the product ---
    blur_min_texture_std: float = Field(
        4.0,
        gt=0,
        description="Interior grey-level std below which the product is too flat to judge blur without a reference.",
    )
    clip_high: int = Field(250, ge=0, le=255, description="All channels at or above this count as a blown highlight.")
    clip_low: int = Field(5, ge=0, le=255, description="All channels at or below this count as crushed black.")
    clipped_highlights: Limit = _hi(
        0.01,
        0.02,
        "Share of the product the render newly blew out (the photo's own clipping is not the "
        "render's fault): clean renders read at most 0.0015; visible clipping (>= 5 % newly) reads 0.077 "
        "and up.",
    )
    clipped_shadows: Limit = _hi(0.01, 0.02, "Same reasoning as highlights, for crushed blacks (clean worst 0.0007).")
    # --- the cut against the photo (quality/cut.py), shares of the product area ---
    cut_work_side: int = Field(
        512,
        ge=64,
        description="Working grid across the product and 30 % of its size around it: a thin leg "
        "2.6 source px wide is still 2-4 px wide on it, and a region of 0.1 % of the product is ~30 px.",
    )
    cut_min_delta: float = Field(
        5.0,
        gt=0,
        description="dE76 by which a backdrop-like region inside the mask must differ from the product "
        "around it (a hole against its rim): filled holes on the calibration corpus differ by 6-95; "
        "white-on-white and glossy highlights that merely fade differ by 0.5-5 (seeds 0 and 1).",
    )
    cut_contrast: float = Field(
        1.2,
        gt=0,
        description="Mean log-likelihood ratio backdrop : product a region inside the mask needs (a "
        "ratio of 3.3:1 per pixel, averaged over the region; backdrop on the outline needs 3.0): "
        "filled holes read 1.3-12 on the corpus, a filled ring's whole middle 1.4-5.",
    )
    cut_near_frac: float = Field(
        0.12,
        gt=0,
        description="Reach of the backdrop's local colour model (Gaussian, share of the product's "
        "size): gradients, vignetting and a textured backdrop's local mean follow at this scale.",
    )
    cut_background_inside: Limit = _hi(
        0.005,
        0.0075,
        "Backdrop-like enclosed regions, share of the product (each counted region >= 0.5 %, half "
        "a visible hole). A visible filled hole is >= 1 %: fail at three quarters of that. See "
        "bench/qc_calibration.py for the clean and defect figures.",
    )
    cut_background_attached: Limit = _hi(
        0.001,
        0.002,
        "Backdrop-like regions on the outline (background stuck to the edge, gravel), share of the "
        "product: a visible fragment (>= 0.2 % of the canvas) is 0.4-1 % of the product, split over "
        "blobs that mostly touch the outline on the working grid; fail at 0.2 %.",
    )
    cut_fragments: Limit = _hi(
        0.0005,
        0.001,
        "Detached backdrop pieces, share of the product: clean renders read 0 (two-part products "
        "keep both parts); a visible fragment (>= 0.2 % of the canvas) is 0.15-0.5 % of the product. "
        "2.5.12: a piece of colours the largest piece has none of counts too (another object of the scene): "
        "on seeds 0-233 the 12 such pieces of u2netp's cuts are 2.4-6.1 % of the product.",
    )
    cut_lost_part: Limit = _hi(
        0.0035,
        0.005,
        "Product-coloured regions left outside the cut, share of the product: a bite of >= 0.5 % "
        "(the visible level) reads about its size plus the outline band; fail at that level.",
    )
    cut_split: Limit = _hi(
        0.5,
        0.5,
        "Share of the gap between the cut's pieces that the photo fills with product, thin parts "
        "only (quality/split.py): a stem cut through. On a development set (seed 1, 40 products, "
        "clean and with holes, lost parts and fragments) clean cuts read at most 0.06 and stems cut "
        "through 0.99-1.0 where colour tells stem from backdrop (3 of 4); fail at half the gap.",
    )
    cut_surround_backdrop: Limit = _lo(
        0.8,
        0.5,
        "Share of a band just outside the cut (1 % to 6 % of the product's size out) whose colours the "
        "photo's border has, a shadow of them included (quality/surround.py): outside a right cut lies the "
        "backdrop. 40 generated products (bench/throughput.py --catalog products): true cuts read at least "
        "0.997, u2netp's cuts with IoU >= 0.97 at least 0.977; u2netp's cut of a ring's hole instead of the "
        "ring read 0.029 and was exported by 2.3.2. bench/qc_calibration.py: clean renders and u2netp's "
        "cuts with IoU >= 0.98 read at least 0.993 / 0.995 (seeds 0 / 7); one u2netp cut on each seed reads 0 "
        "(caught: seed 0 86.5 -> 89.2 %, seed 7 named right 45.5 -> 48.5 %). Fail under 0.5, warn under 0.8; "
        "not measurable when the photo's border is mostly product. 2.5.3: the border strip is 2 % of the "
        "photo's side (was 4 %): a ring nearly filling the photo reached into the wider strip and its hole's "
        "cut read 1.0 (seed 21 ring-26, exported); now 0.0, a frame's hole cut 0.69 (seed 0 frame-04, "
        "warn), clean renders and good cuts of seeds 0, 7, 13, 21 still >= 0.987. 2.5.8: the share is "
        "lowered by how much more of the cut's own inside has the border's colours (quality/surround.py): "
        "frame-04 reads 0.38 (fail); on seeds 0, 7, 13, 21, 34 the 450 clean renders read at least 0.918 "
        "(band alone 0.959) and the 176 good u2netp cuts 0.984 (unchanged). 2.5.12: lowered too by twice "
        "how much more the inside overlaps the border's colour histogram than the band does (quality/surround.py "
        "MIX): on seeds 0-233 the 1,279 true and good u2netp cuts read at most -0.04 on that difference (no "
        "value changes), u2netp's 14 cuts of a ring's or frame's hole 0.47-0.98 (seed 144 ring-65: 1.0 -> 0.0).",
    )
    cut_enclosed: Limit = _hi(
        0.5,
        0.6,
        "Share of the rays out of the cut that meet a long edge of the photo before its border, on a smooth "
        "backdrop only (quality/enclosure.py): a cut inside another object's outline (a box's label, a "
        "frame's hole) is not the product. Prototype on bench/qc_calibration.py seeds 0, 7, 13, 21, 34 (445 "
        "products): where measured, true cuts read at most 0.41 (0.62 on a defocused photo until busy borders "
        "were left unmeasured, BUSY), u2netp's good cuts 0.39; its cuts of a label (box-10 1.0, box-02 0.67, "
        "both exported by 2.5.8), a frame's middle and a lamp's base alone 0.72-1.0. In the gate (2.5.9): "
        "clean renders and good u2netp cuts read at most 0.25 / 0.29 / 0.33 / 0.39 / 0.35 (seeds 0 / 7 / 13 / "
        "21 / 34, measured on 36-43 of each seed's 93-98: the rest are on textured backdrops), none fails it, "
        "five bad cuts do (box-02 and box-10 by it alone). Fail at 0.6, "
        "warn at 0.5 (jar-49's cut, 0.58, warns). Since 2.5.11 a border strip a few long edges cross "
        "(busy 0.01-0.05) is read when the share is 0.9 or more: there true and good cuts read at most 0.59 on "
        "seeds 0, 7, 13, 21, 34, 55, 89, a label cut instead of its white box on clouded sky 0.99.",
    )
    source_cut_off: Limit = _hi(
        0.001,
        0.003,
        "Share of the product's outline on the photo's border. bench/qc_calibration.py: clean photos "
        "read 0 on seeds 0, 1 and 7 (180 renders, worst 0); products cut off by >= 2 % read 0.04 and up, "
        "except thin legs cut by the frame (a stand cut 10 % short, seed 1), whose outline on the border "
        "is only the legs' ends: 0.0065. Fail at 0.003, under that with room (2.3.0 failed at 0.02 and "
        "missed those two).",
    )
    source_enlargement: Limit = _hi(
        2.8,
        3.5,
        "Enlargement by classical resampling, canvas px per source px: clean renders read up to "
        "2.77; sources needing >= 4x (the visible level: interpolation invents no detail, so 4x is visibly "
        "soft at 100 % zoom) read 4.4 and up. Fail between (3.5). Not retried: a re-render cannot add pixels.",
    )
    source_enlargement_learned: Limit = _hi(
        4.5,
        6.0,
        "The same after a learned x4 upscaler (Real-ESRGAN): it restores plausible texture up to its "
        "own factor, not beyond; past 6x even it smears. Not calibrated on the corpus (its renders use "
        "classical resampling, as CPU runs do): set from the model's factor.",
    )
    # --- framing and the shipped file ---
    framing_cut_off: Limit = _hi(
        0.0,
        0.05,
        "Product pixels on the canvas border per product width: 0 on every clean render; a product "
        "running off the frame reads 0.6 and up. Any is a warning.",
    )
    jpeg_quality_floor: Limit = _lo(
        50,
        30,
        "The IJG quality the shipped JPEG's luma table matches (quality/jpeg_quality.py). Tiles show "
        "only on detail; a flat product at quality 10-20 shows none and still loses its colour and "
        "fine detail (corpus: a flat black mug's file 2.5 dE00 of means off its canvas, a flat bottle's "
        "0.8), which jpeg_tiles missed on seeds 0 and 7 (12 of 14 caught). The exporter never goes under "
        "quality 60 to fit a byte cap (imaging/encode.fit_bytes), so only a profile set coarser than that "
        "meets the warning at 50; the failure at 30 lies between the corpus's visible grades (10, 20) "
        "and quality 35, where jpeg_tiles already fails textured products.",
    )
    jpeg_tiles: Limit = _hi(
        0.0005,
        0.001,
        "Share of the 8x8 block edges on the product whose block-mean errors step by more than "
        "quality.artefacts.TILE_STEP (2.25 grey levels; quality 50's quantiser makes at most 2.0). "
        "Measured on 240 corpus renders (seeds 0, 1, 7, 13; amazon-main and shopify) encoded by the "
        "exporter at each quality: quality 50-95 read at most 0.06 % (0 from 80 up); quality 30-35 "
        "read 0.41 % and up; quality <= 20 (visible) is caught at 97 %, the misses flat products "
        "that show no tiles at all (every block quantises alike). The mean step this replaces failed "
        "every render at quality 85 and below. Warn over 0.05 %, fail over 0.1 %.",
    )
    # --- marketplace measurements ---
    purity_tolerance: int = Field(
        0,
        ge=0,
        le=255,
        description="Allowed deviation per channel from the required backdrop colour: Amazon says exactly 255,255,255.",
    )
    border_px: int = Field(
        8, ge=1, description="Width of the canvas frame checked for purity; thumbnails show the edge first."
    )
    border_impure_share: Limit = _hi(
        0.0, 0.01, "Any off-colour border pixel is a warning; >1 % of the frame is a visible grey or tinted edge."
    )
    background_impure_share: Limit = _hi(
        0.20,
        0.40,
        "Share of backdrop pixels off the required colour, the drawn shadow included: "
        "imaging.compose's soft shadow covers ~15 % of the backdrop at 85 % fill, a hard one ~9 %; "
        "more is a grey or tinted backdrop.",
    )
    fill_deviation: Limit = _hi(
        0.05, 0.10, "|fill - fill_target|: 0.80-0.90 for an 85 % target is normal composition latitude."
    )
    residue_levels: int = Field(
        6,
        ge=0,
        le=255,
        description="A far backdrop pixel more than this many levels off the required colour is residue: "
        "JPEG q90 keeps a white backdrop within 2 levels away from edges; 6 levels is the faintest "
        "grey a white page shows next to it.",
    )
    residue_clearance: float = Field(
        0.08,
        ge=0.0,
        lt=1.0,
        description="Residue is looked for this far from the product (share of the canvas's longest side): "
        "imaging.compose's soft and hard shadows darken the white backdrop by more than residue_levels up "
        "to 0.064 of the canvas from the product (box, ellipse and tall products at fill 0.85, light at "
        "45/90/135 deg); at fill 0.85 a box product still leaves the corners to check.",
    )
    residue_contact_zone: float = Field(
        0.08,
        ge=0.0,
        lt=1.0,
        description="...and out of the contact zone under the base (quality.market_rules.contact_zone), this "
        "share of the product's size round the base: imaging.compose's contact ellipse spans 1.1x the base "
        "and fades under 6 levels within 0.068 of the product's size beyond it, within 0.04 above and below. "
        "Without it a stand on legs or headphones on two ear cups, whose contact shadow lies between them "
        "far from any product pixel, failed market.residue on every studio template: 4 of 20 clean corpus "
        "products (seed 0) on amazon-main, reading 0.05-0.085. A floating shadow's zone spans the product's "
        "box and twice as far down (its ellipse reaches 0.09 of the size below the base): 3 of 12 products "
        "(seed 7) on white_floating failed without it.",
    )
    residue_clearance_floating: float = Field(
        0.16,
        ge=0.0,
        lt=1.0,
        description="The same for a floating shadow, which lies below the product with white between: "
        "it reaches 0.144 of the canvas in the same measurement.",
    )
    background_residue: Limit = _hi(
        0.0005,
        0.002,
        "Share of the far backdrop off white: clean white-backdrop renders read 0 (the compositor fills "
        "it with the exact colour); a 20 px speck on a 2000 px canvas reads ~0.0002, a leftover backdrop "
        "fragment or grey corner haze 0.01 and up.",
    )
    frame_max_px: int = Field(
        32, ge=1, description="How deep into the canvas a drawn border is looked for, px from each edge."
    )
    frame_step: Limit = _hi(
        12.0,
        24.0,
        "Median step between neighbouring rows/columns round all four sides: studio backdrops and "
        "generated scenes read under 2 levels (smooth towards the edge); a drawn frame is a step of "
        "25 levels and up on every side.",
    )

    # --- segmentation (read by tasks/score.py with imaging.segment.mask_confidence) ---
    segment_confidence_min: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Masks less certain than this go to review: on the segmentation "
        "benchmark good cuts score 0.95-0.97 (median) and crisp cuts of the wrong object 0.78 "
        "(imaging/segment.py). bench/qc_calibration.py, seeds 0, 7, 13, 21, 34 (2.5.9, the outline's own "
        "one-pixel anti-aliasing no longer counted as doubt): u2netp's 176 good cuts (IoU >= 0.98, nothing "
        "visibly wrong) read 0.51 at the least, median 0.96 (the low ones are stools: their thin legs are "
        "soft in the map), its 181 bad cuts median 0.86. With the rest of gate 2.5.9, the fail level's ROC "
        "points (good cuts rejected / bad cuts caught / named, this check counting as a name): none 12 / "
        "171 / 144; 0.5: 12 / 171 / 150; 0.6: 16 / 171 / 151; 0.7: 19 / 171 / 157; 0.8: 21 / 175 / 162; "
        "0.85: 28 / 175 / 166. Kept at 0.8: four bad cuts nothing else catches would ship (seed 0 lamp-55 and "
        "seed 34 lamp-17 with backdrop stuck on, seed 34 mug-04 with a part lost and backdrop added, seed 34 "
        "stand-58 cut at IoU 0.03). 2.5.8, counting "
        "the outline's anti-aliasing: 24 / 173 / 162 at 0.8 (three lamps' thin stems read 0.77-0.79). "
        "Measuring certainty away from the map's edges instead (thin parts are all edge) moved good and "
        "bad cuts alike: at 0.8 it rejected 14 good cuts and caught 165 bad.",
    )

    # --- batch consistency ---
    batch_z_limit: float = Field(
        2.0, gt=0, description="Robust z beyond which an image is an outlier (DESIGN.md: beyond 2 sigma)."
    )
    batch_min_size: int = Field(4, ge=3, description="Below 4 images a median and MAD say too little; no flags.")
    batch_sigma_floor: dict[str, float] = Field(
        default_factory=lambda: {
            "brightness_l": 1.0,
            "white_balance_a": 0.75,
            "white_balance_b": 0.75,
            "background_l": 0.75,
            "scale": 0.01,
            "centroid_x": 0.01,
            "centroid_y": 0.01,
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
    def _overrides_name_limits(self) -> QcThresholds:
        limits = {k for k, v in type(self).model_fields.items() if v.annotation is Limit}
        for profile, over in self.profile_overrides.items():
            unknown = set(over) - limits
            if unknown:
                raise ValueError(f"profile_overrides[{profile!r}] names no Limit field: {sorted(unknown)}")
        if not 0 < self.edge_rim_px < self.edge_ref_px[0] < self.edge_ref_px[1] <= self.edge_profile_px:
            raise ValueError("need 0 < edge_rim_px < edge_ref_px[0] < edge_ref_px[1] <= edge_profile_px")
        return self

    def for_profile(self, name: str) -> QcThresholds:
        """These thresholds with ``profile_overrides[name]`` applied (unchanged if none).

        >>> QcThresholds().for_profile("amazon-main").border_impure_share.fail
        0.0
        """
        over = self.profile_overrides.get(name)
        return self.model_copy(update=over) if over else self
