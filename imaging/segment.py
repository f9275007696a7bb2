"""Product segmentation: one ``Segmenter`` interface, one ONNX backend, a dict registry.

The CPU default is u2netp (salient-object detection, 320x320 input, rembg's
preprocessing). BiRefNet-general and RMBG-1.4 ONNX exports run through the same class
with a different :class:`OnnxSegmenterConfig` (1024x1024 input, their own normalisation,
sigmoid or not). Every mask comes back on the *source* pixel grid.

Confidence (:func:`mask_confidence`), computed on the model's raw soft mask ``m``:

    certainty   = 1 - max(0, #(0.1 < m <= 0.9) - outline) / #(m > 0.1)
                  the share of everything maybe-product that is not doubt: soft pixels beyond
                  one per outline pixel of (m > 0.5) (a crisp map's own anti-aliasing, which a
                  thin part is all of: a stool's legs, a lamp's stem)
    fragments   = share of the (m > 0.5) area outside the largest component in components
                  smaller than 10 % of the largest or 0.1 % of the image (speckle; a pair
                  of shoes keeps both shoes)
    ragged      = edge pixels / circumference of a disc of the same area (1 for a disc;
                  real products measured 1.1-2.6; speckle 12+); term min(1, 5 / ragged)
    border      = share of the image's outermost pixel ring with m > 0.5
    coverage    = mean(m > 0.5); ramps 0 -> 1 over [0.2 %, 1 %] and 1 -> 0 over [90 %, 98 %]
    confidence  = certainty * (1 - fragments) * min(1, 5 / ragged) * (1 - 0.5 * border)
                  * coverage_ramp

so an empty or whole-frame mask scores 0, a crisp single object well inside the frame
scores close to 1, and a half-grey or speckled mask scores low. It cannot see a crisp
mask of the *wrong* object (a salient cup behind the product): on the benchmark's
cluttered set those keep 0.78 median vs. 0.95 for good cuts (bench/segmentation_quality.py,
2026-12-05; 0.76 and 0.93 before the outline's own anti-aliasing stopped counting as doubt),
so QC should pair it with the product-fill and colour checks.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from PIL import Image

from imaging.errors import ModelInputError
from imaging.refine import refine_mask
from imaging.types import SegmentResult
from imaging.weights import installed_version, weight_path

MIN_SIDE = 16  # smallest source side a segmenter accepts


class Segmenter(Protocol):
    name: str
    version: str

    def segment(self, rgb: np.ndarray) -> SegmentResult:
        """Mask of the salient product in ``rgb`` ((H, W, 3) uint8), on the same grid."""
        ...


@dataclass(frozen=True)
class OnnxSegmenterConfig:
    """How to feed one ONNX salient-object / matting model and read its output."""

    weight: str  # key in imaging.weights.WEIGHTS
    input_size: tuple[int, int]  # (width, height) the network takes
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: Literal["max", "255"] = "max"  # rembg divides by the image max, others by 255
    activation: Literal["none", "sigmoid"] = "none"
    minmax: bool = True  # min-max normalise the prediction to [0, 1]


SEGMENTERS: dict[str, OnnxSegmenterConfig] = {
    "u2netp": OnnxSegmenterConfig(
        weight="u2netp",
        input_size=(320, 320),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    ),
    "birefnet-general": OnnxSegmenterConfig(
        weight="birefnet-general",
        input_size=(1024, 1024),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        activation="sigmoid",
    ),
    "rmbg-1.4": OnnxSegmenterConfig(
        weight="rmbg-1.4",
        input_size=(1024, 1024),
        mean=(0.5, 0.5, 0.5),
        std=(1.0, 1.0, 1.0),
        scale="255",
    ),
}


def check_rgb(rgb: np.ndarray, min_side: int = MIN_SIDE) -> None:
    """Raise :class:`ModelInputError` unless ``rgb`` is (H, W, 3) uint8 with both sides >= min_side."""
    if not isinstance(rgb, np.ndarray):
        raise ModelInputError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ModelInputError(f"expected uint8 RGB, got dtype {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ModelInputError(f"expected shape (H, W, 3), got {rgb.shape}")
    if min(rgb.shape[:2]) < min_side:
        raise ModelInputError(f"image {rgb.shape[1]}x{rgb.shape[0]} is smaller than {min_side} px")


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def mask_confidence(mask: np.ndarray) -> float:
    """How sure a soft mask ((H, W) float in [0, 1]) is; formula in the module docstring."""
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2 or m.size == 0 or not np.isfinite(m).all():
        raise ModelInputError(f"expected a finite (H, W) mask, got shape {m.shape}")
    fg = m > 0.5
    coverage = float(fg.mean())
    ramp = _ramp(coverage, 0.002, 0.01) * (1.0 - _ramp(coverage, 0.90, 0.98))
    if ramp == 0.0:
        return 0.0
    fg8 = fg.astype(np.uint8)
    edge = float(((fg8 - cv2.erode(fg8, np.ones((3, 3), np.uint8))) > 0).sum())
    soft = float(((m > 0.1) & (m <= 0.9)).sum())
    certainty = 1.0 - max(0.0, soft - edge) / max(float((m > 0.1).sum()), 1.0)
    _, _, stats, _ = cv2.connectedComponentsWithStats(fg8, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    small = areas < max(0.1 * areas.max(), 0.001 * m.size)
    small[np.argmax(areas)] = False
    fragments = float(areas[small].sum() / areas.sum())
    ragged = edge / (2.0 * np.sqrt(np.pi * areas.sum()))
    ring = np.concatenate([fg[0], fg[-1], fg[1:-1, 0], fg[1:-1, -1]])
    border = float(ring.mean())
    score = certainty * (1 - fragments) * min(1.0, 5.0 / ragged) * (1 - 0.5 * border) * ramp
    return float(np.clip(score, 0.0, 1.0))


def _make_session(path: Path, device: str, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads if threads is not None else (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    # No memory pattern: with it the CPU arena holds ~550 MB for u2netp at 320 px, without it
    # ~360 MB, at the same speed (measured 2026-12, onnxruntime 1.32, 2 cores).
    opts.enable_mem_pattern = False
    providers: list = ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(
                f"device {device!r} asked for, but this onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu on GPU workers)"
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
    elif device != "cpu":
        raise ValueError(f"unsupported device {device!r} for onnxruntime (cpu, cuda, cuda:N)")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


class OnnxSalientSegmenter:
    """A salient-object ONNX model (u2netp, BiRefNet, RMBG) behind the Segmenter interface.

    ``segment`` runs the network, resizes its output back to the source grid, scores it
    with :func:`mask_confidence` and refines it with :func:`imaging.refine.refine_mask`
    (``refine_strength=0`` keeps the raw mask).
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        refine_strength: int = 1,
        matting: bool = False,
    ) -> None:
        if name not in SEGMENTERS:
            raise KeyError(f"unknown segmenter {name!r}; known: {', '.join(sorted(SEGMENTERS))}")
        self.config = SEGMENTERS[name]
        self.name = name
        self.version = installed_version(model_dir, self.config.weight)
        self.refine_strength = refine_strength
        self.matting = matting
        self._session = _make_session(weight_path(model_dir, self.config.weight), device, threads)
        self._input = self._session.get_inputs()[0].name

    def _preprocess(self, rgb: np.ndarray) -> np.ndarray:
        cfg = self.config
        im = np.asarray(Image.fromarray(rgb).resize(cfg.input_size, Image.LANCZOS), np.float32)
        denom = max(float(im.max()), 1.0) if cfg.scale == "max" else 255.0
        x = (im / denom - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
        return x.transpose(2, 0, 1)[None].astype(np.float32)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The network's soft mask, (H, W) float32 in [0, 1] on the source grid."""
        check_rgb(rgb)
        out = self._session.run(None, {self._input: self._preprocess(rgb)})[0]
        pred = np.asarray(out, np.float32)[0, 0]
        if self.config.activation == "sigmoid":
            pred = 1.0 / (1.0 + np.exp(-pred))
        if self.config.minmax:
            lo, hi = float(pred.min()), float(pred.max())
            pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        h, w = rgb.shape[:2]
        full = cv2.resize(pred, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(full, 0.0, 1.0).astype(np.float32)

    def segment(self, rgb: np.ndarray) -> SegmentResult:
        raw = self.predict(rgb)
        if self.refine_strength > 0:
            mask = refine_mask(rgb, raw, strength=self.refine_strength, matting=self.matting)
        else:
            mask = raw.copy()
        return SegmentResult(
            mask=mask,
            confidence=mask_confidence(raw),
            raw_mask=raw,
            model=f"{self.name}@{self.version}",
        )


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, model_dir: str, device: str, threads: int | None) -> OnnxSalientSegmenter:
    return OnnxSalientSegmenter(name, Path(model_dir), device=device, threads=threads)


def load_segmenter(name: str, model_dir: Path, device: str = "cpu", threads: int | None = None) -> OnnxSalientSegmenter:
    """The process-wide segmenter for (name, model_dir, device): a worker loads it once."""
    return _load_cached(name, str(Path(model_dir).resolve()), device, threads)
