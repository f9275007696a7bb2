"""imaging/profiles.py: the Google Merchant, eBay, Etsy and Zalando profiles and Amazon's
main-image rules, as configuration, and the canvas that refuses to upscale."""

import pytest

from imaging.profiles import BUILTIN_PROFILES, WHITE, load_profiles, profile_canvas
from imaging.types import ShadowSpec


def test_google_merchant():
    p = BUILTIN_PROFILES["google-merchant"]
    assert (p.format, p.canvas, p.background, p.filename()) == ("jpeg", (1500, 1500), "white", "google-merchant.jpg")
    assert (p.min_fill, p.fill, p.max_fill) == (0.75, 0.85, 0.90)
    assert p.min_side >= 100 and p.max_megapixels == 64.0 and p.max_bytes == 16_000_000
    assert p.max_enlargement == 1.05 and p.frameless


def test_ebay():
    p = BUILTIN_PROFILES["ebay"]
    assert (p.format, p.canvas, p.min_side, p.frameless) == ("jpeg", (1600, 1600), 500, True)


def test_etsy():
    p = BUILTIN_PROFILES["etsy"]
    assert p.canvas == (2000, 2000) and p.min_short_side == 2000 and p.background == "template"
    assert p.aspect_ratios == ((1, 1), (4, 3))


def test_zalando():
    p = BUILTIN_PROFILES["zalando"]
    assert (p.format, p.canvas, p.background, p.max_bytes) == ("jpeg", (1801, 2600), "white", 20_000_000)
    assert round(p.canvas[1] / p.canvas[0], 2) == 1.44


def test_amazon_main_gains_the_main_image_rules():
    p = BUILTIN_PROFILES["amazon-main"]
    assert p.edge_clear and p.residue_free and p.min_side >= 1000


def test_no_upscaling_canvas_shrinks_to_what_the_source_supports():
    p = BUILTIN_PROFILES["google-merchant"]
    big = profile_canvas(p, None, product_size=(1, 1), source_product_px=2000)
    assert big.size == (1500, 1500) and big.background == WHITE  # the source has the pixels
    small = profile_canvas(p, None, product_size=(1, 1), source_product_px=400)
    assert small.size == (494, 494)  # 400 px * 1.05 / 0.85
    assert 0.85 * small.size[0] / 400 <= 1.05
    tiny = profile_canvas(p, None, product_size=(1, 1), source_product_px=50)
    assert tiny.size == (250, 250)  # never under min_side: the gate then refuses it
    assert profile_canvas(p, None, product_size=(1, 1)).size == (1500, 1500)  # no source size given
    # other profiles draw their canvas whatever the source
    assert profile_canvas(BUILTIN_PROFILES["ebay"], WHITE, ShadowSpec("soft"), source_product_px=50).size == (
        1600,
        1600,
    )


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"fill": 0.95, "min_fill": 0.75, "max_fill": 0.9}, "min_fill..max_fill"),
        ({"canvas": [1600, 900], "aspect_ratios": [[1, 1], [4, 3]]}, "aspect_ratios"),
        ({"canvas": [1600, 1600], "min_short_side": 2000}, "min_short_side"),
        ({"background": "template", "edge_clear": True}, "white background"),
        ({"max_enlargement": 0.5}, "max_enlargement"),
        ({"frameles": True}, "frameles"),
    ],
)
def test_bad_rules_are_refused(fields, message):
    base = {"format": "jpeg", "canvas": [1600, 1600], "background": "white"}
    with pytest.raises(ValueError, match=message):
        load_profiles({"acme": {**base, **fields}})
