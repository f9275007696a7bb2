"""imaging/provenance.py and the encoder: the IPTC digital source type in XMP, per
template kind, read back with Pillow and xml.etree; deterministic; no EXIF."""

import io
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from imaging.encode import encode_image, fit_bytes
from imaging.profiles import BUILTIN_PROFILES, encode_for_profile, load_profiles
from imaging.provenance import (
    COMPOSITE,
    COMPOSITE_WITH_AI,
    IPTC_EXT_NS,
    digital_source_type,
    read_digital_source_type,
    xmp_packet,
)
from imaging.types import Composite, Placement

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
STUDIO = "http://cv.iptc.org/newscodes/digitalsourcetype/composite"


def _pixels(h=96, w=128):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[20:70, 30:100] = 1.0
    return rgb, alpha


def _xmp_value(data: bytes) -> str:
    """The standard way: Pillow finds the packet, xml.etree reads it."""
    with Image.open(io.BytesIO(data)) as img:
        packet = img.info["xmp"]
    root = ElementTree.fromstring(packet)
    (node,) = root.iter(f"{{{IPTC_EXT_NS}}}DigitalSourceType")
    return node.text


def test_the_value_per_template_kind():
    assert (COMPOSITE, COMPOSITE_WITH_AI) == (STUDIO, AI)
    assert digital_source_type("lifestyle", "template") == AI  # a generated scene round the real product
    assert digital_source_type("lifestyle", "white") == STUDIO  # same template, white packshot: nothing generated
    assert digital_source_type("lifestyle", "transparent") == STUDIO
    assert digital_source_type("studio", "template") == STUDIO
    with pytest.raises(ValueError, match="template kind"):
        digital_source_type("sketch", "template")
    with pytest.raises(ValueError, match="digital source type"):
        xmp_packet("http://example.com/made-up")


@pytest.mark.parametrize("fmt, with_alpha", [("jpeg", False), ("png", True), ("png", False), ("webp", True)])
@pytest.mark.parametrize("value", [AI, STUDIO])
def test_each_format_carries_it_and_reads_back(fmt, with_alpha, value):
    rgb, alpha = _pixels()
    data = encode_image(rgb, alpha if with_alpha else None, fmt=fmt, xmp=xmp_packet(value))
    assert _xmp_value(data) == value == read_digital_source_type(data)
    assert data == encode_image(rgb, alpha if with_alpha else None, fmt=fmt, xmp=xmp_packet(value))  # deterministic
    with Image.open(io.BytesIO(data)) as img:
        assert len(img.getexif()) == 0  # no camera EXIF, as before
        assert img.info.get("icc_profile")  # the sRGB profile is still there
        decoded = np.asarray(img.convert("RGB"))
    if fmt == "png":  # the packet changes no pixel
        assert np.array_equal(decoded, rgb)


def test_pixels_are_the_same_with_and_without_the_packet():
    rgb, _ = _pixels()
    plain = encode_image(rgb, fmt="jpeg")
    tagged = encode_image(rgb, fmt="jpeg", xmp=xmp_packet(AI))
    assert read_digital_source_type(plain) is None
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(plain))), np.asarray(Image.open(io.BytesIO(tagged))))


def test_fit_bytes_keeps_the_packet_while_lowering_quality():
    rgb, _ = _pixels(400, 400)
    full = encode_image(rgb, fmt="jpeg", quality=95, xmp=xmp_packet(AI))
    data, quality = fit_bytes(rgb, fmt="jpeg", max_bytes=len(full) // 2, quality=95, xmp=xmp_packet(AI))
    assert quality < 95 and read_digital_source_type(data) == AI


def test_encode_for_profile_writes_it_for_every_marketplace_profile():
    rgb, alpha = _pixels()
    profiles = load_profiles(
        {
            name: {"canvas": [128, 96], "min_side": None, "min_short_side": None, "aspect_ratios": None}
            for name in ("google-merchant", "etsy", "zalando")
        }
    )
    for name in ("google-merchant", "etsy", "zalando", "shopify"):
        p = profiles[name] if name != "shopify" else load_profiles({"shopify": {"canvas": [128, 96]}})["shopify"]
        data = encode_for_profile(p, Composite(rgb, alpha, Placement.identity()), provenance=AI)
        assert read_digital_source_type(data) == AI, name
    plain = encode_for_profile(
        load_profiles({"shopify": {"canvas": [128, 96]}})["shopify"], Composite(rgb, alpha, Placement.identity())
    )
    assert read_digital_source_type(plain) is None
    assert BUILTIN_PROFILES["transparent"].format == "png"


def test_a_bad_packet_is_refused():
    rgb, _ = _pixels()
    with pytest.raises(ValueError, match="xmp"):
        encode_image(rgb, fmt="jpeg", xmp=b"x" * 70_000)
