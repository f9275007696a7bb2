"""imaging.archs: tiny seeded Real-ESRGAN networks, official key names, strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imaging.archs import RRDBNet, SRVGGNetCompact, build_arch, load_realesrgan, read_state_dict

TINY_RRDB = dict(num_feat=16, num_block=2, num_grow_ch=8)
TINY_SRVGG = dict(num_feat=16, num_conv=2)


def _tiny_rrdb(scale: int = 4) -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(3, 3, scale=scale, **TINY_RRDB).eval()


def _x(h: int = 24, w: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_rrdbnet_shapes_dtype_determinism(scale):
    model = _tiny_rrdb(scale)
    with torch.inference_mode():
        a, b = model(_x()), model(_x())
    assert a.shape == (1, 3, 24 * scale, 32 * scale) and a.dtype == torch.float32
    assert torch.equal(a, b)


def test_srvgg_shape_and_nearest_skip():
    torch.manual_seed(0)
    model = SRVGGNetCompact(**TINY_SRVGG).eval()
    with torch.no_grad():
        for p in model.body[-1].parameters():
            p.zero_()  # residual branch off: the output is the nearest-upsampled input
        y = model(_x(8, 8))
    assert y.shape == (1, 3, 32, 32)
    torch.testing.assert_close(y, torch.nn.functional.interpolate(_x(8, 8), scale_factor=4, mode="nearest"))


def test_official_architectures_have_basicsr_parameter_names():
    rrdb = build_arch("realesrgan-x4plus").state_dict()
    for key in (
        "conv_first.weight",
        "body.0.rdb1.conv1.weight",
        "body.22.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.bias",
    ):
        assert key in rrdb, key
    assert sum(v.numel() for v in rrdb.values()) == 16_697_987  # RealESRGAN_x4plus
    srvgg = build_arch("realesr-general-x4v3").state_dict()
    assert srvgg["body.1.weight"].shape == (64,)  # PReLU
    assert srvgg["body.66.weight"].shape == (48, 64, 3, 3)  # 3 * 4 * 4 output channels
    assert "body.67.weight" not in srvgg
    assert build_arch("realesrgan-x2plus").state_dict()["conv_first.weight"].shape[1] == 12


@pytest.mark.parametrize("key", ["params_ema", "params", None])
def test_checkpoint_formats_round_trip(tmp_path: Path, key):
    model = _tiny_rrdb()
    state = model.state_dict()
    path = tmp_path / "tiny.pth"
    torch.save({key: state, "other": {}} if key else state, path)
    loaded = load_realesrgan(path, "rrdbnet", **TINY_RRDB)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(_x()), model(_x()), rtol=0, atol=0)
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training


def test_params_ema_wins_over_params(tmp_path: Path):
    ema = _tiny_rrdb().state_dict()
    plain = {k: torch.zeros_like(v) for k, v in ema.items()}
    torch.save({"params": plain, "params_ema": ema}, tmp_path / "both.pth")
    assert torch.equal(read_state_dict(tmp_path / "both.pth")["conv_first.weight"], ema["conv_first.weight"])


def test_missing_key_is_a_value_error_naming_it_and_the_file(tmp_path: Path):
    state = _tiny_rrdb().state_dict()
    del state["conv_hr.weight"]
    path = tmp_path / "missing.pth"
    torch.save({"params_ema": state}, path)
    with pytest.raises(ValueError, match=r"missing.pth.*missing keys \[conv_hr.weight\]"):
        load_realesrgan(path, "rrdbnet", **TINY_RRDB)


def test_unexpected_key_and_wrong_shape_are_refused(tmp_path: Path):
    state = _tiny_rrdb().state_dict()
    state["body.9.rdb1.conv1.weight"] = torch.zeros(1)
    torch.save({"params": state}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected keys \[body.9.rdb1.conv1.weight\]"):
        load_realesrgan(tmp_path / "extra.pth", "rrdbnet", **TINY_RRDB)
    torch.save({"params": _tiny_rrdb().state_dict()}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="shape mismatch.*conv_first.weight"):
        load_realesrgan(tmp_path / "small.pth", "realesrgan-x4plus", num_block=2)  # 16 vs 64 features


def test_unreadable_or_non_state_dict_files_are_refused(tmp_path: Path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read weights file .*junk.pth"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    with pytest.raises(ValueError, match="unknown architecture"):
        build_arch("swinir")
