"""quality/marketplace.py: purity, fill and ICC profile rules on constructed images."""

import struct

import numpy as np
import pytest
from PIL import ImageCms

from quality.marketplace import background_purity, icc_description, is_srgb_description, product_fill


def _canvas(h=200, w=300):
    rgb = np.full((h, w, 3), 255, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    rgb[50:150, 100:200] = (120, 30, 30)
    alpha[50:150, 100:200] = 1.0
    return rgb, alpha


def test_pure_white_canvas_is_pure():
    rgb, alpha = _canvas()
    p = background_purity(rgb, alpha, (255, 255, 255), tolerance=0, border_px=8)
    assert (p.border_impure_share, p.background_impure_share, p.max_deviation) == (0.0, 0.0, 0)


def test_counts_off_white_pixels_exactly():
    rgb, alpha = _canvas()
    rgb[0, :30] = (254, 255, 255)  # 30 border pixels, one level off
    rgb[100, 20:40] = (250, 250, 250)  # 20 backdrop pixels inside the frame
    p = background_purity(rgb, alpha, (255, 255, 255), tolerance=0, border_px=8)
    n_frame = 200 * 300 - (200 - 16) * (300 - 16)
    n_backdrop = 200 * 300 - 100 * 100
    assert p.border_impure_share == pytest.approx(30 / n_frame)
    assert p.background_impure_share == pytest.approx(50 / n_backdrop)
    assert p.max_deviation == 1
    loose = background_purity(rgb, alpha, (255, 255, 255), tolerance=1, border_px=8)
    assert loose.border_impure_share == 0.0 and loose.background_impure_share == pytest.approx(20 / n_backdrop)


def test_grey_border_is_all_impure():
    rgb, alpha = _canvas()
    rgb[:, :4] = 240
    p = background_purity(rgb, alpha, (255, 255, 255), tolerance=0, border_px=4)
    assert p.border_impure_share == pytest.approx(200 * 4 / (2 * 4 * 300 + 2 * 4 * 192))
    assert p.max_deviation == 15


def test_product_fill():
    _, alpha = _canvas()
    assert product_fill(alpha) == pytest.approx(100 / 200)  # 100 px of a 200 px high canvas
    tall = np.zeros((1000, 800), np.float32)
    tall[75:925, 300:500] = 1.0
    assert product_fill(tall) == pytest.approx(0.85)
    wide_on_tall = np.zeros((2600, 1801), np.float32)  # Zalando's canvas, a wide product across it
    wide_on_tall[1000:1600, 135:1666] = 1.0
    assert product_fill(wide_on_tall) == pytest.approx(1531 / 1801)
    with pytest.raises(ValueError, match="empty"):
        product_fill(np.zeros((10, 10), np.float32))


def _icc_v2(description: str) -> bytes:
    """A minimal ICC v2 profile: header + one 'desc' textDescriptionType tag."""
    text = description.encode("ascii") + b"\0"
    tag = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 12
    header = bytearray(128)
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16], header[16:20], header[36:40] = b"mntr", b"RGB ", b"acsp"
    table = struct.pack(">I", 1) + struct.pack(">4sII", b"desc", 128 + 4 + 12, len(tag))
    body = bytes(header) + table + tag
    return struct.pack(">I", len(body)) + body[4:]


def test_icc_descriptions_v2_and_v4():
    v4 = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert icc_description(v4) == "sRGB built-in"
    assert icc_description(_icc_v2("sRGB IEC61966-2.1")) == "sRGB IEC61966-2.1"
    assert icc_description(_icc_v2("Adobe RGB (1998)")) == "Adobe RGB (1998)"
    assert is_srgb_description(icc_description(v4))
    assert not is_srgb_description("Display P3") and not is_srgb_description("Adobe RGB (1998)")


def test_icc_malformed():
    with pytest.raises(ValueError, match="acsp"):
        icc_description(b"\0" * 200)
    broken = bytearray(_icc_v2("sRGB"))
    struct.pack_into(">I", broken, 128, 50)  # 50 tags claimed
    with pytest.raises(ValueError, match="tag table"):
        icc_description(bytes(broken))


def test_clear_errors():
    rgb, alpha = _canvas()
    with pytest.raises(ValueError, match="border_px"):
        background_purity(rgb, alpha, (255, 255, 255), tolerance=0, border_px=0)
    with pytest.raises(ValueError, match="colour"):
        background_purity(rgb, alpha, (255, 255, 256), tolerance=0, border_px=2)
    with pytest.raises(ValueError, match="does not match"):
        background_purity(rgb, alpha[:10], (255, 255, 255), tolerance=0, border_px=2)
    bad = alpha.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        background_purity(rgb, bad, (255, 255, 255), tolerance=0, border_px=2)
