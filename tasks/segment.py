"""The product mask of one SKU attempt at its working resolution: segment + refine, or
reuse the stored one.

Called inside ``render_sku`` (tasks/attempt.py); no task of its own. The mask is stored on
the source grid in the work store under a name made of everything that decides it (the
model and its weights, the refinement parameters), so a retry that does not change the
cut, a reviewer's re-render and a re-run read it instead of segmenting again
(docs/ARCHITECTURE.md, "Unit of work").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from imaging.compose import product_bbox
from imaging.decode import decode_image
from imaging.refine import refine_mask
from imaging.segment import load_segmenter, mask_confidence
from imaging.types import Placement
from imaging.weights import installed_version
from tasks.common import MODEL_LOCK
from tasks.records import RenderParams, RunSettings, SourceInfo
from tasks.workdir import MASK_PNG_COMPRESSION, decode_work_image, digest, encode_png, work_store

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
    mask_sha256: str  # of the stored mask's bytes: mask.png as export ships it


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


def load_source(source: SourceInfo, settings: RunSettings):
    """The stored original, decoded with the run's caps: (rgb, alpha or None)."""
    data = work_store(settings).get(source.path)
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise ValueError("the stored source photo does not match its checksum (validate it again)")
    decoded = decode_image(
        data, name=f"sku {source.sku_id}", max_pixels=settings.max_pixels, max_bytes=settings.max_bytes
    )
    return decoded.rgb, decoded.alpha


def product_mask(source: SourceInfo, settings: RunSettings, params: RenderParams, need_px: float) -> Working:
    """The photo and its product mask at the working resolution, segmenting only when no
    stored mask fits. The photo is decoded here and its full-size pixels are let go as soon
    as the working copy exists: at camera size they are the largest array of the attempt."""
    rgb, alpha = load_source(source, settings)
    cut_out_already = own_alpha(alpha)
    model = ALPHA_CUTOUT if cut_out_already else segmenter_version(settings)
    key = mask_key(source.sha256, model, params)
    store = work_store(settings)
    path = store.ref(source.sha256, f"mask-{key}.png")
    confidence_path = store.ref(source.sha256, f"mask-{key}.confidence")
    if cut_out_already:
        data = encode_png(alpha, MASK_PNG_COMPRESSION)
        if not store.exists(path):
            store.put(path, data)
        confidence = round(mask_confidence(alpha.astype(np.float32) / 255.0), 4)
        return _at_work(rgb, alpha, confidence, ALPHA_CUTOUT, path, False, need_px, _sha(data))
    del alpha
    if store.exists(confidence_path):  # written after the mask: the mask is complete
        try:
            data = store.get(path)
            mask8 = decode_work_image(data, 1, "stored mask")
        except (FileNotFoundError, ValueError):
            mask8 = None  # gone or damaged: segment again
        if mask8 is not None and mask8.shape == rgb.shape[:2]:
            confidence = float(store.get(confidence_path).decode())
            return _at_work(rgb, mask8, confidence, model, path, True, need_px, _sha(data))
        del mask8
    segmenter = load_segmenter(settings.segmenter, settings.model_dir, settings.device)
    preview_scale = min(1.0, PREVIEW_PX / max(rgb.shape[:2]))  # the network sees 320 px: a preview is enough
    preview = rgb if preview_scale == 1.0 else _shrink(rgb, preview_scale)
    with MODEL_LOCK:
        raw = segmenter.predict(preview)
    del preview
    confidence = round(mask_confidence(raw), 4)
    scale = working_scale(raw >= 0.5, preview_scale, need_px) if float(raw.max()) >= 0.5 else 1.0
    photo_hw = rgb.shape[:2]
    work = rgb if scale == 1.0 else _shrink(rgb, scale)
    del rgb  # from here on the photo is its working copy
    mask = refine_mask(
        work,
        _on_grid(raw, work.shape[:2]),  # a temporary: refine_mask lets it go once it has read it
        strength=params.refine_strength,
        threshold=CUT_THRESHOLD[params.cut_bias],
        fill_holes=params.fill_holes,
    )
    del raw
    if float(mask.max()) < 0.5:
        raise ValueError("no product found in the photo (the mask is empty)")
    mask8 = np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
    del mask
    # The stored mask is on the photo's grid (export ships it; a reuse shrinks it again),
    # enlarged as 8 bits: a 48 MP float copy alone took ~1 s.
    stored = mask8 if scale == 1.0 else cv2.resize(mask8, photo_hw[::-1], interpolation=cv2.INTER_LINEAR)
    data = encode_png(stored, MASK_PNG_COMPRESSION)  # the bytes export ships as mask.png
    del stored
    store.put(path, data)
    store.put(confidence_path, repr(confidence).encode())
    return Working(work, _unit(mask8), Placement(scale, 0.0, 0.0), confidence, model, path, False, _sha(data))


def _on_grid(raw: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return raw if raw.shape == hw else cv2.resize(raw, hw[::-1], interpolation=cv2.INTER_LINEAR)


def _unit(mask8: np.ndarray) -> np.ndarray:
    """An 8-bit mask as float32 in [0, 1] (divided in place: one float array, not two)."""
    mask = mask8.astype(np.float32)
    mask /= 255.0
    return mask


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _at_work(rgb, mask8, confidence, model, path, reused, need_px, mask_sha256) -> Working:
    """The working copies of the photo and of its 8-bit mask on the photo's grid (shrunk
    as 8 bits: a float copy of a 48 MP mask alone is 190 MB)."""
    product = mask8 >= 128  # mask >= 0.5
    scale = working_scale(product, 1.0, need_px) if product.any() else 1.0
    del product
    if scale != 1.0:
        rgb, mask8 = _shrink(rgb, scale), _shrink(mask8, scale)
    placement = Placement.identity() if scale == 1.0 else Placement(scale, 0.0, 0.0)
    return Working(rgb, _unit(mask8), placement, confidence, model, path, reused, mask_sha256)
