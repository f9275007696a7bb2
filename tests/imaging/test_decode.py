"""Hostile and odd inputs for imaging.decode, all built here with Pillow or by hand."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from imaging.decode import decode_file, decode_image
from imaging.errors import ImageRejected

RNG = np.random.default_rng(7)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(w: int = 128, h: int = 96) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _icc_matrix_shaper(red, green, blue, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile (D50 PCS) - enough for LittleCMS."""

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def xyz(v):
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    desc_text = b"test Adobe RGB (1998)\0"
    tags = [
        (b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67),
        (b"cprt", b"text\0\0\0\0no copyright, test data\0"),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
    ]
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += struct.pack(">4sII", sig, offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


ADOBE_D50 = ((0.6097559, 0.3111242, 0.0194811), (0.2052401, 0.6256560, 0.0608902), (0.1492240, 0.0632197, 0.7448387))


def _adobe_to_srgb_reference(rgb8: np.ndarray) -> np.ndarray:
    """Adobe RGB (1998) -> sRGB by the published D65 matrices, clipped."""
    adobe_to_xyz = np.array(
        [[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741], [0.0270343, 0.0706872, 0.9911085]]
    )
    xyz_to_srgb = np.array(
        [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
    )
    linear = (rgb8 / 255.0) ** (563 / 256)
    out = np.clip(linear @ (xyz_to_srgb @ adobe_to_xyz).T, 0.0, 1.0)
    encoded = np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)
    return encoded * 255.0


# --- content, not names ---------------------------------------------------------------


def test_png_named_jpg_decodes_as_png():
    img = _noise()
    out = decode_image(_encode(img, "PNG"), name="photo.jpg")
    assert out.format == "PNG" and (out.width, out.height) == (128, 96)
    assert np.array_equal(out.rgb, np.asarray(img)) and out.alpha is None
    assert out.rgb.dtype == np.uint8 and out.rgb.shape == (96, 128, 3)


def test_text_named_jpg_is_not_an_image():
    with pytest.raises(ImageRejected, match=r"^notes\.jpg: not an image"):
        decode_image(b"SKU,price\nA-1,9.99\n" * 10, name="notes.jpg")


def test_zero_bytes_rejected():
    with pytest.raises(ImageRejected, match="empty file"):
        decode_image(b"", name="a.jpg")


def test_heic_like_container_named_in_reason():
    data = struct.pack(">I", 24) + b"ftypheic" + b"\0" * 64
    with pytest.raises(ImageRejected, match="unsupported format.*heic"):
        decode_image(data, name="a.heic")


def test_byte_cap_checked_first():
    with pytest.raises(ImageRejected, match="over the 100 byte limit"):
        decode_image(_encode(_noise(), "PNG"), name="a.png", max_bytes=100)


# --- truncation and bombs -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP"])
def test_truncated_files_rejected(fmt):
    data = _encode(_noise(256, 256), fmt)
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], name=f"a.{fmt.lower()}")


def test_jpeg_missing_only_its_end_marker_is_rejected():
    data = _encode(_noise(256, 256), "JPEG")
    with pytest.raises(ImageRejected, match="truncated"):
        decode_image(data[:-2], name="a.jpg")


@pytest.mark.parametrize("cut", [2, 100, 5000])
def test_draft_check_still_finds_truncation(cut):
    """validate_source checks JPEGs at 1/8 scale: the whole stream is still read."""
    data = _encode(_noise(640, 480), "JPEG", quality=95)
    with pytest.raises(ImageRejected, match="truncated"):
        decode_image(data[:-cut], name="a.jpg", draft=True)


def test_draft_check_reports_the_full_size_after_orientation():
    img = _noise(640, 480)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the picture is 480 wide
    data = _encode(img, "JPEG", exif=exif.tobytes())
    checked = decode_image(data, name="a.jpg", draft=True)
    assert (checked.width, checked.height) == (480, 640)
    assert checked.rgb.shape[:2] == (80, 60)  # the 1/8-scale copy, turned
    full = decode_image(data, name="a.jpg")
    assert (full.width, full.height) == (480, 640) and full.rgb.shape[:2] == (640, 480)


def test_truncated_webp_rejected():
    data = _encode(_noise(256, 256), "WEBP")
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], name="a.webp")


def test_forged_header_bomb_rejected_before_decoding():
    bomb = _png(100_000, 100_000, 8, 2, b"\0" * 16)  # 10 gigapixels in ~70 bytes
    assert len(bomb) < 200
    with pytest.raises(ImageRejected, match="too many pixels"):
        decode_image(bomb, name="bomb.png")


