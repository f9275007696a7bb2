"""The product cut out (and upscaled only when the profiles need it), then placed in the
template's scene for each export profile. In memory, called by ``render_sku``
(tasks/attempt.py); only the upscaled crop is stored, for reuse."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from imaging.compose import compose_studio, crop_to_product, overlay_product, product_bbox
from imaging.decontaminate import decontaminate_edges
from imaging.errors import WeightsMissing
from imaging.profiles import ExportProfile, profile_canvas
from imaging.provenance import digital_source_type
from imaging.templates import get_template, load_templates
from imaging.types import Composite, Placement, ShadowSpec
from imaging.upscale import Upscaler, load_upscaler, upscale_to
from imaging.weights import verify
from tasks.common import MODEL_LOCK, profiles_for
from tasks.records import RenderParams, RunSettings, SkuJob
from tasks.workdir import decode_work_image, digest, encode_png, work_store

CROP_MARGIN = 8  # px of context kept round the product for edge filters
CROP_SNAP = 32  # crop boxes snap outward to this grid: refinements keep the same box
CLASSICAL_BELOW = 1.3  # below this scale a x4 model would only be blurred back down
MAX_UPSCALE = 8.0  # beyond this no upscaler invents believable detail: the source is too small
NCNN_PIXELS_PER_SECOND = 5_500.0  # Real-ESRGAN x4plus ncnn, 2 CPU cores: ~12 s for 256x256 in


@lru_cache(maxsize=4)
def template_library(templates_dir: Path | None):
    return load_templates([templates_dir] if templates_dir else [])


@lru_cache(maxsize=2)
def scene_generator(weights: tuple[tuple[str, str], ...], device: str, controlnet: str):
    """One generator per worker process and configuration (models load once). Imported
    here: diffusers and transformers cost seconds to import and studio runs never need them."""
    from imaging.lifestyle import DiffusionSceneGenerator, DiffusionWeights

    return DiffusionSceneGenerator.from_config(
        DiffusionWeights(**dict(weights), device=device), controlnets=(controlnet,)
    )


def target_product_px(profiles: list[ExportProfile], fill: float | None) -> int:
    """The largest product size (longest side, px) any of the profiles will draw."""
    sizes = []
    for profile in profiles:
        side = max(profile.canvas) if profile.canvas else profile.longest_side
        sizes.append(side * (fill or profile.fill))
    return int(round(max(sizes)))


@dataclass(frozen=True)
class Cutout:
    """The product crop (maybe upscaled) in memory, and how source pixels map onto it."""

    rgb: np.ndarray
    alpha: np.ndarray
    to_crop: Placement
    upscaler: str  # "none" or the model that enlarged it
    reused: bool  # the upscaled crop came from the work store


def cut_out(
    source_sha256: str,
    rgb: np.ndarray,
    mask: np.ndarray,
    profiles: list[str],
    settings: RunSettings,
    params: RenderParams,
) -> Cutout:
    """Crop to the product; upscale the crop only if a profile draws it bigger than it is.

    The upscaled crop depends on the pixels and the (snapped) box only, not on the mask's
    refinement, so it is stored under those and a retry with another cut reuses it."""
    crop, crop_alpha, to_crop = crop_to_product(rgb, mask, CROP_MARGIN, snap_px=CROP_SNAP)
    x0, y0, x1, y1 = product_bbox(crop_alpha)
    known = profiles_for(settings)
    need = target_product_px([known[p] for p in profiles], params.fill) / max(x1 - x0, y1 - y0)
    upscaler = choose_upscaler(crop.shape[:2], need, settings)
    name, reused = "none", False
    if upscaler is not None:
        scale = round(min(need, MAX_UPSCALE), 2)
        store = work_store(settings)
        memo = store.ref(
            source_sha256,
            "upscaled-" + digest(to_crop, crop.shape, upscaler.name, upscaler.version, scale)[:16] + ".png",
        )
        reused = store.exists(memo)
        if reused:
            up = decode_work_image(store.get(memo), 3, "stored upscaled crop")
        else:
            with MODEL_LOCK:
                up, _ = upscale_to(crop, None, scale, upscaler)
            store.put(memo, encode_png(up))
        factor = up.shape[1] / crop.shape[1]
        crop_alpha = np.clip(cv2.resize(crop_alpha, up.shape[1::-1], interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        crop, to_crop, name = up, to_crop.then(Placement(factor, 0.0, 0.0)), upscaler.name
    if params.decontaminate:
        crop = decontaminate_edges(crop, crop_alpha)
    return Cutout(crop, crop_alpha, to_crop, name, reused)


def choose_upscaler(crop_hw: tuple[int, int], need: float, settings: RunSettings) -> Upscaler | None:
    """None when the compositor's own resampling is enough (small scale, or ``lanczos``);
    ``auto`` takes the torch model on CUDA when its weights are present, else the ncnn model
    if its time estimate fits ``upscale_budget_s``, else classical resampling."""
    if need <= CLASSICAL_BELOW or settings.upscaler == "lanczos":
        return None
    name = settings.upscaler
    if name == "auto":
        if settings.device.startswith("cuda") and verify(settings.model_dir, "realesrgan-x4plus-pth"):
            name = "realesrgan-x4plus"
        elif crop_hw[0] * crop_hw[1] / NCNN_PIXELS_PER_SECOND <= settings.upscale_budget_s:
            name = "realesrgan-x4plus-ncnn"
        else:
            return None
    return load_upscaler(name, settings.model_dir, settings.device)


def weights_fingerprint(folder: str) -> str:
    """Cheap identity of a user-supplied model folder: file names, sizes and mtimes."""
    root = Path(folder)
    if not root.exists():
        return "absent"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return digest(*[(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in files])[:16]


def scene_identity(template, settings: RunSettings) -> tuple:
    """What else decides a lifestyle scene: which weights painted it, at what size, where."""
    if template.kind != "lifestyle":
        return ()
    return (
        settings.generation_size,
        settings.device,
        sorted((k, weights_fingerprint(v)) for k, v in settings.diffusion.items()),
    )


def render_profile(
    job: SkuJob, cutout: Cutout, profile: str, settings: RunSettings, params: RenderParams
) -> tuple[Composite, dict]:
    """Compose the product into the template's scene at the profile's canvas: the
    composite and what a ``RenderInfo`` says about it (tasks/attempt.py adds the file)."""
    template = get_template(job.template, template_library(settings.templates_dir))
    spec_profile = profiles_for(settings)[profile]
    rgb, alpha, to_source = cutout.rgb, cutout.alpha, cutout.to_crop  # source -> crop, as compose wants
    x0, y0, x1, y1 = product_bbox(alpha)
    if template.kind == "lifestyle" and spec_profile.background == "template":
        composite = _generate(job, template, spec_profile, rgb, alpha, to_source, settings, params)
    else:
        background = template.to_background() if template.kind == "studio" else None
        shadow = template.to_shadow() if template.kind == "studio" else ShadowSpec("soft")
        if params.shadow_strength is not None:
            shadow = ShadowSpec(shadow.style, shadow.light_direction_deg, params.shadow_strength)
        fill = params.fill or (template.fill if spec_profile.background == "template" else spec_profile.fill)
        spec = profile_canvas(
            spec_profile,
            background,
            shadow,
            product_size=(x1 - x0, y1 - y0),
            source_product_px=max(x1 - x0, y1 - y0) / to_source.scale,  # crop px -> working-grid px
            fill=fill,
        )
        composite = compose_studio(
            rgb,
            alpha,
            canvas_size=spec.size,
            background=spec.background,
            shadow=spec.shadow,
            fill=fill,
            transparent=spec.transparent,
            to_source=to_source,
        )
    transparent = spec_profile.background == "transparent"
    p = composite.placement
    drawn = composite.shadow if not transparent else None
    solid = composite.background is not None and composite.background.kind == "solid" and not transparent
    return composite, dict(
        profile=profile,
        template=template.name,
        scale=p.scale,
        offset_x=p.offset_x,
        offset_y=p.offset_y,
        params=params,
        shadow_style=drawn.style if drawn else None,
        light_direction_deg=drawn.light_direction_deg if drawn else composite.meta.get("light_direction_deg"),
        background=tuple(composite.background.colour) if solid else None,
        seed=composite.meta.get("seed", params.seed),
        digital_source_type=digital_source_type(template.kind, spec_profile.background),
    )


def _generate(job, template, profile, rgb, alpha, to_source, settings, params):
    """The best of the template's variants (CLIP-ranked); QC then gates it like any render."""
    if not settings.diffusion:
        raise WeightsMissing(
            f"template {template.name!r} is a lifestyle scene and needs SDXL inpaint + ControlNet "
            "weights: set diffusion.inpaint, diffusion.controlnet_depth (and depth) in the "
            "ModelStore block, or use a studio template"
        )
    generator = scene_generator(tuple(sorted(settings.diffusion.items())), settings.device, template.controlnet)
    side = settings.generation_size
    (w, h) = profile.canvas or (profile.longest_side, profile.longest_side)
    scale = side / max(w, h)
    size = (max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8))
    best = generator.generate(
        rgb, alpha, template, sku=job.sku, canvas_size=size, base_seed=params.seed or 0, to_source=to_source
    )[0]
    if size == (w, h):
        return best
    grow = Placement(w / size[0], 0.0, 0.0)
    backdrop = cv2.resize(best.rgb, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas, coverage = overlay_product(backdrop, rgb, alpha, to_source.inverse().then(best.placement).then(grow))
    return Composite(rgb=canvas, product_alpha=coverage, placement=best.placement.then(grow), meta=best.meta)
