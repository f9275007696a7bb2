"""Lifestyle scenes: SDXL inpainting + ControlNet paints a backdrop around the untouched product.

``DiffusionSceneGenerator.generate`` for one SKU and one lifestyle template:

1. place the product with the studio compositor (``compose_studio``, transparent, on
   neutral grey, no shadow), then for ``anchor: floor`` shift it by whole pixels so its
   base stands on the template's surface line;
2. inpaint mask = 1 - (product coverage dilated by ``mask_dilate``): the model paints only
   the background; control image = depth (or Canny edges) of the placed grey canvas;
3. run ``StableDiffusionXLControlNetInpaintPipeline`` once per seed; seeds derive from
   ``sha256(base_seed:sku:i)``, so a SKU re-renders identically anywhere;
4. refill the protected zone from the painted surroundings (no grey halo), post-process
   the backdrop (blur, white-point match, grain) and lay the ORIGINAL product colours
   back over it with the compositor's feathered alpha: where alpha is 1 the output
   pixel *is* the placed source pixel, bit for bit;
5. rank by CLIP score against the template's text when a scorer is configured (seed
   order otherwise, ``meta["clip_score"]`` None) and return best first.

Weights are never fetched here: ``from_config`` loads local folders (or hub ids already in
the local cache) and raises one ``WeightsMissing`` listing every missing component.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
)
from PIL import Image

from imaging.clip_score import ClipScorer
from imaging.compose import compose_studio
from imaging.depth import DepthEstimator, canny_control, check_rgb, depth_control, missing_weights
from imaging.device import pick_device, pick_dtype
from imaging.errors import ModelInputError, WeightsMissing
from imaging.templates import LifestyleTemplate, PostSettings
from imaging.types import Background, Composite, Placement, ShadowSpec

GREY = (128, 128, 128)  # neutral placeholder round the product while the scene is painted
_CODE_VERSION = "1"
_PARTS = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")


class SceneGenerator(Protocol):
    name: str
    version: str

    def generate(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        template: LifestyleTemplate,
        *,
        sku: str,
        canvas_size: tuple[int, int] = (1024, 1024),
        base_seed: int = 0,
        variants: int | None = None,
        to_source: Placement | None = None,
    ) -> list[Composite]: ...


class GenerationOutOfMemory(RuntimeError):
    """The accelerator ran out of memory at full and at reduced resolution."""


@dataclass(frozen=True)
class DiffusionWeights:
    """Where the scene models live: local folders, or hub ids already in the local cache.

    The keys match the ModelStore block's ``diffusion`` mapping, so
    ``DiffusionWeights(**store.diffusion, device=store.device)`` builds one."""

    inpaint: str | None = None  # SDXL inpainting pipeline (diffusers folder, model_index.json)
    controlnet_depth: str | None = None  # SDXL depth ControlNet
    controlnet_canny: str | None = None  # SDXL canny ControlNet
    depth: str | None = None  # DPT / Depth Anything depth model (transformers folder)
    clip: str | None = None  # CLIPModel + tokenizer for ranking; None = keep seed order
    vae: str | None = None  # optional VAE override, e.g. an fp16-safe SDXL VAE
    device: str = "auto"  # "auto" = cuda > mps > cpu (imaging.device), or cpu / cuda / cuda:N
    dtype: str = "auto"  # "auto" = float16 on cuda, else float32; or float16/bfloat16/float32
    variant: str | None = None  # weight-file variant such as "fp16"
    local_files_only: bool = True  # False lets from_pretrained download: explicit choice only

    def missing(self, controlnets: Sequence[str]) -> list[str]:
        """One line per needed component that is unset or unreadable, and how to set it."""
        need = {"inpaint": "model_index.json", "vae": "config.json", "clip": "config.json"}
        need |= {f"controlnet_{kind}": "config.json" for kind in controlnets}
        if "depth" in controlnets:
            need["depth"] = "config.json"
        lines = []
        for key, filename in need.items():
            source = getattr(self, key)
            if source is None and key in ("vae", "clip"):
                continue  # optional
            problem = (
                "not configured"
                if source is None
                else missing_weights(source, filename, local_files_only=self.local_files_only)
            )
            if problem:
                lines.append(
                    f"  - {key}: {problem}; set `diffusion.{key}` in the ModelStore block "
                    "to a local folder (or a hub id already in the local cache)"
                )
        return lines


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """``imaging.device``'s choice for "auto" (cuda > mps > cpu; float16 on cuda only); an
    explicit device that is not there raises instead of running elsewhere."""
    dev = pick_device(device)
    if dtype == "auto":
        return dev, pick_dtype(dev)
    if dtype not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"dtype must be auto, float16, bfloat16 or float32, got {dtype!r}")
    return dev, getattr(torch, dtype)


def variant_seeds(sku: str, base_seed: int, count: int) -> list[int]:
    """Deterministic per-SKU seeds: the first 63 bits of sha256("base_seed:sku:i")."""
    digests = (hashlib.sha256(f"{base_seed}:{sku}:{i}".encode()).digest() for i in range(count))
    return [int.from_bytes(d[:8], "big") >> 1 for d in digests]


class DiffusionSceneGenerator:
    """SDXL inpaint + ControlNet backdrops round a preserved product (see module docstring)."""

    name = "sdxl-controlnet-inpaint"

    def __init__(
        self,
        components: Mapping[str, Any],
        controlnets: Mapping[str, ControlNetModel],
        *,
        depth: DepthEstimator | None = None,
        scorer: ClipScorer | None = None,
        device: str | torch.device = "cpu",
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """``components``: an SDXL inpaint pipeline's vae, text encoders, tokenizers, unet
        and scheduler (e.g. ``pipe.components``); ``controlnets``: {"depth"|"canny": model}."""
        if not controlnets or not set(controlnets) <= {"depth", "canny"}:
            raise ValueError(f"controlnets must map depth/canny to models, got {sorted(controlnets)}")
        absent = [p for p in _PARTS if components.get(p) is None]
        if absent:
            raise ValueError(f"SDXL inpaint components missing: {absent}")
        parts = {p: components[p] for p in _PARTS}
        self.pipes: dict[str, StableDiffusionXLControlNetInpaintPipeline] = {}
        for kind, net in controlnets.items():
            pipe = StableDiffusionXLControlNetInpaintPipeline(**parts, controlnet=net, add_watermarker=False)
            pipe.set_progress_bar_config(disable=True)
            self.pipes[kind] = pipe.to(device)
        self.depth, self.scorer, self.device = depth, scorer, torch.device(device)
        self.multiple = next(iter(self.pipes.values())).vae_scale_factor
        self.versions = dict(versions or {})
        digest = hashlib.sha256(repr(sorted(self.versions.items())).encode()).hexdigest()[:12]
        self.version = f"{_CODE_VERSION}-{digest}"

    @classmethod
    def from_config(cls, weights: DiffusionWeights, controlnets: Sequence[str] = ("depth",)) -> DiffusionSceneGenerator:
        """Load every model the given ControlNet kinds need; one ``WeightsMissing`` lists
        all that are missing. Sharing: one pipeline's components, one pipe per ControlNet."""
        if not controlnets or not set(controlnets) <= {"depth", "canny"}:
            raise ValueError(f"controlnets must be depth and/or canny, got {list(controlnets)}")
        lines = weights.missing(controlnets)
        if lines:
            raise WeightsMissing("the SDXL scene generator cannot start, weights missing:\n" + "\n".join(lines))
        device, dtype = resolve_device(weights.device, weights.dtype)
        only = weights.local_files_only
        # safetensors only: no pickles from a model folder. `dtype` is diffusers >= 0.42's name.
        local = dict(local_files_only=only, dtype=dtype, use_safetensors=True)
        try:
            base = StableDiffusionXLInpaintPipeline.from_pretrained(
                weights.inpaint, variant=weights.variant, add_watermarker=False, **local
            )
            components = dict(base.components)
            if weights.vae:
                components["vae"] = AutoencoderKL.from_pretrained(weights.vae, **local)
            nets = {
                k: ControlNetModel.from_pretrained(getattr(weights, f"controlnet_{k}"), **local) for k in controlnets
            }
        except OSError as exc:  # the folder is there but a weight file in it is not
            raise WeightsMissing(
                f"SDXL scene weights could not be read: {exc}. The folders must hold "
                "safetensors weights: re-fetch them or point the ModelStore block "
                "at complete ones."
            ) from exc
        depth = scorer = None
        if "depth" in controlnets:
            depth = DepthEstimator.load(weights.depth, device=device, dtype=dtype, local_files_only=only)
        if weights.clip:
            scorer = ClipScorer.load(weights.clip, device=device, dtype=dtype, local_files_only=only)
        keys = ["inpaint", "variant", "vae", "clip", *(f"controlnet_{k}" for k in controlnets)]
        keys += ["depth"] if "depth" in controlnets else []
        versions = {k: str(getattr(weights, k)) for k in keys if getattr(weights, k)}
        return cls(components, nets, depth=depth, scorer=scorer, device=device, versions=versions)

    def check_inputs(self, rgb, mask, template, sku, canvas_size, base_seed, variants) -> None:
        """Raise ``ModelInputError`` naming the first bad argument (diffusers' check_inputs)."""
        check_rgb(rgb)
        if not isinstance(mask, np.ndarray) or mask.dtype.kind != "f" or mask.shape != rgb.shape[:2]:
            raise ModelInputError(
                f"mask must be a float array of shape {rgb.shape[:2]}, got "
                f"{getattr(mask, 'shape', None)} {getattr(mask, 'dtype', type(mask).__name__)}"
            )
        if not np.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1 or not (mask >= 0.5).any():
            raise ModelInputError("mask must be finite, in [0, 1], with some product (>= 0.5)")
        if not isinstance(template, LifestyleTemplate):
            raise ModelInputError(f"needs a lifestyle template, got {type(template).__name__}")
        kind = template.controlnet
        if kind not in self.pipes:
            raise ModelInputError(
                f"template {template.name} needs the {kind} ControlNet; loaded: "
                f"{sorted(self.pipes)} (configure controlnet_{kind})"
            )
        if kind == "depth" and self.depth is None:
            raise ModelInputError(f"template {template.name} needs a depth model; none configured")
        if not isinstance(sku, str) or not sku:
            raise ModelInputError("sku must be a non-empty string (it seeds the variants)")
        low, step = 8 * self.multiple, self.multiple
        if len(canvas_size) != 2 or not all(
            isinstance(v, int) and low <= v <= 4096 and v % step == 0 for v in canvas_size
        ):
            raise ModelInputError(
                f"canvas_size must be (w, h) ints, multiples of {step} in {low}..4096, got {canvas_size!r}"
            )
        if not isinstance(base_seed, int) or base_seed < 0:
            raise ModelInputError(f"base_seed must be an int >= 0, got {base_seed!r}")
        if variants is not None and not (isinstance(variants, int) and 1 <= variants <= 16):
            raise ModelInputError(f"variants must be an int in 1..16, got {variants!r}")

    def generate(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        template: LifestyleTemplate,
        *,
        sku: str,
        canvas_size: tuple[int, int] = (1024, 1024),
        base_seed: int = 0,
        variants: int | None = None,
        to_source: Placement | None = None,
    ) -> list[Composite]:
        """``variants`` (default: the template's) scenes of ``canvas_size`` (w, h), best first.

        ``rgb`` (H, W, 3) uint8 and ``mask`` (H, W) float in [0, 1] are the source photo and
        its product mask; ``to_source`` maps original-photo pixels to ``rgb`` (crops)."""
        self.check_inputs(rgb, mask, template, sku, canvas_size, base_seed, variants)
        colour, alpha, placement = self._place(rgb, mask, template, canvas_size, to_source)
        a = alpha[..., None]
        grey = np.rint(colour * a + np.float32(GREY) * (1.0 - a)).astype(np.uint8)
        keep = (alpha > 0).astype(np.uint8)
        radius = math.ceil(template.mask_dilate * max(canvas_size))
        if radius:
            disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            keep = cv2.dilate(keep, disk)
        paint = ((1 - keep) * 255).astype(np.uint8)  # white = repaint
        if template.controlnet == "depth":
            control = depth_control(self.depth.estimate(grey))
        else:
            control = canny_control(grey)
        prompt = template.render_prompt()
        floor = placement_floor(alpha) if template.anchor == "floor" else None
        results, size = [], tuple(canvas_size)
        for index, seed in enumerate(variant_seeds(sku, base_seed, variants or template.variants)):
            scene, size = self._paint(template, prompt, (grey, paint, control), seed, size, canvas_size)
            scene = fill_protected(scene, keep)
            backdrop, post_meta = post_process(scene, colour, alpha, template.post, floor, seed)
            out = np.rint(np.clip(colour * a + backdrop * (1.0 - a), 0, 255)).astype(np.uint8)
            meta = {
                "template": template.name,
                "template_version": template.version,
                "sku": sku,
                "base_seed": base_seed,
                "seed": seed,
                "variant_index": index,
                "clip_score": None,
                "generator": f"{self.name}@{self.version}",
                "models": dict(self.versions),
                "controlnet": template.controlnet,
                "prompt": prompt,
                "generated_size": size,
                "post": post_meta,
                "light_direction_deg": template.light_direction_deg,
                "feather_px": feather_for(canvas_size),
            }
            results.append(Composite(out, alpha, placement, None, None, meta))
        if self.scorer is not None:
            scores = self.scorer.score([c.rgb for c in results], template.clip_text)
            for comp, value in zip(results, scores, strict=True):
                comp.meta["clip_score"] = float(value)
            results.sort(key=lambda c: -c.meta["clip_score"])  # stable: ties keep seed order
        for rank, comp in enumerate(results):
            comp.meta["rank"] = rank
        return results

    def _place(self, rgb, mask, template, canvas_size, to_source):
        """Placed product colours (H, W, 3) float32, alpha (H, W), source -> canvas placement."""
        placed = compose_studio(
            rgb,
            mask,
            canvas_size=canvas_size,
            background=Background(colour=GREY),
            shadow=ShadowSpec(style="none"),
            fill=template.fill,
            to_source=to_source,
            feather_px=feather_for(canvas_size),
            transparent=True,
        )
        colour, alpha, placement = placed.rgb.astype(np.float32), placed.product_alpha, placed.placement
        if template.anchor == "floor":  # whole-pixel shift: no resampling of the product
            rows = np.flatnonzero((alpha > 0).any(axis=1))
            height = alpha.shape[0]
            shift = round(template.floor_y * height) - placement_floor(alpha)
            shift = int(np.clip(shift, -rows[0], height - 1 - rows[-1]))  # stay on the canvas
            colour, alpha = np.roll(colour, shift, axis=0), np.roll(alpha, shift, axis=0)
            placement = Placement(placement.scale, placement.offset_x, placement.offset_y + shift)
        return colour, alpha, placement

    def _paint(self, template, prompt, inputs, seed, size, canvas_size):
        """One scene, float32 (H, W, 3) at canvas size, and the size it was generated at.

        On CUDA out-of-memory: retry once at 3/4 of the size (the backdrop is then resized
        up; the product stays full resolution), then raise ``GenerationOutOfMemory``.
        """
        try:
            return self._run(template, prompt, inputs, seed, size, canvas_size), size
        except torch.OutOfMemoryError as first:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            step, low = self.multiple, 8 * self.multiple
            smaller = tuple(max(low, int(v * 0.75) // step * step) for v in size)
            if smaller == tuple(size):
                raise GenerationOutOfMemory(f"out of memory at {size}, cannot go smaller") from first
            try:
                return self._run(template, prompt, inputs, seed, smaller, canvas_size), smaller
            except torch.OutOfMemoryError as second:
                raise GenerationOutOfMemory(
                    f"out of accelerator memory for {template.name} at {size[0]}x{size[1]} and "
                    f"at {smaller[0]}x{smaller[1]}: free the device, lower canvas_size, or use "
                    "a larger GPU"
                ) from second

    def _run(self, template, prompt, inputs, seed, size, canvas_size) -> np.ndarray:
        grey, paint, control = inputs
        resize = tuple(size) != tuple(canvas_size)

        def fit(img: np.ndarray, interp: int) -> Image.Image:
            return Image.fromarray(cv2.resize(img, size, interpolation=interp) if resize else img)

        out = self.pipes[template.controlnet](
            prompt=prompt,
            negative_prompt=template.negative_prompt or None,
            image=fit(grey, cv2.INTER_AREA),
            mask_image=fit(paint, cv2.INTER_NEAREST),
            control_image=fit(control, cv2.INTER_AREA),
            width=size[0],
            height=size[1],
            strength=template.strength,
            num_inference_steps=template.num_inference_steps,
            guidance_scale=template.guidance_scale,
            controlnet_conditioning_scale=template.conditioning_scale,
            control_guidance_end=template.control_guidance_end,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        ).images[0]
        if not np.isfinite(out).all():
            raise FloatingPointError(f"scene model gave NaN/inf for seed {seed}: use float32 or an fp16-safe VAE")
        scene = np.clip(out, 0.0, 1.0).astype(np.float32) * 255.0
        return cv2.resize(scene, canvas_size, interpolation=cv2.INTER_CUBIC) if resize else scene


def feather_for(canvas_size: tuple[int, int]) -> float:
    """The product's edge feather on a painted scene (px): 1 per 1024 px of canvas, at least 1."""
    return max(1.0, max(canvas_size) / 1024)


def placement_floor(alpha: np.ndarray) -> int:
    """Row just below the product's base (last row with coverage >= 0.5), exclusive."""
    return int(np.flatnonzero((alpha >= 0.5).any(axis=1))[-1]) + 1


def fill_protected(scene: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Repaint the protected zone (product + margin, ``keep`` == 1) from the generated
    surroundings (Telea inpainting), so the product's feathered rim and the margin blend
    into the scene instead of into the grey placeholder the model left there."""
    filled = cv2.inpaint(np.rint(scene).astype(np.uint8), keep.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return filled.astype(np.float32)


def post_process(
    scene: np.ndarray, colour: np.ndarray, alpha: np.ndarray, post: PostSettings, floor: int | None, seed: int
) -> tuple[np.ndarray, dict]:
    """The backdrop after blur, white-point match and grain: float32 (H, W, 3) in [0, 255].

    Blur is a Gaussian of ``backdrop_blur x long side``; with a floor line it fades in
    above the surface (the surface in front of the base stays sharp). White-point match
    scales the backdrop's channels so the hue of its brightest 5 % moves towards the hue
    of the product's brightest 5 %, gains clipped to [0.8, 1.25]. Grain is seeded
    monochrome Gaussian noise. Only the backdrop changes: the caller lays the product on.
    """
    height, width = alpha.shape
    out, meta = scene.astype(np.float32), {}
    if post.backdrop_blur > 0:
        sigma = post.backdrop_blur * max(height, width)
        blurred = cv2.GaussianBlur(out, (0, 0), sigma)
        if floor is None:
            out = blurred
        else:
            ramp = max(1.0, 0.15 * height)
            w = np.clip((floor - np.arange(height, dtype=np.float32)) / ramp, 0, 1)[:, None, None]
            out = blurred * w + out * (1.0 - w)
        meta["blur_sigma_px"] = round(sigma, 3)
    if post.temperature_match > 0:
        product, backdrop = colour[alpha >= 1.0], out[alpha <= 0.0]
        if len(product) >= 64 and len(backdrop) >= 64:
            gains = _white_point(product) / _white_point(backdrop)
            gains = np.clip(1.0 + post.temperature_match * (gains / gains.mean() - 1.0), 0.8, 1.25)
            out = out * gains.astype(np.float32)
            meta["temperature_gains"] = [round(float(g), 4) for g in gains]
        else:
            meta["temperature_gains"] = "skipped: fewer than 64 product or backdrop pixels"
    if post.grain > 0:
        noise = np.random.default_rng(seed).normal(0.0, post.grain, (height, width, 1))
        out = out + noise.astype(np.float32)
        meta["grain_std"] = post.grain
    return np.clip(out, 0.0, 255.0), meta


def _white_point(pixels: np.ndarray) -> np.ndarray:
    """Chromaticity (channel / mean) of the brightest 5 % of ``pixels`` (N, 3)."""
    luma = pixels @ np.float32([0.2126, 0.7152, 0.0722])
    bright = pixels[luma >= np.quantile(luma, 0.95)]
    return np.maximum(bright.mean(axis=0), 1.0) / max(float(bright.mean()), 1.0)
