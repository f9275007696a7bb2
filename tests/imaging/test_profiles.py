"""imaging.profiles: built-in marketplace values, config overrides, validation, export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import yaml
from PIL import Image

from imaging.encode import srgb_icc_bytes
from imaging.profiles import (
    BUILTIN_PROFILES,
    WHITE,
    ExportProfile,
    encode_for_profile,
    load_profiles,
    profile_canvas,
)
from imaging.types import Background, Composite, Placement, ShadowSpec

TEMPLATE_BG = Background("gradient", (245, 245, 245), (210, 210, 215))
TEMPLATE_SHADOW = ShadowSpec("soft", 120.0, 0.3)


def test_amazon_main():
    p = BUILTIN_PROFILES["amazon-main"]
    assert (p.format, p.extension, p.canvas) == ("jpeg", "jpg", (2000, 2000))
    assert p.fill == 0.85 and p.background == "white"
    assert p.min_side == 1600 and max(p.canvas) >= 1600 and p.max_bytes == 10_000_000 and p.icc
    assert p.filename() == "amazon-main.jpg"


def test_shopify():
    p = BUILTIN_PROFILES["shopify"]
    assert p.format in ("jpeg", "webp") and p.canvas == (2048, 2048) and p.icc
    assert p.max_side == 4472 and p.max_megapixels == 20.0 and p.background == "template"


def test_transparent():
    p = BUILTIN_PROFILES["transparent"]
    assert (p.format, p.longest_side, p.canvas, p.background) == ("png", 2048, None, "transparent")
    assert p.filename() == "transparent.png"


def test_builtins_are_read_only():
    with pytest.raises(TypeError):
        BUILTIN_PROFILES["x"] = BUILTIN_PROFILES["shopify"]  # type: ignore[index]
    with pytest.raises(ValueError):
        BUILTIN_PROFILES["shopify"].quality = 10  # frozen model


def test_override_from_yaml_dict():
    config = yaml.safe_load("""
amazon-main: {quality: 95}
transparent: {canvas: [1000, 1200]}
catalog-webp:
  format: webp
  background: template
  canvas: [1200, 1200]
  naming: "{sku}-{profile}.{ext}"
""")
    profiles = load_profiles(config)
    assert profiles["amazon-main"].quality == 95 and profiles["amazon-main"].canvas == (2000, 2000)
    assert BUILTIN_PROFILES["amazon-main"].quality == 90  # untouched
    assert profiles["transparent"].canvas == (1000, 1200) and profiles["transparent"].longest_side is None
    assert profiles["catalog-webp"].extension == "webp"
    assert profiles["catalog-webp"].filename(sku="A-1") == "A-1-catalog-webp.webp"
    assert set(profiles) == set(BUILTIN_PROFILES) | {"catalog-webp"}
    assert load_profiles(None) == dict(BUILTIN_PROFILES)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"amazon-main": {"format": "jpeg", "background": "transparent"}}, "JPEG has no alpha"),
        ({"amazon-main": {"qualty": 95}}, "qualty"),
        ({"amazon-main": {"quality": 101}}, "quality"),
        ({"shopify": {"canvas": [5000, 5000]}}, "max_side"),
        ({"amazon-main": {"canvas": [1000, 1000]}}, "min_side"),
        ({"shopify": {"canvas": [4400, 4600], "max_side": 5000}}, "MP"),
        ({"new": {"format": "png", "background": "white", "canvas": [10, 10], "longest_side": 10}}, "exactly one"),
        ({"new": {"format": "png", "background": "white"}}, "exactly one"),
        ({"amazon-main": {"naming": "../{profile}.{ext}"}}, "plain file name"),
        ({"amazon-main": {"naming": "{profile}-{date}.{ext}"}}, "may only use"),
        ({"amazon-main": {"extension": "png"}}, "does not fit"),
        ({"amazon-main": {"name": "other"}}, "'name' field"),
        ({"Bad Name": {"format": "png", "background": "white", "canvas": [64, 64]}}, "name"),
        ({"amazon-main": "quality 95"}, "mapping"),
        (["amazon-main"], "mapping"),
    ],
)
def test_invalid_config_raises(config, message):
    with pytest.raises(ValueError, match=message):
        load_profiles(config)


def test_filename_refuses_path_skus():
    with pytest.raises(ValueError, match="cannot be used"):
        load_profiles({"x": {"format": "png", "background": "white", "canvas": [64, 64], "naming": "{sku}.{ext}"}})[
            "x"
        ].filename(sku="../etc")


def test_profile_canvas_amazon_forces_white():
    spec = profile_canvas(BUILTIN_PROFILES["amazon-main"], TEMPLATE_BG, TEMPLATE_SHADOW)
    assert spec.size == (2000, 2000) and spec.background == WHITE and spec.shadow == TEMPLATE_SHADOW
    assert spec.fill == 0.85 and not spec.transparent


def test_profile_canvas_shopify_uses_template():
    spec = profile_canvas(BUILTIN_PROFILES["shopify"], TEMPLATE_BG, TEMPLATE_SHADOW)
    assert spec.background == TEMPLATE_BG and spec.size == (2048, 2048)
    with pytest.raises(ValueError, match="template background"):
        profile_canvas(BUILTIN_PROFILES["shopify"], None)


def test_profile_canvas_transparent_follows_product_aspect():
    spec = profile_canvas(BUILTIN_PROFILES["transparent"], None, TEMPLATE_SHADOW, product_size=(300, 600))
    assert spec.size == (1024, 2048) and spec.transparent and spec.shadow.style == "none"
    assert profile_canvas(BUILTIN_PROFILES["transparent"], None, product_size=(900, 300)).size == (2048, 683)
    with pytest.raises(ValueError, match="product_size"):
        profile_canvas(BUILTIN_PROFILES["transparent"], None)


def _composite(w: int, h: int) -> Composite:
    rgb = np.full((h, w, 3), 255, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = (30, 90, 200)
    alpha[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
    return Composite(rgb, alpha, Placement.identity())


def test_encode_for_profile_amazon():
    data = encode_for_profile(BUILTIN_PROFILES["amazon-main"], _composite(2000, 2000))
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (2000, 2000) and img.mode == "RGB"
    assert img.info["icc_profile"] == srgb_icc_bytes() and len(data) <= 10_000_000
    assert np.asarray(img)[5, 5].tolist() == [255, 255, 255]


def test_encode_for_profile_transparent_keeps_alpha():
    data = encode_for_profile(BUILTIN_PROFILES["transparent"], _composite(1024, 2048))
    img = Image.open(io.BytesIO(data))
    assert img.mode == "RGBA" and np.asarray(img)[0, 0, 3] == 0 and np.asarray(img)[1024, 512, 3] == 255


def test_encode_for_profile_checks_sizes():
    with pytest.raises(ValueError, match="min_side"):
        encode_for_profile(BUILTIN_PROFILES["amazon-main"], _composite(1000, 1000))
    with pytest.raises(ValueError, match="max_side"):
        encode_for_profile(BUILTIN_PROFILES["transparent"], _composite(2100, 100))


def test_profile_is_a_plain_pydantic_record():
    p = ExportProfile.model_validate(BUILTIN_PROFILES["shopify"].model_dump())
    assert p == BUILTIN_PROFILES["shopify"]
