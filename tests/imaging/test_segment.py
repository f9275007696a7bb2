"""imaging.segment: real u2netp on a real photo, confidence, input checks, the registry."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from imaging.errors import ModelInputError, WeightsMissing
from imaging.segment import SEGMENTERS, OnnxSalientSegmenter, load_segmenter, mask_confidence
from imaging.weights import fetch_weights

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = Path(os.environ.get("LIGHTBOX_MODEL_DIR", REPO / ".lightbox" / "models"))
    fetch_weights(d)  # no-op when present
    return d


@pytest.fixture(scope="module")
def segmenter(model_dir) -> OnnxSalientSegmenter:
    return load_segmenter("u2netp", model_dir, threads=2)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _disc(h: int = 120, w: int = 160, soft: float = 1.0) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    cv2.circle(m, (w // 2, h // 2), min(h, w) // 3, soft, -1)
    return m


def test_u2netp_finds_the_cup_on_the_coffee_photo(segmenter):
    rgb = data.coffee()  # 400x600: cup and saucer on a wooden table
    result = segmenter.segment(rgb)
    assert result.mask.shape == rgb.shape[:2] and result.mask.dtype == np.float32
    assert result.raw_mask is not None and result.raw_mask.shape == rgb.shape[:2]
    assert 0.0 <= result.mask.min() and result.mask.max() <= 1.0
    assert result.model == "u2netp@309c8469258d"
    expected = np.zeros(rgb.shape[:2], np.uint8)  # rough hand-drawn saucer + cup
    cv2.ellipse(expected, (278, 232), (200, 155), 0, 0, 360, 1, -1)
    cv2.ellipse(expected, (255, 105), (110, 92), 0, 0, 360, 1, -1)
    mask = result.mask > 0.5
    assert _iou(mask, expected > 0) > 0.85
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - 278) < 30 and abs(ys.mean() - 215) < 30
    assert not mask[:60, :60].any() and not mask[:, 540:].any()  # table corners stay out
    assert result.confidence > 0.85


def test_same_photo_gives_the_same_mask(segmenter):
    rgb = data.coffee()[::2, ::2].copy()
    np.testing.assert_array_equal(segmenter.predict(rgb), segmenter.predict(rgb))


def test_load_segmenter_is_cached_per_process(model_dir, segmenter):
    assert load_segmenter("u2netp", model_dir, threads=2) is segmenter


@pytest.mark.parametrize(
    "bad, why",
    [
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((64, 64, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((8, 64, 3), np.uint8), "smaller than 16"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_input_is_refused(segmenter, bad, why):
    with pytest.raises(ModelInputError, match=why):
        segmenter.segment(bad)


def test_production_models_share_the_class_and_ask_for_their_weights(tmp_path):
    assert SEGMENTERS["birefnet-general"].input_size == (1024, 1024)
    assert SEGMENTERS["birefnet-general"].activation == "sigmoid"
    assert SEGMENTERS["rmbg-1.4"].mean == (0.5, 0.5, 0.5)
    with pytest.raises(WeightsMissing, match="BiRefNet-general-epoch_244.onnx.*user-supplied"):
        OnnxSalientSegmenter("birefnet-general", tmp_path)
    with pytest.raises(KeyError, match="unknown segmenter"):
        OnnxSalientSegmenter("sam", tmp_path)


def test_device_is_checked_at_load(model_dir):
    with pytest.raises(ValueError, match="unsupported device 'tpu'"):
        OnnxSalientSegmenter("u2netp", model_dir, device="tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(RuntimeError, match="no CUDAExecutionProvider"):
            OnnxSalientSegmenter("u2netp", model_dir, device="cuda")


class _StubSession:
    """Stands in for an onnxruntime session: records the feed, returns a fixed output."""

    def __init__(self, out: np.ndarray) -> None:
        self.out, self.fed = out, None

    def run(self, names, feeds):
        self.fed = next(iter(feeds.values()))
        return [self.out]


def test_birefnet_config_feeds_1024_imagenet_normalised_and_applies_sigmoid(segmenter):
    seg = copy.copy(segmenter)
    seg.config = SEGMENTERS["birefnet-general"]
    logits = np.full((1, 1, 1024, 1024), -8.0, np.float32)
    logits[..., 256:768, 256:768] = 8.0  # the centre half of the frame is product
    seg._session = _StubSession(logits)
    raw = seg.predict(np.full((200, 300, 3), 255, np.uint8))
    assert seg._session.fed.shape == (1, 3, 1024, 1024) and seg._session.fed.dtype == np.float32
    white = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(seg._session.fed[0, :, 0, 0], white, rtol=1e-5)
    assert raw.shape == (200, 300) and raw[100, 150] > 0.99 and raw[5, 5] < 0.01


def test_rmbg_config_scales_by_255_and_centres_on_half(segmenter):
    seg = copy.copy(segmenter)
    seg.config = SEGMENTERS["rmbg-1.4"]
    seg._session = _StubSession(np.random.default_rng(0).random((1, 1, 1024, 1024), dtype=np.float32))
    seg.predict(np.full((64, 64, 3), 128, np.uint8))
    np.testing.assert_allclose(seg._session.fed[0, :, 10, 10], 128 / 255 - 0.5, atol=1e-5)


def test_confidence_clean_mask_is_high():
    assert mask_confidence(_disc()) > 0.95


def test_confidence_half_grey_or_noisy_mask_is_low():
    assert mask_confidence(_disc(soft=0.6)) < 0.1  # the model is unsure everywhere
    rng = np.random.default_rng(0)
    noisy = (rng.random((120, 160)) < 0.3).astype(np.float32)  # speckle
    assert mask_confidence(noisy) < 0.3
    blurred = cv2.GaussianBlur(_disc(), (0, 0), 12)  # no decisive edge
    assert mask_confidence(blurred) < 0.7 * mask_confidence(_disc())


def _stool(leg: float = 1.0, width: int = 6) -> np.ndarray:
    """A seat on three thin legs drawn at 4x and area-downsampled to a 320 px map: every leg
    is a pixel or two wide, all of it anti-aliased edge (``leg`` < 1: legs the model doubts)."""
    big = np.zeros((1280, 1280), np.float32)
    big[300:420, 240:1040] = 1.0
    for x in (280, 620, 960):
        cv2.line(big, (x, 420), (x + (x - 640) // 8, 1180), leg, width)
    return cv2.resize(big, (320, 320), interpolation=cv2.INTER_AREA)


def test_confidence_thin_parts_of_a_crisp_map_are_not_doubt():
    # a crisp map's own one-pixel transition along its outline is not doubt: counting it read
    # this stool 0.88, and u2netp's good cuts of three lamps (thin stems) 0.77-0.79, under 0.8
    assert mask_confidence(_stool()) > 0.95
    # legs the model half-sees are doubt still: under the gate's floor
    assert mask_confidence(_stool(leg=0.45, width=16)) < 0.8


def test_confidence_empty_full_and_border_touching():
    assert mask_confidence(np.zeros((50, 50), np.float32)) == 0.0
    assert mask_confidence(np.ones((50, 50), np.float32)) == 0.0
    left_half = np.zeros((100, 100), np.float32)
    left_half[:, :50] = 1.0  # a product cut off by the frame
    assert mask_confidence(left_half) < mask_confidence(_disc(100, 100))
    with pytest.raises(ModelInputError):
        mask_confidence(np.full((4, 4), np.nan, np.float32))
