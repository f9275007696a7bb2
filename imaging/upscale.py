"""Upscaling: one ``Upscaler`` interface, three backends, a dict registry.

* ``ResampleUpscaler``: classical Lanczos (area when shrinking), any scale, no weights.
* ``NcnnRealEsrgan``: the official Real-ESRGAN x4plus ncnn export on CPU (the default
  model; ~12 s per 256 px -> 1024 px on two quiet cores, so upscale only the product
  cutout; ncnn's OpenMP threads suffer badly on an oversubscribed machine: see ``threads``).
* ``TorchRealEsrgan``: the official ``.pth`` releases in our own architectures
  (:mod:`imaging.archs`), fp16 on CUDA, tiled, halving the tile on CUDA out-of-memory.

Models run on overlapping tiles: each tile is cut with ``tile_pad`` px of context on
every side and only its centre is kept, so the output has no seams wherever the pad
covers the network's effective receptive field.

:func:`upscale_to` decides how to reach an exact scale: classical only up to
``classical_below`` (1.3x: a x4 model would blur back down for nothing), else model
passes then an exact classical resample. The product mask follows with bilinear.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

import cv2
import numpy as np

from imaging.errors import ModelInputError
from imaging.weights import file_sha256, installed_version, weight_path


class Upscaler(Protocol):
    name: str
    version: str
    native_scale: float

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (round(H * s), round(W * s), 3) uint8 with s = native_scale."""
        ...


