"""Depth and Canny control images; a tiny random DPT saved to disk stands in for real weights."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.depth import (
    DepthEstimator,
    DepthPreprocess,
    canny_control,
    check_rgb,
    depth_control,
    missing_weights,
)
from imaging.errors import ModelInputError, WeightsMissing
from tests.fixtures.tiny_models import save_tiny_depth

RNG = np.random.default_rng(3)


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    return DepthEstimator.load(save_tiny_depth(tmp_path_factory.mktemp("depth") / "dpt"))


def test_depth_has_the_input_grid_and_unit_range(estimator):
    rgb = (RNG.random((50, 70, 3)) * 255).astype(np.uint8)
    depth = estimator.estimate(rgb)
    assert depth.shape == (50, 70) and depth.dtype == np.float32
    assert depth.min() == 0.0 and depth.max() == 1.0
    np.testing.assert_array_equal(depth, estimator.estimate(rgb))  # deterministic


def test_loaded_preprocessing_follows_the_saved_processor_config(estimator):
    assert (estimator.preprocess.height, estimator.preprocess.width) == (32, 32)
    assert estimator.preprocess.multiple == 8 and not estimator.preprocess.keep_aspect_ratio


def test_preprocess_matches_transformers_dpt_sizes_and_normalisation():
    anything = DepthPreprocess.for_model("depth_anything")
    assert anything.output_size(480, 640) == (518, 686)  # fit height, snap to 14
    assert anything.output_size(640, 480) == (686, 518)
    dpt = DepthPreprocess.for_model("dpt")
    assert dpt.output_size(1000, 700) == (384, 384)
    white = dpt(np.full((20, 30, 3), 255, np.uint8))
    assert white.shape == (1, 3, 384, 384) and white.dtype == np.float32
    np.testing.assert_allclose(white, 1.0, atol=1e-6)  # (1 - 0.5) / 0.5


def test_missing_weights_name_the_path_or_id(tmp_path):
    with pytest.raises(WeightsMissing, match=str(tmp_path / "nope")):
        DepthEstimator.load(tmp_path / "nope")
    with pytest.raises(WeightsMissing, match="not in the local cache"):
        DepthEstimator.load("example-org/depth-model-that-is-not-cached")
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in missing_weights(tmp_path / "empty", "config.json")


def test_canny_marks_the_edges_of_a_square_and_nothing_on_flat_grey():
    rgb = np.full((64, 64, 3), 40, np.uint8)
    rgb[16:48, 16:48] = 220
    edges = canny_control(rgb)
    assert edges.shape == (64, 64, 3) and edges.dtype == np.uint8
    assert edges[:, :, 0].any() and not edges[28:36, 28:36].any() and not edges[:8, :8].any()
    assert not canny_control(np.full((32, 32, 3), 128, np.uint8)).any()
    with pytest.raises(ModelInputError):
        canny_control(rgb, low=200, high=100)


def test_depth_control_is_a_grey_three_channel_image():
    depth = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    control = depth_control(depth)
    assert control.shape == (8, 8, 3) and control[0, 0, 0] == 0 and control[-1, -1, 2] == 255
    with pytest.raises(ModelInputError):
        depth_control(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((4, 8, 3), np.uint8), "image.png"]
)
def test_bad_pictures_are_rejected_at_the_top(bad):
    with pytest.raises(ModelInputError):
        check_rgb(bad)
