"""`lightbox models check` and `--diffusion-dir`: the lifestyle weights a template needs, on the
tiny seeded diffusers/transformers weights of tests/fixtures/tiny_models.py."""

import json
import shutil

import pytest

from deployments.cli import main


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A --diffusion-dir in the documented layout: DIR/inpaint, DIR/controlnet_depth, ..."""
    from tests.fixtures.tiny_models import save_tiny_clip, save_tiny_depth, save_tiny_diffusion

    root = tmp_path_factory.mktemp("diffusion")
    made = save_tiny_diffusion(root / "made")
    shutil.move(made["inpaint"], root / "inpaint")
    shutil.move(made["depth"], root / "controlnet_depth")
    shutil.move(made["canny"], root / "controlnet_canny")
    save_tiny_depth(root / "depth")
    save_tiny_clip(root / "clip")
    return root


@pytest.fixture
def weights(tmp_path, tiny_dir):
    """A copy the test may break."""
    return shutil.copytree(tiny_dir, tmp_path / "diffusion")


def _check(capsys, model_dir, *args):
    code = main(["models", "check", "--model-dir", str(model_dir), *args])
    return code, capsys.readouterr().out


def test_all_weights_of_a_lifestyle_template_present(capsys, model_dir, weights):
    code, out = _check(capsys, model_dir, "--diffusion-dir", str(weights), "--template", "marble_counter")
    assert code == 0, out
    for name in ("u2netp", "diffusion.inpaint", "diffusion.controlnet_depth", "diffusion.depth", "diffusion.clip"):
        assert any(line.startswith("ok") and name in line for line in out.splitlines()), (name, out)
    assert "controlnet_canny" not in out  # a depth template does not need the canny ControlNet
    assert out.rstrip().endswith("all weights present")


def test_a_missing_file_is_named_and_exits_2(capsys, model_dir, weights):
    (weights / "inpaint" / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    code, out = _check(capsys, model_dir, "--diffusion-dir", str(weights), "--template", "marble_counter")
    assert code == 2
    (line,) = [line for line in out.splitlines() if line.startswith("missing")]
    assert "diffusion.inpaint" in line and str(weights / "inpaint" / "unet") in line, out
    assert "get it: diffusers/stable-diffusion-xl-1.0-inpainting-0.1" in out


def test_a_truncated_download_and_a_broken_config_are_refused(capsys, model_dir, weights):
    net = weights / "controlnet_depth" / "diffusion_pytorch_model.safetensors"
    net.write_bytes(net.read_bytes()[: net.stat().st_size // 2])
    (weights / "depth" / "config.json").write_text("{not json")
    code, out = _check(capsys, model_dir, "--diffusion-dir", str(weights), "--template", "marble_counter")
    assert code == 2
    assert f"{net} is truncated" in out and f"{weights / 'depth' / 'config.json'} is not valid JSON" in out


def test_a_folder_without_lifestyle_weights(capsys, model_dir, tmp_path):
    code, out = _check(capsys, model_dir, "--diffusion-dir", str(tmp_path), "--template", "marble_counter")
    assert code == 2
    assert f"diffusion.inpaint            folder {tmp_path / 'inpaint'} does not exist" in out
    assert "optional diffusion.clip" in " ".join(out.split())  # clip only ranks the variants


def test_a_studio_template_needs_no_diffusion_weights(capsys, model_dir):
    code, out = _check(capsys, model_dir, "--template", "white_studio")
    assert code == 0 and "diffusion" not in out


def test_registry_weights_are_checked_against_their_pins(capsys, model_dir, tmp_path):
    for name in ("u2netp.onnx", "realesrgan-x4plus.param"):
        shutil.copy(model_dir / name, tmp_path / name)
    (tmp_path / "realesrgan-x4plus.bin").write_bytes(b"not the weights")
    code, out = _check(capsys, tmp_path)
    assert code == 2
    (line,) = [line for line in out.splitlines() if line.startswith("missing")]
    assert "realesrgan-x4plus-ncnn-bin" in line and "expected 33424520" in line
    assert "lightbox models fetch" in out


def test_diffusion_dir_fills_run_settings_and_passes_preflight(model_dir, weights):
    from imaging.templates import get_template
    from imaging.weights_check import diffusion_layout
    from tasks.preflight import check_template
    from tasks.records import RunSettings
    from tasks.render import template_library

    diffusion = diffusion_layout(weights)
    assert diffusion["inpaint"] == str(weights.resolve() / "inpaint") and "vae" not in diffusion
    settings = RunSettings(data_dir=weights, database_url="sqlite://", model_dir=model_dir, diffusion=diffusion)
    check_template(settings, get_template("marble_counter", template_library(None)))  # no error
    index = json.loads((weights / "inpaint" / "model_index.json").read_text())
    assert "unet" in index  # the layout is the diffusers one the generator loads
