"""CLIP ranking scores on a tiny random CLIP saved to disk (no hub, no real weights)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.clip_score import CLIP_MEAN, CLIP_STD, ClipScorer, clip_pixels
from imaging.errors import ModelInputError, WeightsMissing
from tests.fixtures.tiny_models import save_tiny_clip

RNG = np.random.default_rng(11)
IMAGES = [(RNG.random((40 + 4 * i, 56, 3)) * 255).astype(np.uint8) for i in range(5)]


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    return ClipScorer.load(save_tiny_clip(tmp_path_factory.mktemp("clip") / "clip"))


def test_scores_one_float_per_image_in_range(scorer):
    scores = scorer.score(IMAGES, "a bottle on a marble counter")
    assert scores.shape == (5,) and scores.dtype == np.float32
    assert np.all(np.abs(scores) <= 100.0) and len(set(scores.tolist())) == 5


def test_ranking_is_deterministic_and_independent_of_batching(scorer):
    text = "a product on the sand at a sunny beach"
    first = scorer.score(IMAGES, text, batch_size=8)
    again = scorer.score(IMAGES, text, batch_size=2)
    np.testing.assert_allclose(first, again, atol=1e-4)
    assert np.argsort(-first).tolist() == np.argsort(-again).tolist()
    single = scorer.score(IMAGES[2:3], text)
    np.testing.assert_allclose(single[0], first[2], atol=1e-4)


def test_different_texts_give_different_scores(scorer):
    a = scorer.score(IMAGES[:2], "a white marble counter")
    b = scorer.score(IMAGES[:2], "a wooden table in a dim room")
    assert not np.allclose(a, b)


def test_clip_preprocessing_is_resize_centre_crop_normalise():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # the centre third survives the crop, the black sides do not
    pixels = clip_pixels(wide, 224)
    assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32
    expected_white = (1.0 - CLIP_MEAN) / CLIP_STD
    np.testing.assert_allclose(pixels[:, 112, 112], expected_white, atol=1e-5)
    centre = pixels[:, :, 10:214]
    np.testing.assert_allclose(centre, np.broadcast_to(expected_white[:, None, None], centre.shape), atol=0.05)


def test_bad_inputs_and_missing_weights(scorer, tmp_path):
    with pytest.raises(ModelInputError):
        scorer.score([], "text")
    with pytest.raises(ModelInputError):
        scorer.score(IMAGES[:1], "   ")
    with pytest.raises(ModelInputError):
        scorer.score([IMAGES[0].astype(np.float32)], "text")
    with pytest.raises(WeightsMissing, match="clip"):
        ClipScorer.load(tmp_path / "no-clip")
