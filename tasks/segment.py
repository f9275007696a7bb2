"""segment_product: the product mask on the source grid, cached on content + model + params."""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from prefect import task

from imaging.refine import refine_mask
from imaging.segment import load_segmenter, mask_confidence
from imaging.weights import installed_version
from tasks.common import MODEL_LOCK, key_from, retry_transient
from tasks.records import MaskInfo, RunSettings, SourceInfo
from tasks.workdir import digest, read_png, work_path, write_png

ALPHA_CUTOUT = "source-alpha"


@lru_cache(maxsize=8)
def _installed(model_dir: Path, name: str) -> str:
    return installed_version(model_dir, name)  # hashes user-supplied files once per process


def segmenter_version(settings: RunSettings) -> str:
    """name@weights-hash: feeds the cache key, so new weights mean new masks."""
    from imaging.segment import SEGMENTERS

    return f"{settings.segmenter}@{_installed(settings.model_dir, SEGMENTERS[settings.segmenter].weight)}"


def _segment_key(p: dict) -> str:
    return "segment-" + digest(p["source"].sha256, segmenter_version(p["settings"]), p["refine_strength"],
                               p.get("fill_holes", True), p.get("cut_bias", 0))


CUT_THRESHOLD = {-1: 0.35, 0: 0.5, 1: 0.65}  # RenderParams.cut_bias -> the raw level kept as product


@task(name="segment_product", cache_key_fn=key_from(_segment_key), persist_result=True,
      retries=1, retry_condition_fn=retry_transient, task_run_name="segment-{source.sku_id}")
def segment_product(source: SourceInfo, settings: RunSettings, refine_strength: int = 1,
                    fill_holes: bool = True, cut_bias: int = 0) -> MaskInfo:
    """Run the segmenter (loaded once per worker process) and refine the cut. A retry
    asks for a different cut (quality.defects): holes kept open, more or less of the raw mask.

    A photo that already carries transparency (a cut-out PNG) is its own mask.
    """
    started = time.perf_counter()
    pixels = read_png(source.path, 4 if source.has_alpha else 3)
    rgb = pixels[..., :3]
    alpha = pixels[..., 3] if source.has_alpha else None
    if alpha is not None and (alpha < 250).mean() > 0.01:
        mask = alpha.astype(np.float32) / 255.0
        confidence, model = mask_confidence(mask), ALPHA_CUTOUT
    else:
        segmenter = load_segmenter(settings.segmenter, settings.model_dir, settings.device)
        with MODEL_LOCK:
            raw = segmenter.predict(rgb)
        mask = refine_mask(rgb, raw, strength=refine_strength, threshold=CUT_THRESHOLD[cut_bias],
                           fill_holes=fill_holes)
        confidence, model = mask_confidence(raw), segmenter_version(settings)
    if float(mask.max()) < 0.5:
        raise ValueError("no product found in the photo (the mask is empty)")
    path = work_path(settings.data_dir, source.sha256, f"mask-{digest(model, refine_strength, fill_holes, cut_bias)[:12]}.png")
    write_png(path, np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return MaskInfo(source_sha256=source.sha256, path=str(path), confidence=round(confidence, 4),
                    model=model, seconds=round(time.perf_counter() - started, 4))
