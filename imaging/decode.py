"""Safe decoding of untrusted product photos into 8-bit sRGB arrays.

Rules (every failure raises :class:`imaging.errors.ImageRejected` whose message is
``"<name>: <reason>"``; the caller adds the SKU):

* Formats are detected from the bytes, never from the file name, and only these
  Pillow plugins are ever run on the data: JPEG, MPO (multi-picture JPEG from phones:
  the primary picture is used), PNG, WebP, TIFF, BMP and GIF. HEIC/AVIF/PDF/PSD and
  anything else is rejected with a reason.
* Animated or multi-page files (GIF, APNG, animated WebP, multi-page TIFF) are
  rejected: picking a frame would be a silent guess about which one is the product.
* Size limits are checked before any pixel is decoded: the byte count first, then the
  header's width x height against ``max_pixels`` and ``max_side`` (decompression
  bombs), and sides under ``MIN_SIDE`` px are rejected as too small. Pillow's own
  global guard (``Image.MAX_IMAGE_PIXELS``) stays as a backstop; it is never changed.
* The image is fully decoded, so a truncated file fails ("truncated or corrupt");
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set.
* EXIF orientation (1..8) is applied; other values are treated as 1, as viewers do.
* Output is always 8-bit sRGB: an embedded ICC profile (RGB, grey or CMYK) is
  converted to sRGB with LittleCMS (relative colorimetric + black-point compensation,
  out-of-gamut colours clip); untagged data is assumed sRGB (CMYK without a profile
  uses Pillow's naive conversion). 16-bit grey (and 32-bit integer grey within
  0..65535) is scaled by 1/257; 16-bit RGB(A) keeps its high byte (Pillow's reader);
  float images are refused. Palette and
  grey images are expanded, and straight (un-premultiplied) alpha is returned
  separately - or ``None`` when the file has none or it is fully opaque.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from imaging.errors import ImageRejected

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")  # MPO comes via the JPEG opener
MIN_SIDE = 32
DEFAULT_MAX_PIXELS = 64_000_000  # a 61 MP full-frame camera fits; decoded RGB stays under 200 MB
DEFAULT_MAX_BYTES = 50 * 2**20
DEFAULT_MAX_SIDE = 30_000

_MODES = {
    "1",
    "L",
    "LA",
    "La",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBa",
    "RGBX",
    "CMYK",
    "YCbCr",
    "I",
    "I;16",
    "I;16L",
    "I;16B",
    "I;16N",
}
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Formats we know by their first bytes, to say *what* was refused instead of "not an image".
_KNOWN_UNSUPPORTED = (
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
_ICC_SPACES = {"RGB": "RGB ", "L": "GRAY", "CMYK": "CMYK"}
# What Pillow's parsers raise on hostile bytes (Image.open itself treats SyntaxError,
# IndexError, TypeError and struct.error as "not this format"). ImageRejected is a
# ValueError, so no ImageRejected may be raised inside a try that catches these.
_DATA_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    struct.error,
)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded photo: 8-bit sRGB pixels, straight alpha, and where they came from."""

    rgb: np.ndarray  # (H, W, 3) uint8, sRGB
    alpha: np.ndarray | None  # (H, W) uint8 straight alpha, None when absent or all 255
    format: str  # Pillow's format name detected from content: "JPEG", "PNG", ...
    width: int  # after orientation
    height: int
    source_mode: str  # Pillow mode in the file: "RGB", "CMYK", "I;16", "P", ...
    had_icc: bool  # an embedded ICC profile was found and converted to sRGB
    orientation_applied: int  # EXIF orientation 1..8 that was applied (1 = none)