def test_pixel_cap_under_pillows_own_guard():
    forged = _png(9000, 8000, 8, 2, b"\0" * 16)  # 72 MP: Pillow allows it, our 64 MP cap does not
    with pytest.raises(ImageRejected, match="too many pixels: 9000x8000"):
        decode_image(forged, name="big.png")


def test_pixel_cap_is_per_call_and_global_untouched():
    before = Image.MAX_IMAGE_PIXELS
    data = _encode(_noise(64, 64), "PNG")
    with pytest.raises(ImageRejected, match="too many pixels"):
        decode_image(data, name="a.png", max_pixels=1000)
    assert decode_image(data, name="a.png").width == 64
    assert Image.MAX_IMAGE_PIXELS == before


def test_huge_side_rejected():
    with pytest.raises(ImageRejected, match="dimensions too large"):
        decode_image(_png(40_000, 40, 8, 2, b"\0" * 16), name="strip.png")


@pytest.mark.parametrize("size", [(1, 1), (31, 400), (400, 31)])
def test_tiny_images_rejected(size):
    with pytest.raises(ImageRejected, match="too small"):
        decode_image(_encode(Image.new("RGB", size, "red"), "PNG"), name="tiny.png")


def test_32px_is_enough():
    assert decode_image(_encode(Image.new("RGB", (32, 32), "red"), "PNG"), name="a.png").width == 32


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "TIFF"])
def test_animated_or_multipage_rejected(fmt):
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageRejected, match=r"animated or multi-page image \(3 frames\)"):
        decode_image(data, name=f"anim.{fmt.lower()}")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the broken tags
@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.9])
def test_truncated_multi_frame_files_rejected_cleanly(fmt, keep):
    frames = [_noise(128, 128).convert("P") for _ in range(3)]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageRejected):
        decode_image(data[: int(len(data) * keep)], name=f"anim.{fmt.lower()}")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_mangled_bytes_decode_or_raise_image_rejected_only(fmt):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(_noise(80, 64), fmt, **({"exif": exif.tobytes()} if fmt == "JPEG" else {}))
    rng = np.random.default_rng(11)
    for i in range(120):
        mangled = bytearray(data[: rng.integers(1, len(data))] if i % 3 == 0 else data)
        for _ in range(0 if i % 3 == 0 else rng.integers(1, 6)):
            mangled[rng.integers(0, len(mangled))] = rng.integers(0, 256)
        try:
            out = decode_image(bytes(mangled), name="fuzz")
        except ImageRejected:
            continue
        assert out.rgb.dtype == np.uint8 and out.rgb.shape == (out.height, out.width, 3)


def test_still_gif_decodes():
    out = decode_image(_encode(Image.new("RGB", (64, 64), (255, 0, 0)), "GIF"), name="a.gif")
    assert out.format == "GIF" and tuple(out.rgb[10, 10]) == (255, 0, 0)


def test_multi_picture_jpeg_uses_primary_picture():
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    out = decode_image(_encode(frames[0], "MPO", save_all=True, append_images=frames[1:]), name="p.jpg")
    assert out.format == "MPO" and out.rgb[5, 5, 0] > 240 and out.rgb[5, 5, 2] < 10


# --- modes ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "WEBP"])
def test_other_allowed_formats(fmt):
    img = _noise()
    out = decode_image(_encode(img, fmt, **({"lossless": True} if fmt == "WEBP" else {})), name="x")
    assert out.format == fmt and np.array_equal(out.rgb, np.asarray(img))


def test_cmyk_jpeg_to_rgb():
    data = _encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)
    out = decode_image(data, name="cmyk.jpg")
    assert out.source_mode == "CMYK" and out.rgb.shape == (64, 64, 3)
    assert np.abs(out.rgb[32, 32].astype(int) - (255, 0, 0)).max() <= 3


def test_16bit_grey_png_scaled_not_clipped():
    values = np.array([[0, 257 * 128, 65535, 1000]], dtype=np.uint16).repeat(64, 0).repeat(16, 1)
    data = _encode(Image.fromarray(values), "PNG")
    out = decode_image(data, name="g16.png")
    assert out.source_mode.startswith("I")
    assert out.rgb[0, ::16].tolist() == [[0] * 3, [128] * 3, [255] * 3, [4] * 3]


def test_16bit_rgb_png_forged():
    row = b"\0" + struct.pack(">3H", 0xFF00, 0x8080, 0x0101) * 40
    out = decode_image(_png(40, 40, 16, 2, row * 40), name="rgb16.png")
    assert np.abs(out.rgb[5, 5].astype(int) - (254, 128, 1)).max() <= 1


