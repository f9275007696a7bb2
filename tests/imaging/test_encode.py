"""imaging.encode: ICC embedded, no metadata leaks, alpha rules, byte caps."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from imaging.decode import decode_image
from imaging.encode import encode_image, fit_bytes, srgb_icc_bytes

RNG = np.random.default_rng(3)


def _smooth(h: int = 96, w: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // w, y * 255 // h, (x + y) * 127 // (h + w) + 60]).astype(np.uint8)


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_srgb_profile_is_valid_and_deterministic():
    data = srgb_icc_bytes()
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert profile.profile.xcolor_space == "RGB " and "sRGB" in profile.profile.profile_description
    assert data == srgb_icc_bytes()
    assert encode_image(_smooth(), fmt="jpeg") == encode_image(_smooth(), fmt="jpeg")


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_icc_embedded(fmt):
    img = _open(encode_image(_smooth(), fmt=fmt))
    assert img.info.get("icc_profile") == srgb_icc_bytes()
    assert "icc_profile" not in _open(encode_image(_smooth(), fmt=fmt, icc=False)).info


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_no_exif_leaks_from_a_source_that_had_it(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "SecretCam"  # make
    exif[0x0131] = "editor 1.0"  # software
    source = io.BytesIO()
    Image.fromarray(_smooth()).save(source, "JPEG", exif=exif.tobytes(), comment=b"internal note")
    decoded = decode_image(source.getvalue(), name="with-exif.jpg")
    out = encode_image(decoded.rgb, fmt=fmt)
    img = _open(out)
    assert len(img.getexif()) == 0 and "exif" not in img.info and "comment" not in img.info
    assert b"SecretCam" not in out and b"internal note" not in out and b"Exif" not in out


def test_jpeg_rejects_alpha():
    with pytest.raises(ValueError, match="JPEG has no alpha"):
        encode_image(_smooth(), np.full((96, 128), 255, np.uint8), fmt="jpeg")


def test_jpeg_baseline_optimised_and_444_at_high_quality():
    data = encode_image(_smooth(), fmt="jpeg", quality=92)
    high = _open(data)
    # Baseline (SOF0), not progressive: the gate decodes every export back, 4x faster so.
    assert not high.info.get("progressive")
    assert JpegImagePlugin.get_sampling(high) == 0
    # Optimised Huffman tables: smaller than libjpeg's standard ones for the same pixels
    # (both without the ICC profile).
    bare = encode_image(_smooth(), fmt="jpeg", quality=92, icc=False)
    standard = cv2.imencode(
        ".jpg",
        _smooth()[..., ::-1],
        [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
    )[1]
    assert len(bare) < 0.8 * len(standard.tobytes())
    low = _open(encode_image(_smooth(), fmt="jpeg", quality=70))
    assert JpegImagePlugin.get_sampling(low) == 2
    assert np.abs(np.asarray(high, dtype=int) - _smooth()).mean() < 2.0


def test_png_keeps_rgb_and_alpha_exactly():
    rgb = RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (50, 70), dtype=np.uint8)
    img = _open(encode_image(rgb, alpha, fmt="png"))
    assert img.mode == "RGBA"
    arr = np.asarray(img)
    assert np.array_equal(arr[..., :3], rgb) and np.array_equal(arr[..., 3], alpha)


def test_webp_keeps_alpha_exactly():
    alpha = np.zeros((64, 64), np.uint8)
    alpha[16:48, 8:56] = 255
    alpha[16:48, 30] = 128
    img = _open(encode_image(_smooth(64, 64), alpha, fmt="webp", quality=80))
    assert img.mode == "RGBA" and np.array_equal(np.asarray(img)[..., 3], alpha)


def test_float_alpha_is_rounded_to_8_bits():
    alpha = np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    img = _open(encode_image(_smooth(64, 64), alpha, fmt="png"))
    assert np.array_equal(np.asarray(img)[..., 3], np.rint(alpha * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        encode_image(_smooth(64, 64), alpha * 2, fmt="png")


@pytest.mark.parametrize(
    "rgb, kw",
    [
        (np.zeros((8, 8, 3), np.float32), {"fmt": "png"}),
        (np.zeros((8, 8), np.uint8), {"fmt": "png"}),
        (np.zeros((8, 8, 3), np.uint8), {"fmt": "gif"}),
        (np.zeros((8, 8, 3), np.uint8), {"fmt": "jpeg", "quality": 0}),
    ],
)
def test_bad_inputs_raise(rgb, kw):
    with pytest.raises(ValueError):
        encode_image(rgb, **kw)


def test_fit_bytes_lowers_quality_until_it_fits():
    rgb = RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    full = encode_image(rgb, fmt="jpeg", quality=90)
    cap = len(full) * 2 // 3
    data, used = fit_bytes(rgb, fmt="jpeg", max_bytes=cap, quality=90, min_quality=20)
    assert len(data) <= cap and 20 <= used < 90
    if used < 89:  # the next quality up must not have fitted
        assert len(encode_image(rgb, fmt="jpeg", quality=used + 1)) > cap
    assert fit_bytes(rgb, fmt="jpeg", max_bytes=len(full))[1] == 90


def test_fit_bytes_gives_up_with_a_reason():
    rgb = RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="even at quality 60"):
        fit_bytes(rgb, fmt="webp", max_bytes=1000)
    with pytest.raises(ValueError, match="PNG is"):
        fit_bytes(rgb, fmt="png", max_bytes=1000)
