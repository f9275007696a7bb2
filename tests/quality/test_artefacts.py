"""quality/artefacts.py: JPEG tiles the encoder adds over the product.

The files are made by the exporter (``imaging.encode``: baseline, optimised, 4:4:4 from
quality 85) and read back as production reads them (``tasks.score.decode_shipped``)."""

import numpy as np
import pytest

from imaging.encode import encode_image
from quality.artefacts import tile_share
from quality.gate import QcEvidence, score_image
from quality.thresholds import MARKETPLACE_PROFILES, QcThresholds
from tasks.score import decode_shipped

TH = QcThresholds()


def _shipped(rgb, quality):
    grey, _ = decode_shipped(encode_image(rgb, fmt="jpeg", quality=quality), jpeg=True)
    return grey


@pytest.fixture
def textured(scene):
    s = scene.make(size=512, src_size=(300, 240), scale=1.5)  # textured product on white
    return s.output_rgb, s.output_alpha


@pytest.fixture
def smooth(scene):
    """A product with no texture, only shading (a glossy bottle's): where tiles show most."""
    s = scene.make(size=512, src_size=(300, 240), scale=1.5, textured=False)
    y, x = np.mgrid[0:512, 0:512].astype(np.float32)
    shade = 90 + 110 * np.exp(-((x - 230) ** 2 + (y - 220) ** 2) / (2 * 120.0**2))
    rgb = s.output_rgb.astype(np.float32)
    a = s.output_alpha[..., None]
    rgb = a * np.stack([shade, 0.8 * shade, 0.6 * shade], -1) + (1 - a) * rgb
    return np.clip(rgb.round(), 0, 255).astype(np.uint8), s.output_alpha


def _jpeg_check(rgb, alpha, quality):
    ev = QcEvidence(
        rgb, alpha, rgb, alpha, (1.0, 0.0, 0.0), background_rgb=(255, 255, 255), shipped_grey=_shipped(rgb, quality)
    )
    report = score_image(ev, TH, MARKETPLACE_PROFILES["generic"])
    return next(c for c in report.checks if c.name == "artefacts.jpeg"), report


@pytest.mark.parametrize("canvas", ["textured", "smooth"])
@pytest.mark.parametrize("quality", [95, 90, 85, 80, 70, 60, 50])
def test_qualities_a_profile_ships_pass(request, canvas, quality):
    """Quality 85 read 0.21 grey levels of mean step on the old measure, over its fail level
    (0.2): a profile set to 85 had every SKU rejected. Nothing from 50 up (the exporter lowers
    quality to fit a byte cap down to 60) may fail."""
    check, _ = _jpeg_check(*request.getfixturevalue(canvas), quality)
    assert check.status == "pass", (check.value, check.detail)
    assert check.value == 0.0


@pytest.mark.parametrize("canvas", ["textured", "smooth"])
@pytest.mark.parametrize("quality", [25, 20, 10])
def test_visible_tiles_fail_and_name_the_defect(request, canvas, quality):
    check, report = _jpeg_check(*request.getfixturevalue(canvas), quality)
    assert check.status == "fail" and check.value > 10 * TH.jpeg_tiles.fail, check.value
    assert "artefacts.jpeg" in report.failing
    assert "compression artefacts" in report.reasons


def test_identical_images_add_nothing(textured):
    rgb, alpha = textured
    assert tile_share(rgb, rgb.copy(), alpha) == 0.0


def test_size_mismatch_raises(textured):
    rgb, alpha = textured
    with pytest.raises(ValueError, match="differ in size"):
        tile_share(rgb[:-8], rgb, alpha)


def test_tiny_product_is_not_measurable(scene):
    s = scene.make(size=512, src_size=(300, 240), scale=1.5, textured=False, product_rgb=(120, 120, 120))
    tiny = np.zeros_like(s.output_alpha)
    tiny[200:216, 200:216] = 1.0  # two blocks: too few pairs
    assert tile_share(s.output_rgb, s.output_rgb, tiny) is None