def decode_image(
    data: bytes,
    *,
    name: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int = DEFAULT_MAX_SIDE,
    draft: bool = False,
) -> DecodedImage:
    """Decode untrusted image bytes into 8-bit sRGB, or raise ``ImageRejected``.

    ``draft=True`` is for checking a file, not for its pixels: a JPEG is decoded at 1/8
    scale (libjpeg still reads the whole stream, so truncation and corrupt data are still
    found; ~8x faster on camera photos), ``rgb`` is that small copy, and ``width`` and
    ``height`` stay the full image's."""
    if len(data) == 0:
        _reject(name, "empty file (0 bytes)")
    if len(data) > max_bytes:
        _reject(name, f"file is {len(data):,} bytes, over the {max_bytes:,} byte limit")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"{name}: too many pixels (decompression bomb guard): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageRejected(f"{name}: {_not_an_image_reason(data)}") from exc
    except _DATA_ERRORS as exc:
        raise ImageRejected(f"{name}: corrupt or truncated image ({exc})") from exc
    with img:
        fmt = img.format or "unknown"
        try:
            frames = 1 if fmt == "MPO" else getattr(img, "n_frames", 1)  # MPO: primary picture
        except _DATA_ERRORS as exc:
            raise ImageRejected(f"{name}: corrupt or truncated image ({exc})") from exc
        if frames > 1:
            _reject(name, f"animated or multi-page image ({frames} frames): send a single still image")
        _check_header(img, name, max_pixels=max_pixels, max_side=max_side)
        source_mode = img.mode
        full_size = img.size
        if draft and fmt == "JPEG":
            img.draft(img.mode, (max(1, full_size[0] // 8), max(1, full_size[1] // 8)))
        try:
            img.load()
        except Image.DecompressionBombError as exc:
            raise ImageRejected(f"{name}: too many pixels (decompression bomb guard): {exc}") from exc
        except _DATA_ERRORS as exc:
            raise ImageRejected(f"{name}: truncated or corrupt image data ({exc})") from exc
        try:
            orientation = _orientation(img)
        except _DATA_ERRORS as exc:
            raise ImageRejected(f"{name}: corrupt EXIF metadata ({exc})") from exc
        rgb_img, alpha_img, had_icc = _to_srgb(img, name)
    if orientation in _ORIENTATION:
        rgb_img = rgb_img.transpose(_ORIENTATION[orientation])
        alpha_img = alpha_img.transpose(_ORIENTATION[orientation]) if alpha_img is not None else None
    else:
        orientation = 1
    rgb = np.asarray(rgb_img, dtype=np.uint8)
    alpha = None if alpha_img is None else np.asarray(alpha_img, dtype=np.uint8)
    if alpha is not None and bool((alpha == 255).all()):
        alpha = None
    width, height = full_size if orientation < 5 else full_size[::-1]  # 5-8 turn the picture
    return DecodedImage(
        rgb=rgb,
        alpha=alpha,
        format=fmt,
        width=width,
        height=height,
        source_mode=source_mode,
        had_icc=had_icc,
        orientation_applied=orientation,
    )


def decode_file(path: str | os.PathLike, **kw) -> DecodedImage:
    """Read ``path`` (refusing files over ``max_bytes`` before reading them) and decode it.

    A missing path or a directory is an ``ImageRejected``; other ``OSError``s (permissions,
    I/O) propagate, since they are infrastructure problems worth a retry.
    """
    path = Path(path)
    max_bytes = kw.get("max_bytes", DEFAULT_MAX_BYTES)
    name = kw.pop("name", path.name)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            _reject(name, f"file is {size:,} bytes, over the {max_bytes:,} byte limit")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ImageRejected(f"{name}: no such image file ({exc.strerror})") from exc
    return decode_image(data, name=name, **kw)


def _reject(name: str, reason: str) -> None:
    raise ImageRejected(f"{name}: {reason}")


def _not_an_image_reason(data: bytes) -> str:
    head = data[:32]
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        return f"unsupported format (ISO media, brand {brand!r}, e.g. HEIC/AVIF): send JPEG or PNG"
    for magic, label in _KNOWN_UNSUPPORTED:
        if head.startswith(magic):
            return f"unsupported format {label}: send JPEG, PNG, WebP, TIFF, BMP or GIF"
    return "not an image (content is not JPEG, PNG, WebP, TIFF, BMP or GIF)"


def _check_header(img: Image.Image, name: str, *, max_pixels: int, max_side: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        _reject(name, f"too many pixels: {width}x{height} = {width * height:,} > {max_pixels:,}")
    if max(width, height) > max_side:
        _reject(name, f"dimensions too large: {width}x{height}, a side exceeds {max_side} px")
    if min(width, height) < MIN_SIDE:
        _reject(name, f"too small: {width}x{height}, both sides must be at least {MIN_SIDE} px")
    if img.mode not in _MODES:
        _reject(name, f"unsupported pixel mode {img.mode!r}")


def _orientation(img: Image.Image) -> int:
    value = img.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_srgb(img: Image.Image, name: str) -> tuple[Image.Image, Image.Image | None, bool]:
    """Split into (RGB image, alpha 'L' image or None, had_icc), converted to 8-bit sRGB."""
    icc = img.info.get("icc_profile")
    mode = img.mode
    if mode.startswith("I"):
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            _reject(name, f"{mode} pixels outside the 16-bit range are not supported")
        img = Image.fromarray((arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8))
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode in ("1", "YCbCr", "RGBX"):
        img = img.convert("L" if mode == "1" else "RGB")
    elif mode in ("La", "RGBa"):
        img = img.convert(mode[:-1] + "A")
    alpha = None
    if img.mode in ("LA", "RGBA"):
        alpha = img.getchannel("A")
        img = img.convert(img.mode[:-1])
    if icc:
        img = _icc_to_srgb(img, icc, name)
    return img.convert("RGB"), alpha, bool(icc)


def _icc_to_srgb(img: Image.Image, icc: bytes, name: str) -> Image.Image:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ImageRejected(f"{name}: unreadable embedded ICC profile ({exc})") from exc
    space = profile.profile.xcolor_space
    if space != _ICC_SPACES.get(img.mode):
        _reject(name, f"embedded ICC profile is for {space.strip()!r} but the pixels are {img.mode}")
    try:
        return ImageCms.profileToProfile(
            img,
            profile,
            ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except ImageCms.PyCMSError as exc:
        raise ImageRejected(f"{name}: cannot convert embedded ICC profile to sRGB ({exc})") from exc