def test_grayscale_jpeg():
    out = decode_image(_encode(Image.new("L", (64, 48), 77), "JPEG"), name="g.jpg")
    assert out.source_mode == "L" and out.rgb.shape == (48, 64, 3)
    assert np.abs(out.rgb.astype(int) - 77).max() <= 1


def test_palette_with_transparency():
    img = Image.new("P", (64, 64), 0)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.paste(1, (0, 0, 32, 64))
    out = decode_image(_encode(img, "PNG", transparency=0), name="p.png")
    assert out.alpha is not None
    assert (out.alpha[:, :32] == 255).all() and (out.alpha[:, 32:] == 0).all()
    assert tuple(out.rgb[5, 5]) == (10, 200, 30)


def test_rgba_alpha_kept_exactly():
    rgba = RNG.integers(0, 256, (50, 60, 4), dtype=np.uint8)
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), name="a.png")
    assert np.array_equal(out.alpha, rgba[..., 3]) and np.array_equal(out.rgb, rgba[..., :3])


def test_opaque_alpha_reported_as_none():
    rgba = np.full((40, 40, 4), 255, np.uint8)
    assert decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), name="a.png").alpha is None


def test_la_png():
    grey = RNG.integers(0, 256, (40, 50), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (40, 50), dtype=np.uint8)
    img = Image.merge("LA", (Image.fromarray(grey), Image.fromarray(alpha)))
    out = decode_image(_encode(img, "PNG"), name="la.png")
    assert out.source_mode == "LA" and np.array_equal(out.alpha, alpha)
    assert np.array_equal(out.rgb, np.repeat(grey[..., None], 3, axis=2))


def test_exif_orientation_6_rotates_clockwise():
    stored = np.zeros((48, 80, 3), np.uint8)
    stored[:] = (0, 0, 255)
    stored[:16, :16] = (255, 0, 0)  # marker in the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95)
    out = decode_image(data, name="phone.jpg")
    assert out.orientation_applied == 6 and (out.width, out.height) == (48, 80)
    assert out.rgb[4, 44, 0] > 200 and out.rgb[4, 44, 2] < 60  # now top-right
    assert out.rgb[4, 4, 2] > 200


def test_adobe_rgb_profile_converted_to_srgb():
    icc = _icc_matrix_shaper(*ADOBE_D50, gamma=563 / 256)
    pixels = np.array([[[120, 200, 120], [0, 255, 0], [128, 128, 128], [200, 60, 90]]], np.uint8)
    pixels = pixels.repeat(40, axis=0).repeat(10, axis=1)
    out = decode_image(_encode(Image.fromarray(pixels), "PNG", icc_profile=icc), name="adobe.png")
    assert out.had_icc
    got = out.rgb[0, ::10].astype(float)
    assert np.abs(got - _adobe_to_srgb_reference(pixels[0, ::10].astype(float))).max() <= 1.5
    assert np.abs(got[0] - (120, 200, 120)).max() > 30  # a real change, not a pass-through


def test_untagged_is_assumed_srgb():
    img = _noise()
    out = decode_image(_encode(img, "PNG"), name="a.png")
    assert not out.had_icc and np.array_equal(out.rgb, np.asarray(img))


def test_unreadable_icc_rejected():
    data = _encode(_noise(), "PNG", icc_profile=b"definitely not a profile" * 8)
    with pytest.raises(ImageRejected, match="ICC"):
        decode_image(data, name="bad.png")


def test_icc_for_wrong_colour_space_rejected():
    icc = _icc_matrix_shaper(*ADOBE_D50, gamma=2.2)
    data = _encode(Image.new("L", (40, 40), 90), "PNG", icc_profile=icc)
    with pytest.raises(ImageRejected, match="ICC profile is for 'RGB'"):
        decode_image(data, name="grey.png")


# --- files ----------------------------------------------------------------------------


def test_decode_file_reads_and_names(tmp_path):
    path = tmp_path / "shot.JPG"
    path.write_bytes(_encode(_noise(), "PNG"))
    assert decode_file(path).format == "PNG"
    path.write_bytes(b"")
    with pytest.raises(ImageRejected, match=r"^shot\.JPG: empty"):
        decode_file(path)


def test_decode_file_refuses_big_files_before_reading(tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as fh:
        fh.truncate(200 * 2**20)  # sparse: reading it all would be slow and pointless
    with pytest.raises(ImageRejected, match="over the 52,428,800 byte limit"):
        decode_file(path)


def test_decode_file_missing(tmp_path):
    with pytest.raises(ImageRejected, match="no such image file"):
        decode_file(tmp_path / "nope.jpg")