def _check_rgb(rgb: np.ndarray, min_side: int = 1) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ModelInputError(f"expected a uint8 numpy array, got {getattr(rgb, 'dtype', type(rgb))}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ModelInputError(f"expected shape (H, W, 3), got {rgb.shape}")
    if min(rgb.shape[:2]) < min_side:
        raise ModelInputError(f"image {rgb.shape[1]}x{rgb.shape[0]} is smaller than {min_side} px")


def resample(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (width, height): Lanczos-4 when enlarging, area when shrinking."""
    h, w = rgb.shape[:2]
    if (w, h) == size:
        return rgb.copy()
    shrink = size[0] < w or size[1] < h
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)


def tile_grid(h: int, w: int, tile: int, pad: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """(rows, cols) of each padded input tile and (rows, cols) of its centre inside that tile."""
    step = tile if tile > 0 else max(h, w)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)
            py1, px1 = min(y1 + pad, h), min(x1 + pad, w)
            yield (slice(py0, py1), slice(px0, px1), slice(y0 - py0, y1 - py0), slice(x0 - px0, x1 - px0))


class ResampleUpscaler:
    """Classical resampling at a fixed scale (no model, no weights)."""

    name = "lanczos"
    version = f"cv2-{cv2.__version__}"

    def __init__(self, scale: float = 4.0) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ModelInputError(f"scale must be a positive number, got {scale}")
        self.native_scale = float(scale)

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        _check_rgb(rgb)
        h, w = rgb.shape[:2]
        return resample(rgb, (max(1, round(w * self.native_scale)), max(1, round(h * self.native_scale))))


class NcnnRealEsrgan:
    """Real-ESRGAN x4plus, ncnn export, on CPU (blob "data" in, "output" out, RGB in [0, 1]).

    ``threads`` defaults to every CPU; where several workers share the cores, give each
    fewer (measured on 2 cores at load ~5: 1 thread 33 s, 2 threads 74 s per 256 px).
    """

    name = "realesrgan-x4plus-ncnn"
    native_scale = 4.0

    def __init__(self, model_dir: Path, tile: int = 192, tile_pad: int = 12, threads: int | None = None) -> None:
        import ncnn

        self._ncnn = ncnn
        self.tile, self.tile_pad = tile, tile_pad
        self.version = installed_version(model_dir, "realesrgan-x4plus-ncnn-bin")
        param = weight_path(model_dir, "realesrgan-x4plus-ncnn-param")
        binary = weight_path(model_dir, "realesrgan-x4plus-ncnn-bin")
        self._net = ncnn.Net()
        self._net.opt.use_vulkan_compute = False
        self._net.opt.num_threads = threads if threads is not None else (os.cpu_count() or 1)
        if self._net.load_param(str(param)) != 0 or self._net.load_model(str(binary)) != 0:
            raise ValueError(f"ncnn could not load {param} / {binary}")

    def _run(self, chw: np.ndarray) -> np.ndarray:
        ex = self._net.create_extractor()
        # a Mat made from a numpy array borrows its buffer: keep the array referenced
        # until .clone() has copied it, or the network reads freed memory (garbage out)
        arr = np.ascontiguousarray(chw, dtype=np.float32)
        mat = self._ncnn.Mat(arr).clone()
        ex.input("data", mat)
        ret, out = ex.extract("output")
        if ret != 0:
            raise RuntimeError(f"ncnn extract failed with code {ret}")
        return np.array(out, dtype=np.float32)

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        _check_rgb(rgb, min_side=4)
        h, w = rgb.shape[:2]
        x = rgb.astype(np.float32).transpose(2, 0, 1) / 255.0
        s = 4
        out = np.empty((3, h * s, w * s), np.float32)
        for rows, cols, keep_r, keep_c in tile_grid(h, w, self.tile, self.tile_pad):
            y = self._run(x[:, rows, cols])
            out[
                :,
                (rows.start + keep_r.start) * s : (rows.start + keep_r.stop) * s,
                (cols.start + keep_c.start) * s : (cols.start + keep_c.stop) * s,
            ] = y[:, keep_r.start * s : keep_r.stop * s, keep_c.start * s : keep_c.stop * s]
        return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0).copy()


class TorchRealEsrgan:
    """An official Real-ESRGAN ``.pth`` in our architectures; fp16 on CUDA, tiled.

    On ``torch.cuda.OutOfMemoryError`` the tile is halved and the image retried, down to
    ``min_tile``; the smaller tile is kept for later calls. ``module`` passes an already
    built network instead of loading ``weights_path`` (tests, custom variants).
    """

    def __init__(
        self,
        weights_path: Path | None,
        arch: str = "realesrgan-x4plus",
        device: str | torch.device | None = None,
        tile: int = 512,
        tile_pad: int = 16,
        *,
        min_tile: int = 64,
        module: torch.nn.Module | None = None,
        name: str | None = None,
    ) -> None:
        # torch is imported here, not with the module: it costs ~1 s per process, and the
        # CPU default (Lanczos, ncnn) never needs it.
        import torch

        from imaging.archs import load_realesrgan
        from imaging.device import pick_device, pick_dtype

        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.dtype = pick_dtype(self.device)
        if module is None:
            if weights_path is None:
                raise ValueError("TorchRealEsrgan needs weights_path or module")
            module = load_realesrgan(Path(weights_path), arch, device=self.device, dtype=self.dtype)
            self.version = file_sha256(Path(weights_path))[:12]
        else:
            module = module.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)
            self.version = "module"
        self.model = module
        self.name = name or arch
        self.native_scale = float(module.scale)
        self._multiple = int(getattr(module, "input_multiple", 1))
        self.tile, self.tile_pad, self.min_tile = tile, tile_pad, min_tile

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        h, w = x.shape[-2:]
        m = self._multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
        s = int(self.native_scale)
        return self.model(x)[..., : h * s, : w * s]

    def _tiled(self, x: torch.Tensor, tile: int) -> torch.Tensor:
        import torch

        _, _, h, w = x.shape
        s = int(self.native_scale)
        out = torch.empty((3, h * s, w * s), dtype=torch.float32)
        for rows, cols, keep_r, keep_c in tile_grid(h, w, tile, self.tile_pad):
            with torch.inference_mode():
                y = self._forward(x[:, :, rows, cols])[0]
            out[
                :,
                (rows.start + keep_r.start) * s : (rows.start + keep_r.stop) * s,
                (cols.start + keep_c.start) * s : (cols.start + keep_c.stop) * s,
            ] = y[:, keep_r.start * s : keep_r.stop * s, keep_c.start * s : keep_c.stop * s].float().cpu()
        return out

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        _check_rgb(rgb, min_side=4)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device, self.dtype) / 255.0
        tile = self.tile
        while True:
            try:
                out = self._tiled(x, tile)
                break
            except torch.cuda.OutOfMemoryError as exc:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = (tile if tile > 0 else max(rgb.shape[:2])) // 2
                if smaller < self.min_tile:
                    raise RuntimeError(
                        f"{self.name}: CUDA out of memory even with {tile} px tiles on "
                        f"{rgb.shape[1]}x{rgb.shape[0]} input (floor {self.min_tile} px); "
                        "free GPU memory or run fewer workers per GPU"
                    ) from exc
                tile = smaller
        self.tile = tile
        return (out.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()


def plan_passes(
    target_scale: float, native_scale: float, *, max_model_scale: float = 4.0, classical_below: float = 1.3
) -> int:
    """How many model passes :func:`upscale_to` makes (0: classical resampling only)."""
    passes, done = 0, 1.0
    while target_scale / done > classical_below and done * native_scale <= max_model_scale + 1e-9:
        passes, done = passes + 1, done * native_scale
    return passes


def upscale_to(
    rgb: np.ndarray,
    mask: np.ndarray | None,
    target_scale: float,
    upscaler: Upscaler,
    *,
    max_model_scale: float = 4.0,
    classical_below: float = 1.3,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``rgb`` (and its float mask) at exactly ``target_scale`` (rounded to whole pixels).

    Up to ``classical_below`` only classical resampling runs; beyond, the model runs
    (:func:`plan_passes`; at most ``max_model_scale`` in total) and a classical resample
    lands on the exact size (area-downsampling the x4 result when the target is, say, 2x).
    """
    _check_rgb(rgb)
    if not (math.isfinite(target_scale) and target_scale > 0):
        raise ModelInputError(f"target_scale must be a positive number, got {target_scale}")
    h, w = rgb.shape[:2]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (h, w) or not np.issubdtype(mask.dtype, np.floating):
            raise ModelInputError(f"mask must be float (H, W) = {(h, w)}, got {mask.dtype} {mask.shape}")
    size = (max(1, round(w * target_scale)), max(1, round(h * target_scale)))
    out = rgb
    for _ in range(
        plan_passes(
            target_scale, upscaler.native_scale, max_model_scale=max_model_scale, classical_below=classical_below
        )
    ):
        out = upscaler.upscale(out)
    out = resample(out, size)
    if mask is None:
        return out, None
    m = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return out, np.clip(m, 0.0, 1.0)


# name -> builder(model_dir, device)
UPSCALERS: dict[str, Callable[[Path, str], Upscaler]] = {
    "lanczos": lambda model_dir, device: ResampleUpscaler(4.0),
    "realesrgan-x4plus-ncnn": lambda model_dir, device: NcnnRealEsrgan(model_dir),
    "realesrgan-x4plus": lambda model_dir, device: TorchRealEsrgan(
        weight_path(model_dir, "realesrgan-x4plus-pth"), "realesrgan-x4plus", device
    ),
    "realesr-general-x4v3": lambda model_dir, device: TorchRealEsrgan(
        weight_path(model_dir, "realesr-general-x4v3-pth"), "realesr-general-x4v3", device
    ),
}


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, model_dir: str, device: str) -> Upscaler:
    return UPSCALERS[name](Path(model_dir), device)


def load_upscaler(name: str, model_dir: Path, device: str = "cpu") -> Upscaler:
    """The process-wide upscaler for (name, model_dir, device): a worker loads it once."""
    if name not in UPSCALERS:
        raise KeyError(f"unknown upscaler {name!r}; known: {', '.join(sorted(UPSCALERS))}")
    return _load_cached(name, str(Path(model_dir).resolve()), device)
