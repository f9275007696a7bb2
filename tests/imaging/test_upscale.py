"""imaging.upscale + imaging.device: real ncnn Real-ESRGAN, tiny torch nets, tiling, OOM, upscale_to."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from imaging.archs import RRDBNet, SRVGGNetCompact
from imaging.device import pick_device, pick_dtype
from imaging.errors import ModelInputError, WeightsMissing
from imaging.upscale import (
    NcnnRealEsrgan,
    ResampleUpscaler,
    TorchRealEsrgan,
    load_upscaler,
    plan_passes,
    tile_grid,
    upscale_to,
)
from imaging.weights import fetch_weights

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = Path(os.environ.get("LIGHTBOX_MODEL_DIR", REPO / ".lightbox" / "models"))
    fetch_weights(d)  # no-op when present
    return d


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _crop(h: int = 64, w: int = 64) -> np.ndarray:
    return data.coffee()[100 : 100 + h, 200 : 200 + w].copy()  # rim of the cup, spoon, saucer


# --- the real model: Real-ESRGAN x4plus, ncnn, CPU ----------------------------------------


def test_ncnn_x4plus_on_a_real_crop_is_sane_deterministic_and_seamless(model_dir):
    crop = _crop()
    whole = NcnnRealEsrgan(model_dir, tile=0, threads=1)  # one pass, no tiles
    assert whole.version == "713ee713b035"
    out = whole.upscale(crop)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    bicubic = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC)
    assert _psnr(out, bicubic) > 25  # a sharper version of the same picture, not garbage
    np.testing.assert_array_equal(whole.upscale(crop), out)
    tiled = NcnnRealEsrgan(model_dir, tile=32, tile_pad=12, threads=1).upscale(crop)
    assert _psnr(tiled, out) > 40  # the tile seams do not show


def test_ncnn_refuses_bad_input_and_missing_weights(model_dir, tmp_path):
    with pytest.raises(WeightsMissing, match="realesrgan-x4plus.bin.*lightbox models fetch"):
        NcnnRealEsrgan(tmp_path)
    up = load_upscaler("realesrgan-x4plus-ncnn", model_dir)
    assert load_upscaler("realesrgan-x4plus-ncnn", model_dir) is up
    with pytest.raises(ModelInputError, match="uint8"):
        up.upscale(np.zeros((8, 8, 3), np.float32))


# --- torch backends with tiny seeded networks ---------------------------------------------


def _tiny(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "srvgg":
        return SRVGGNetCompact(num_feat=16, num_conv=2)
    return RRDBNet(3, 3, scale=int(kind[-1]), num_feat=16, num_block=2, num_grow_ch=8)


@pytest.mark.parametrize("kind, pad, min_psnr", [("srvgg", 8, 60.0), ("rrdb4", 16, 40.0)])
def test_torch_tiled_equals_untiled(kind, pad, min_psnr):
    rgb = _crop(40, 52)
    whole = TorchRealEsrgan(None, device="cpu", tile=0, module=_tiny(kind), name=kind).upscale(rgb)
    tiled_up = TorchRealEsrgan(None, device="cpu", tile=16, tile_pad=pad, module=_tiny(kind), name=kind)
    tiled = tiled_up.upscale(rgb)
    assert whole.shape == tiled.shape == (160, 208, 3) and tiled.dtype == np.uint8
    np.testing.assert_array_equal(tiled, tiled_up.upscale(rgb))
    assert _psnr(tiled, whole) > min_psnr


def test_torch_scale2_pads_odd_sizes():
    up = TorchRealEsrgan(None, device="cpu", tile=16, module=_tiny("rrdb2"))
    assert up.native_scale == 2.0
    assert up.upscale(_crop(21, 19)).shape == (42, 38, 3)


class _OomAbove(torch.nn.Module):
    """Raises CUDA OOM for inputs larger than ``limit`` px on a side, like a full GPU."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.scale, self.sides = limit, 4, []
        self.net = _tiny("srvgg")

    def forward(self, x):
        self.sides.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_cuda_oom_halves_the_tile_and_remembers_it():
    module = _OomAbove(limit=40)
    up = TorchRealEsrgan(None, device="cpu", tile=64, tile_pad=4, min_tile=8, module=module)
    out = up.upscale(_crop(64, 64))
    assert out.shape == (256, 256, 3)
    assert up.tile == 32 and max(module.sides[-1:]) <= 40


