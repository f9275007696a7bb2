"""Marketplace rules: background purity, product fill, pixel size, colour profile.

The rule *values* (which colour, what fill, which sizes) come from the caller — a
profile in ``quality.thresholds.MARKETPLACE_PROFILES`` or a block — never from here.
Purity and fill are exact full-resolution measurements (a rule about "exactly 255"
cannot be checked on a resampled image).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from quality._validate import bbox, check_mask, check_pair

__all__ = ["Purity", "background_purity", "product_fill", "icc_description", "is_srgb_description", "icc_is_srgb"]


@dataclass(frozen=True)
class Purity:
    """Share of pixels that are not the required backdrop colour (see ``background_purity``)."""

    border_impure_share: float  # over the outer ``border_px`` frame of the canvas
    background_impure_share: float  # over backdrop pixels (product coverage < 1/255)
    max_deviation: int  # largest channel difference from the colour on the border, 0..255


def background_purity(
    output_rgb: np.ndarray,
    output_alpha: np.ndarray,
    colour: tuple[int, int, int],
    *,
    tolerance: int,
    border_px: int,
    validate: bool = True,
) -> Purity:
    """How much of the backdrop and of the canvas border is not exactly ``colour``.

    Inputs: ``output_rgb`` (H, W, 3) uint8 sRGB; ``output_alpha`` (H, W) float [0, 1];
    ``colour`` the required sRGB backdrop (e.g. Amazon main image: 255, 255, 255);
    ``tolerance`` allowed difference per channel in 8-bit levels (0 = exact);
    ``border_px`` width of the checked frame, 1..N px from the edge. Colour space: the
    encoded 8-bit sRGB values themselves, as the marketplace reads them.
    Reference: Amazon product image requirements (main image: pure white background,
    RGB 255, 255, 255). ``validate=False`` skips the input checks for arrays already checked (QcEvidence).

    >>> rgb = np.full((100, 100, 3), 255, np.uint8); rgb[40:60, 40:60] = 90; rgb[0, :10] = 254
    >>> alpha = np.zeros((100, 100), np.float32); alpha[40:60, 40:60] = 1
    >>> p = background_purity(rgb, alpha, (255, 255, 255), tolerance=0, border_px=2)
    >>> round(p.border_impure_share, 4), round(p.background_impure_share, 4), p.max_deviation
    (0.0128, 0.001, 1)
    """
    output_rgb, output_alpha = check_pair("output_rgb", output_rgb, "output_alpha", output_alpha, validate, False)
    if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
        raise ValueError(f"colour must be three 8-bit values, got {colour!r}")
    h, w = output_alpha.shape
    if not 1 <= border_px <= min(h, w) // 2:
        raise ValueError(f"border_px must be in 1..{min(h, w) // 2}, got {border_px}")
    if not 0 <= tolerance <= 255:
        raise ValueError(f"tolerance must be 0..255 levels, got {tolerance}")
    lo = np.array([max(0, int(c) - tolerance) for c in colour], np.uint8)
    hi = np.array([min(255, int(c) + tolerance) for c in colour], np.uint8)
    pure = cv2.inRange(output_rgb, lo, hi)  # 255 where the colour is right
    b = border_px
    strips = [
        (slice(0, b), slice(None)),
        (slice(h - b, h), slice(None)),
        (slice(b, h - b), slice(0, b)),
        (slice(b, h - b), slice(w - b, w)),
    ]
    n_frame = 2 * b * w + 2 * b * (h - 2 * b)
    bad_frame = n_frame - sum(cv2.countNonZero(pure[sl]) for sl in strips)
    ref = np.array(colour, np.int16)
    deviation = max(int(np.abs(output_rgb[sl].astype(np.int16) - ref).max()) for sl in strips)
    backdrop = cv2.compare(output_alpha, 1.0 / 255.0, cv2.CMP_LT)
    n_bg = cv2.countNonZero(backdrop)
    impure_bg = n_bg - cv2.countNonZero(cv2.bitwise_and(pure, backdrop))
    return Purity(
        border_impure_share=bad_frame / n_frame,
        background_impure_share=impure_bg / n_bg if n_bg else 1.0,
        max_deviation=deviation,
    )


def product_fill(
    output_alpha: np.ndarray, validate: bool = True, box: tuple[int, int, int, int] | None = None
) -> float:
    """How much of the frame the product fills, in (0, 1]: its bounding box's largest share
    of a canvas side (width over width, height over height). On a square canvas this is
    the box's longest side over the canvas side; on a tall canvas (Zalando's 1801 x 2600)
    a wide product fills the width, as the compositor draws it (imaging.compose: the box
    takes ``fill`` of the canvas's longer side, or less where the other side stops it).

    Input: ``output_alpha`` (H, W) float in [0, 1]; the product is ``alpha >= 0.5``.
    Reference: Amazon's main-image guidance (the product fills ~85 % of the frame); Google
    Merchant Center (the product takes 75-90 % of the image). ``box``: ``bbox(output_alpha)``
    when the caller has it.

    >>> a = np.zeros((100, 200), np.float32); a[10:90, 50:120] = 1.0
    >>> product_fill(a)
    0.8
    """
    if validate:
        output_alpha = check_mask("output_alpha", output_alpha, np.shape(output_alpha))
    x0, y0, x1, y1 = box if box is not None else bbox(output_alpha)
    h, w = output_alpha.shape
    return max((x1 - x0) / w, (y1 - y0) / h)


def icc_description(icc: bytes) -> str:
    """The profile description ('desc' tag) of an ICC profile, from its bytes.

    Handles ICC v2 ``textDescriptionType`` and v4 ``multiLocalizedUnicodeType``
    (first record). Reference: ICC.1:2010 (profile version 4.3), section 9.2.41 and
    10.15; ICC.1:2001-04 for the v2 type. Raises ValueError for malformed profiles.

    >>> from PIL import ImageCms
    >>> icc_description(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    'sRGB built-in'
    """
    if len(icc) < 132 or icc[36:40] != b"acsp":
        raise ValueError("not an ICC profile: missing the 'acsp' signature in the header")
    (count,) = struct.unpack_from(">I", icc, 128)
    if 132 + 12 * count > len(icc):
        raise ValueError("ICC tag table runs past the end of the profile")
    for i in range(count):
        sig, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
        if sig != b"desc":
            continue
        if offset + size > len(icc) or size < 12:
            raise ValueError("ICC 'desc' tag runs past the end of the profile")
        kind = icc[offset : offset + 4]
        if kind == b"desc":
            (n,) = struct.unpack_from(">I", icc, offset + 8)
            return icc[offset + 12 : offset + 12 + n].split(b"\0", 1)[0].decode("ascii", "replace")
        if kind == b"mluc":
            n_rec, _ = struct.unpack_from(">II", icc, offset + 8)
            if n_rec < 1:
                raise ValueError("ICC 'desc' tag has no text records")
            length, start = struct.unpack_from(">II", icc, offset + 20)
            return icc[offset + start : offset + start + length].decode("utf-16-be", "replace")
        raise ValueError(f"ICC 'desc' tag has unknown type {kind!r}")
    raise ValueError("ICC profile has no 'desc' tag")


def is_srgb_description(description: str) -> bool:
    """True when a profile description names an sRGB profile ("sRGB IEC61966-2.1",
    "sRGB built-in", "sRGB v4 ICC preference"...). A heuristic on the name — a
    renamed profile with sRGB primaries is not recognised.

    >>> is_srgb_description("sRGB IEC61966-2.1"), is_srgb_description("Display P3")
    (True, False)
    """
    return "srgb" in description.lower().replace(" ", "")


def icc_is_srgb(icc: bytes | None) -> bool:
    """Whether a file's embedded ICC profile (its bytes, or None for none) is sRGB. No
    profile is not sRGB here: browsers assume it, but a marketplace that requires sRGB wants
    it said; an unreadable profile is not sRGB either.

    >>> icc_is_srgb(None), icc_is_srgb(b"not a profile")
    (False, False)
    """
    if icc is None:
        return False
    try:
        return is_srgb_description(icc_description(icc))
    except ValueError:
        return False
