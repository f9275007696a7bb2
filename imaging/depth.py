"""Control images for scene generation: monocular depth (DPT / Depth Anything) and Canny edges.

Weights come from a local directory, or from a hub id that is *already* in the local
Hugging Face cache (``local_files_only=True`` unless configured otherwise). Nothing is
downloaded at import or in a constructor: ``DepthEstimator.load`` is the one place that
reads weights, and it raises ``WeightsMissing`` naming the path or id when they are absent.

Preprocessing is done in numpy/PIL (no torchvision), following the model's own
``preprocessor_config.json`` when present (size, keep_aspect_ratio, ensure_multiple_of,
mean/std), with per-architecture defaults otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from transformers import AutoModelForDepthEstimation, PreTrainedModel
from transformers.utils import cached_file

from imaging.errors import ModelInputError, WeightsMissing

_HOW = (
    "put a saved transformers model folder there (config.json + weights), or name a hub id "
    "that is already in the local Hugging Face cache; the ModelStore block / CLI flag sets it"
)


def missing_weights(source: str | Path, filename: str, *, local_files_only: bool = True) -> str | None:
    """Why ``filename`` of ``source`` (a local folder or a hub id) cannot be read, or None.

    A path that exists is a local folder. Otherwise a plain ``org/name`` is a hub id, looked
    up in the local cache only when ``local_files_only``; anything else is a missing folder.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.exists():
        return None if (path / filename).is_file() else f"{path} has no {filename}"
    looks_like_id = text.count("/") == 1 and not text.startswith((".", "/", "~"))
    if not looks_like_id:
        return f"directory {path} does not exist"
    if not local_files_only:
        return None
    found = cached_file(text, filename, local_files_only=True, _raise_exceptions_for_missing_entries=False)
    return None if found else f"no folder {text!r} and hub id {text!r} is not in the local cache"


def _require(source: str | Path, filename: str, what: str, local_files_only: bool) -> None:
    problem = missing_weights(source, filename, local_files_only=local_files_only)
    if problem:
        raise WeightsMissing(f"{what} weights missing: {problem}. To fix: {_HOW}.")


@dataclass(frozen=True)
class DepthPreprocess:
    """What the model's image processor would do: resize, rescale to [0, 1], normalise."""

    height: int = 384
    width: int = 384
    keep_aspect_ratio: bool = False
    multiple: int = 1
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def for_model(cls, model_type: str, processor_config: dict | None = None) -> DepthPreprocess:
        if model_type == "depth_anything":  # Depth Anything v1/v2 defaults
            base = cls(518, 518, True, 14, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        else:  # DPT-large / DPT-hybrid defaults
            base = cls()
        if not processor_config:
            return base
        size = processor_config.get("size") or {}
        return cls(
            height=int(size.get("height", base.height)),
            width=int(size.get("width", base.width)),
            keep_aspect_ratio=bool(processor_config.get("keep_aspect_ratio", base.keep_aspect_ratio)),
            multiple=int(processor_config.get("ensure_multiple_of", base.multiple)),
            mean=tuple(processor_config.get("image_mean", base.mean)),
            std=tuple(processor_config.get("image_std", base.std)),
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) exactly as transformers' DPT processor computes it."""
        scale_h, scale_w = self.height / height, self.width / width
        if self.keep_aspect_ratio:  # scale as little as possible
            if abs(1 - scale_w) < abs(1 - scale_h):
                scale_h = scale_w
            else:
                scale_w = scale_h

        def snap(value: float) -> int:
            return max(self.multiple, int(round(value / self.multiple) * self.multiple))

        return snap(scale_h * height), snap(scale_w * width)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (1, 3, h, w) float32, normalised."""
        h, w = self.output_size(*rgb.shape[:2])
        resized = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))
        x = (resized.astype(np.float32) / 255.0 - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def check_rgb(rgb: object, what: str = "rgb") -> np.ndarray:
    """Raise ``ModelInputError`` unless ``rgb`` is an (H, W, 3) uint8 array with H, W >= 8."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ModelInputError(f"{what} must be an (H, W, 3) uint8 array, got shape {shape} {dtype}")
    if min(rgb.shape[:2]) < 8:
        raise ModelInputError(f"{what} is {rgb.shape[1]}x{rgb.shape[0]} px; need at least 8x8")
    return rgb


class DepthEstimator:
    """Relative depth of a picture, near = 1, far = 0, on the picture's own pixel grid."""

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        preprocess: DepthPreprocess | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        version: str | None = None,
    ) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype
        self.preprocess = preprocess or DepthPreprocess.for_model(model.config.model_type)
        self.version = version or str(getattr(model.config, "_name_or_path", "") or model.config.model_type)

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        local_files_only: bool = True,
    ) -> DepthEstimator:
        """Load a depth model from a local folder or an (already cached) hub id."""
        _require(source, "config.json", "depth model", local_files_only)
        try:
            model = AutoModelForDepthEstimation.from_pretrained(
                str(source), local_files_only=local_files_only, use_safetensors=True
            )
        except OSError as exc:
            raise WeightsMissing(f"depth model weights at {source} could not be read ({exc}). {_HOW}.") from exc
        proc_file = cached_file(
            str(source),
            "preprocessor_config.json",
            local_files_only=local_files_only,
            _raise_exceptions_for_missing_entries=False,
        )
        proc = json.loads(Path(proc_file).read_text()) if proc_file else None
        preprocess = DepthPreprocess.for_model(model.config.model_type, proc)
        return cls(model, preprocess=preprocess, device=device, dtype=dtype, version=str(source))

    @torch.inference_mode()
    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 sRGB -> (H, W) float32 in [0, 1], larger = nearer the camera.

        The model's relative inverse depth is resized back to (H, W) and min-max
        normalised; a picture with no depth variation gives all zeros.
        """
        check_rgb(rgb)
        height, width = rgb.shape[:2]
        pixels = torch.from_numpy(self.preprocess(rgb)).to(self.device, self.dtype)
        predicted = self.model(pixel_values=pixels).predicted_depth
        depth = predicted.reshape(predicted.shape[-2:]).float().cpu().numpy()
        depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_CUBIC)
        if not np.all(np.isfinite(depth)):
            raise FloatingPointError(f"depth model {self.version} produced NaN/inf (dtype {self.dtype})")
        low, high = float(depth.min()), float(depth.max())
        if high - low <= 1e-12 * max(1.0, abs(high)):
            return np.zeros((height, width), np.float32)
        return np.clip((depth - low) / (high - low), 0.0, 1.0).astype(np.float32)


def depth_control(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth in [0, 1] -> (H, W, 3) uint8 grey image, the depth ControlNets' input."""
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise ModelInputError(f"depth must be a 2-D float array, got {depth.shape} {depth.dtype}")
    grey = np.round(np.clip(depth, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def canny_control(rgb: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8 white-on-black Canny edges (the canny ControlNets' input).

    A light Gaussian blur scaled to the picture size first keeps JPEG and sensor noise
    from turning into edges on large images.
    """
    check_rgb(rgb)
    if not 0 <= low < high <= 1000:
        raise ModelInputError(f"canny thresholds must satisfy 0 <= low < high, got {low}, {high}")
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sigma = max(0.5, max(rgb.shape[:2]) / 1024.0)
    grey = cv2.GaussianBlur(grey, (0, 0), sigmaX=sigma)
    edges = cv2.Canny(grey, low, high)
    return np.repeat(edges[..., None], 3, axis=2)