def test_cuda_oom_below_the_floor_is_a_clear_error():
    up = TorchRealEsrgan(None, device="cpu", tile=64, tile_pad=4, min_tile=32, module=_OomAbove(limit=4))
    with pytest.raises(RuntimeError, match="out of memory even with 32 px tiles.*floor 32 px"):
        up.upscale(_crop(64, 64))


def test_torch_backend_without_weights_says_where_to_get_them(tmp_path):
    with pytest.raises(WeightsMissing, match="RealESRGAN_x4plus.pth.*release v0.1.0"):
        load_upscaler("realesrgan-x4plus", tmp_path)
    with pytest.raises(WeightsMissing, match="realesr-general-x4v3.pth"):
        load_upscaler("realesr-general-x4v3", tmp_path)
    with pytest.raises(KeyError, match="unknown upscaler"):
        load_upscaler("waifu2x", tmp_path)


# --- tiling, classical resampling, upscale_to ---------------------------------------------


@pytest.mark.parametrize("h, w, tile, pad", [(37, 50, 16, 5), (16, 16, 16, 4), (9, 70, 0, 3)])
def test_tile_grid_covers_every_pixel_once(h, w, tile, pad):
    seen = np.zeros((h, w), int)
    for rows, cols, keep_r, keep_c in tile_grid(h, w, tile, pad):
        seen[rows, cols][keep_r, keep_c] += 1
        assert rows.start >= 0 and rows.stop <= h and cols.start >= 0 and cols.stop <= w
    assert (seen == 1).all()


def test_resample_upscaler_any_scale():
    up = ResampleUpscaler(2.5)
    out = up.upscale(_crop(10, 12))
    assert out.shape == (25, 30, 3) and out.dtype == np.uint8
    with pytest.raises(ModelInputError):
        ResampleUpscaler(0)


class _Counting:
    name, version, native_scale = "x4-nearest", "test", 4.0

    def __init__(self) -> None:
        self.calls = 0

    def upscale(self, rgb):
        self.calls += 1
        return np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1)


@pytest.mark.parametrize("target, passes", [(1.0, 0), (1.25, 0), (1.5, 1), (2.0, 1), (4.0, 1), (6.0, 1)])
def test_upscale_to_picks_classical_or_model_and_lands_on_the_exact_size(target, passes):
    rgb = _crop(30, 40)
    mask = np.zeros((30, 40), np.float32)
    mask[10:20, 10:30] = 1.0
    up = _Counting()
    out, m = upscale_to(rgb, mask, target, up)
    assert up.calls == passes == plan_passes(target, 4.0)
    assert out.shape == (round(30 * target), round(40 * target), 3) and out.dtype == np.uint8
    assert m.shape == out.shape[:2] and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
    assert abs(m.mean() - mask.mean()) < 0.02


def test_upscale_to_can_chain_passes_and_refuses_bad_arguments():
    assert plan_passes(16.0, 4.0, max_model_scale=16.0) == 2
    out, m = upscale_to(_crop(8, 8), None, 10.0, _Counting(), max_model_scale=16.0)
    assert out.shape == (80, 80, 3) and m is None
    with pytest.raises(ModelInputError, match="target_scale"):
        upscale_to(_crop(), None, 0.0, _Counting())
    with pytest.raises(ModelInputError, match="mask"):
        upscale_to(_crop(), np.zeros((3, 3), np.float32), 2.0, _Counting())
    with pytest.raises(ModelInputError, match="mask"):
        upscale_to(_crop(), np.zeros((64, 64), np.uint8), 2.0, _Counting())


# --- device -------------------------------------------------------------------------------


def test_pick_device_and_dtype():
    auto = pick_device(None)
    assert auto.type in ("cuda", "mps", "cpu") and pick_device("auto") == auto
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_dtype("cpu") == torch.float32 and pick_dtype(torch.device("cuda")) == torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda")
    with pytest.raises(RuntimeError, match="unsupported device"):
        pick_device("xla")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_on_cuda_matches_fp32_on_cpu():
    rgb = _crop(48, 48)
    cpu = TorchRealEsrgan(None, device="cpu", tile=0, module=_tiny("rrdb4")).upscale(rgb)
    gpu_up = TorchRealEsrgan(None, device="cuda", tile=32, module=_tiny("rrdb4"))
    assert gpu_up.dtype == torch.float16
    assert _psnr(gpu_up.upscale(rgb), cpu) > 35
