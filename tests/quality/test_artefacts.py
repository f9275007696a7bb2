"""quality/artefacts.py: JPEG blocking the encoder adds over the product."""

import cv2
import numpy as np
import pytest

from quality.artefacts import block_steps


def _jpeg(rgb, quality):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


@pytest.fixture
def canvas(scene):
    s = scene.make(size=512, src_size=(300, 240), scale=1.5)  # textured product on white
    return s.output_rgb, s.output_alpha


def test_low_quality_jpeg_steps_between_blocks(canvas):
    rgb, alpha = canvas
    low, high = block_steps(_jpeg(rgb, 10), rgb, alpha), block_steps(_jpeg(rgb, 95), rgb, alpha)
    assert low is not None and high is not None
    assert low > 1.0 and low > 5 * high  # tiles a person sees vs. a near-lossless encode
    assert high < 0.3


def test_blocking_grows_as_quality_drops(canvas):
    rgb, alpha = canvas
    values = [block_steps(_jpeg(rgb, q), rgb, alpha) for q in (90, 30, 5)]
    assert values[0] < values[1] < values[2], values


def test_identical_images_add_nothing(canvas):
    rgb, alpha = canvas
    assert block_steps(rgb, rgb.copy(), alpha) == 0.0


def test_size_mismatch_raises(canvas):
    rgb, alpha = canvas
    with pytest.raises(ValueError, match="differ in size"):
        block_steps(rgb[:-8], rgb, alpha)


def test_tiny_product_is_not_measurable(scene):
    s = scene.make(size=512, src_size=(300, 240), scale=1.5, textured=False, product_rgb=(120, 120, 120))
    tiny = np.zeros_like(s.output_alpha)
    tiny[200:216, 200:216] = 1.0  # two blocks: too few pairs
    assert block_steps(s.output_rgb, s.output_rgb, tiny) is None
