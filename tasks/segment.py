"""The product mask of one SKU attempt at its working resolution: segment + refine, or
reuse the stored one.

Called inside ``render_sku`` (tasks/attempt.py); no task of its own. The mask is stored on
the source grid in the work store under a name made of everything that decides it (the
model and its weights, the refinement parameters), so a retry that does not change the
cut, a reviewer's re-render and a re-run read it instead of segmenting again
(docs/ARCHITECTURE.md, "Unit of work").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from imaging.compose import product_bbox
from imaging.refine import refine_mask
from imaging.segment import load_segmenter, mask_confidence
from imaging.types import Placement
from imaging.weights import installed_version
from tasks.common import MODEL_LOCK
from tasks.records import RenderParams, RunSettings
from tasks.workdir import decode_work_image, digest, encode_png, work_store

ALPHA_CUTOUT = "source-alpha"
CUT_THRESHOLD = {-1: 0.35, 0: 0.5, 1: 0.65}  # RenderParams.cut_bias -> the raw level kept as product
PREVIEW_PX = 1024  # longest side the segmenter is given (it works at 320 px: u2netp)
WORK_MARGIN = 1.25  # the working grid draws the product this much larger than the largest output
MIN_SHRINK = 0.8  # shrinking by less than this saves too little to be worth a resampling


@lru_cache(maxsize=8)
def _installed(model_dir: Path, name: str) -> str:
    return installed_version(model_dir, name)  # hashes user-supplied files once per process


def segmenter_version(settings: RunSettings) -> str:
    """name@weights-hash: part of the mask's name, so new weights mean new masks."""
    from imaging.segment import SEGMENTERS

    return f"{settings.segmenter}@{_installed(settings.model_dir, SEGMENTERS[settings.segmenter].weight)}"


def own_alpha(alpha: np.ndarray | None) -> bool:
    """A photo that already carries transparency (a cut-out PNG) is its own mask."""
    return alpha is not None and bool((alpha < 250).mean() > 0.01)


def mask_key(source_sha256: str, model: str, params: RenderParams) -> str:
    return digest(source_sha256, model, params.refine_strength, params.fill_holes, params.cut_bias)[:16]


@dataclass(frozen=True)
class Working:
    """A SKU's pixels at the resolution its outputs need (docs/ARCHITECTURE.md, "Unit of
    work"): the photo and its product mask on the working grid, and the map from the
    photo's own pixels onto it (identity when the photo is no larger than needed)."""

    rgb: np.ndarray
    mask: np.ndarray  # float32 in [0, 1], 1/255 steps
    to_work: Placement
    confidence: float
    model: str
    mask_path: str  # the mask on the photo's own grid, in the work store, for reuse and export
    reused: bool


def working_scale(mask: np.ndarray, mask_scale: float, need_px: float) -> float:
    """Scale from the photo to the working grid: the product drawn ``WORK_MARGIN`` times as
    large as the largest output draws it, never enlarged, and not resampled for a small gain.
    ``mask`` is on a grid ``mask_scale`` times the photo's."""
    x0, y0, x1, y1 = product_bbox(mask)
    product_px = max(x1 - x0, y1 - y0) / mask_scale
    scale = need_px * WORK_MARGIN / max(product_px, 1.0)
    return 1.0 if scale >= MIN_SHRINK else scale


def _shrink(pixels: np.ndarray, scale: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    return cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def product_mask(
    source_sha256: str,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    settings: RunSettings,
    params: RenderParams,
    need_px: float,
) -> Working:
    """The product mask at the working resolution, segmenting only when no stored mask fits."""
    cut_out_already = own_alpha(alpha)
    model = ALPHA_CUTOUT if cut_out_already else segmenter_version(settings)
    key = mask_key(source_sha256, model, params)
    store = work_store(settings)
    path = store.ref(source_sha256, f"mask-{key}.png")
    confidence_path = store.ref(source_sha256, f"mask-{key}.confidence")
    if cut_out_already:
        mask = alpha.astype(np.float32) / 255.0
        if not store.exists(path):
            store.put(path, encode_png(alpha))
        return _at_work(rgb, mask, round(mask_confidence(mask), 4), ALPHA_CUTOUT, path, False, need_px)
    if store.exists(confidence_path):  # written after the mask: the mask is complete
        try:
            mask = decode_work_image(store.get(path), 1, "stored mask").astype(np.float32) / 255.0
        except (FileNotFoundError, ValueError):
            mask = None  # gone or damaged: segment again
        if mask is not None and mask.shape == rgb.shape[:2]:
            confidence = float(store.get(confidence_path).decode())
            return _at_work(rgb, mask, confidence, model, path, True, need_px)
    segmenter = load_segmenter(settings.segmenter, settings.model_dir, settings.device)
    preview_scale = min(1.0, PREVIEW_PX / max(rgb.shape[:2]))  # the network sees 320 px: a preview is enough
    preview = rgb if preview_scale == 1.0 else _shrink(rgb, preview_scale)
    with MODEL_LOCK:
        raw = segmenter.predict(preview)
    confidence = round(mask_confidence(raw), 4)
    scale = working_scale(raw >= 0.5, preview_scale, need_px) if float(raw.max()) >= 0.5 else 1.0
    work = rgb if scale == 1.0 else _shrink(rgb, scale)
    if raw.shape != work.shape[:2]:
        raw = cv2.resize(raw, work.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    mask = refine_mask(
        work,
        raw,
        strength=params.refine_strength,
        threshold=CUT_THRESHOLD[params.cut_bias],
        fill_holes=params.fill_holes,
    )
    if float(mask.max()) < 0.5:
        raise ValueError("no product found in the photo (the mask is empty)")
    mask8 = np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # The stored mask is on the photo's grid (export ships it; a reuse shrinks it again),
    # enlarged as 8 bits: a 48 MP float copy alone took ~1 s.
    stored = mask8 if scale == 1.0 else cv2.resize(mask8, rgb.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    store.put(path, encode_png(stored))
    store.put(confidence_path, repr(confidence).encode())
    mask = mask8.astype(np.float32) / 255.0
    return Working(work, mask, Placement(scale, 0.0, 0.0), confidence, model, path, False)


def _at_work(rgb, mask, confidence, model, path, reused, need_px) -> Working:
    scale = working_scale(mask, 1.0, need_px) if float(mask.max()) >= 0.5 else 1.0
    if scale == 1.0:
        return Working(rgb, mask, Placement.identity(), confidence, model, path, reused)
    small = np.round(_shrink(mask, scale) * 255.0) / 255.0
    return Working(
        _shrink(rgb, scale), small.astype(np.float32), Placement(scale, 0.0, 0.0), confidence, model, path, reused
    )
