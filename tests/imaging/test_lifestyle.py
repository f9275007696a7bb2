"""Lifestyle scenes end to end on tiny random SDXL + ControlNet components (64 px, 2 steps).

The product is 32 x 20 px and the template fill 0.5 on a 64 px canvas, so the compositor
places it at scale exactly 1: every fully covered canvas pixel can be checked against the
ORIGINAL source pixel, not just against another rendering.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from imaging.depth import DepthEstimator, DepthPreprocess
from imaging.errors import ModelInputError, WeightsMissing
from imaging.lifestyle import (
    DiffusionSceneGenerator,
    DiffusionWeights,
    GenerationOutOfMemory,
    fill_protected,
    placement_floor,
    post_process,
    variant_seeds,
)
from imaging.templates import PostSettings, load_templates
from tests.fixtures.tiny_models import (
    TINY_DEPTH_PREPROCESSOR,
    save_tiny_clip,
    save_tiny_depth,
    save_tiny_diffusion,
    tiny_controlnet,
    tiny_depth_model,
    tiny_inpaint_components,
)

CANVAS = (64, 64)
FAST = dict(num_inference_steps=2, strength=1.0, variants=2, fill=0.5)
LIBRARY = load_templates()
MARBLE = LIBRARY["marble_counter"].model_copy(update=FAST)  # depth ControlNet, floor anchor
FLATLAY = LIBRARY["linen_flatlay"].model_copy(update=FAST)  # canny ControlNet, centred


def _product():
    rng = np.random.default_rng(5)
    rgb = (rng.random((48, 40, 3)) * 255).astype(np.uint8)
    mask = np.zeros((48, 40), np.float32)
    mask[8:40, 10:30] = 1.0
    return rgb, mask


class RecordingScorer:
    """Prefers the *last* seed, so a correct ranking must reorder the variants."""

    def __init__(self):
        self.calls = []

    def score(self, images, text):
        self.calls.append((len(images), text))
        return np.arange(1.0, len(images) + 1.0, dtype=np.float32) * 2.0


@pytest.fixture(scope="module")
def generator():
    depth = DepthEstimator(tiny_depth_model(), preprocess=DepthPreprocess.for_model("dpt", TINY_DEPTH_PREPROCESSOR))
    return DiffusionSceneGenerator(
        tiny_inpaint_components(), {"depth": tiny_controlnet()}, depth=depth, scorer=RecordingScorer()
    )


@pytest.fixture(scope="module")
def scenes(generator):
    rgb, mask = _product()
    return generator.generate(rgb, mask, MARBLE, sku="SKU-42", canvas_size=CANVAS)


def test_variants_are_composites_without_studio_shadow_or_backdrop(scenes):
    assert len(scenes) == 2
    for comp in scenes:
        assert comp.rgb.shape == (64, 64, 3) and comp.rgb.dtype == np.uint8
        assert comp.product_alpha.shape == (64, 64) and comp.product_alpha.dtype == np.float32
        assert comp.shadow is None and comp.background is None
        assert comp.meta["template"] == "marble_counter" and comp.meta["controlnet"] == "depth"
        assert "key light from the upper left" in comp.meta["prompt"]
        assert comp.meta["generator"].startswith("sdxl-controlnet-inpaint@")
        assert comp.meta["feather_px"] == 1.0  # the gate allows for it (tasks/score.evidence)
        assert comp.placement.scale == 1.0


def test_interior_product_pixels_are_the_original_source_pixels_exactly(scenes):
    rgb, mask = _product()
    for comp in scenes:
        ox, oy = int(comp.placement.offset_x), int(comp.placement.offset_y)
        assert (ox, oy) == (comp.placement.offset_x, comp.placement.offset_y)
        solid = comp.product_alpha == 1.0
        ys, xs = np.nonzero(solid)
        assert len(ys) >= (32 - 6) * (20 - 6)  # all but the 3 px feathered rim (sigma 1 px)
        np.testing.assert_array_equal(comp.rgb[ys, xs], rgb[ys - oy, xs - ox])


def test_floor_anchor_stands_the_base_on_the_surface_line(scenes):
    assert placement_floor(scenes[0].product_alpha) == round(MARBLE.floor_y * 64)


def test_seeds_come_from_the_sku_and_change_only_the_background(scenes):
    assert sorted(c.meta["seed"] for c in scenes) == sorted(variant_seeds("SKU-42", 0, 2))
    assert variant_seeds("SKU-42", 0, 2) == variant_seeds("SKU-42", 0, 3)[:2]
    assert variant_seeds("SKU-42", 0, 2) != variant_seeds("SKU-43", 0, 2)
    a, b = scenes
    background = a.product_alpha == 0.0
    assert np.abs(a.rgb[background].astype(int) - b.rgb[background]).mean() > 1.0
    solid = a.product_alpha == 1.0
    np.testing.assert_array_equal(a.rgb[solid], b.rgb[solid])


def test_best_scored_variant_comes_first(scenes, generator):
    assert [c.meta["variant_index"] for c in scenes] == [1, 0]  # the scorer prefers seed 1
    assert [c.meta["clip_score"] for c in scenes] == [4.0, 2.0]
    assert [c.meta["rank"] for c in scenes] == [0, 1]
    assert generator.scorer.calls[0] == (2, MARBLE.clip_text)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    paths = save_tiny_diffusion(root)
    return root, paths


def test_from_config_loads_local_folders_and_reproduces_a_seed(scenes, saved):
    root, paths = saved
    weights = DiffusionWeights(
        inpaint=str(paths["inpaint"]),
        controlnet_depth=str(paths["depth"]),
        controlnet_canny=str(paths["canny"]),
        depth=str(save_tiny_depth(root / "dpt")),
        clip=str(save_tiny_clip(root / "clip")),
        device="cpu",
    )
    loaded = DiffusionSceneGenerator.from_config(weights, controlnets=("depth", "canny"))
    assert loaded.versions["inpaint"] == str(paths["inpaint"]) and sorted(loaded.pipes) == ["canny", "depth"]
    rgb, mask = _product()
    (again,) = loaded.generate(rgb, mask, MARBLE, sku="SKU-42", canvas_size=CANVAS, variants=1)
    (twice,) = loaded.generate(rgb, mask, MARBLE, sku="SKU-42", canvas_size=CANVAS, variants=1)
    np.testing.assert_array_equal(again.rgb, twice.rgb)  # same generator + seed: bit-identical
    first_seed = next(c for c in scenes if c.meta["variant_index"] == 0)
    assert again.meta["seed"] == first_seed.meta["seed"]
    # the same weights, saved and reloaded: equal up to float rounding of a few pixels
    diff = np.abs(again.rgb.astype(int) - first_seed.rgb)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.002
    assert isinstance(again.meta["clip_score"], float)  # the real (tiny) CLIP scored it

    (flat,) = loaded.generate(rgb, mask, FLATLAY, sku="SKU-42", canvas_size=CANVAS, variants=1)
    assert flat.meta["controlnet"] == "canny" and flat.rgb.shape == (64, 64, 3)
    solid = flat.product_alpha == 1.0
    ys, xs = np.nonzero(solid)
    ox, oy = int(flat.placement.offset_x), int(flat.placement.offset_y)
    np.testing.assert_array_equal(flat.rgb[ys, xs], rgb[ys - oy, xs - ox])


def test_missing_weights_name_each_missing_component(tmp_path):
    weights = DiffusionWeights(
        inpaint=str(tmp_path / "sdxl"), controlnet_depth=None, depth="example-org/not-cached-depth"
    )
    with pytest.raises(WeightsMissing) as info:
        DiffusionSceneGenerator.from_config(weights)
    message = str(info.value)
    assert f"inpaint: directory {tmp_path / 'sdxl'} does not exist" in message
    assert "controlnet_depth: not configured" in message
    assert "`diffusion.controlnet_depth` in the ModelStore block" in message
    assert "depth: no folder 'example-org/not-cached-depth'" in message
    assert "controlnet_canny" not in message and "clip" not in message
    with pytest.raises(WeightsMissing, match="controlnet_canny: not configured"):
        DiffusionSceneGenerator.from_config(weights, controlnets=("canny",))


def test_a_folder_without_its_weight_files_is_weights_missing(saved, tmp_path):
    _, paths = saved
    inpaint = shutil.copytree(paths["inpaint"], tmp_path / "sdxl")
    for weights_file in (inpaint / "unet").glob("*.safetensors"):
        weights_file.unlink()
    depth = save_tiny_depth(tmp_path / "dpt")
    config = DiffusionWeights(inpaint=str(inpaint), controlnet_depth=str(paths["depth"]), depth=str(depth))
    with pytest.raises(WeightsMissing, match="unet"):
        DiffusionSceneGenerator.from_config(config)


def test_out_of_memory_retries_smaller_once_then_raises(generator, monkeypatch):
    sizes = []

    def fake_run(template, prompt, inputs, seed, size, canvas_size):
        sizes.append(tuple(size))
        if len(sizes) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return np.full((canvas_size[1], canvas_size[0], 3), 90.0, np.float32)

    monkeypatch.setattr(generator, "_run", fake_run)
    rgb, mask = _product()
    out = generator.generate(rgb, mask, MARBLE, sku="S", canvas_size=CANVAS)
    assert sizes == [(64, 64), (48, 48), (48, 48)]  # later variants stay at the size that fit
    assert all(c.meta["generated_size"] == (48, 48) for c in out)

    def always_oom(*args):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(generator, "_run", always_oom)
    with pytest.raises(GenerationOutOfMemory, match="64x64 and at 48x48"):
        generator.generate(rgb, mask, MARBLE, sku="S", canvas_size=CANVAS)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rgb": np.zeros((48, 40, 3), np.float32)}, "uint8"),
        ({"mask": np.zeros((40, 40), np.float32)}, "shape"),
        ({"mask": np.zeros((48, 40), np.float32)}, "some product"),
        ({"template": LIBRARY["white_studio"]}, "lifestyle template"),
        ({"template": FLATLAY}, "canny ControlNet"),
        ({"canvas_size": (65, 64)}, "multiples of 2"),
        ({"variants": 0}, "variants"),
        ({"sku": ""}, "sku"),
        ({"base_seed": -1}, "base_seed"),
    ],
)
def test_bad_inputs_are_rejected_before_any_model_runs(generator, change, match):
    rgb, mask = _product()
    args = dict(rgb=rgb, mask=mask, template=MARBLE, sku="S", canvas_size=CANVAS, variants=None, base_seed=0) | change
    with pytest.raises(ModelInputError, match=match):
        generator.generate(args.pop("rgb"), args.pop("mask"), args.pop("template"), **args)


def test_post_processing_blurs_above_the_floor_and_matches_white_point():
    scene = np.zeros((40, 40, 3), np.float32)
    scene[:, ::2] = 200.0  # stripes: blur flattens them
    alpha = np.zeros((40, 40), np.float32)
    colour = np.zeros((40, 40, 3), np.float32)
    out, meta = post_process(scene, colour, alpha, PostSettings(backdrop_blur=0.05), 30, 0)
    assert out[:20].std() < 0.5 * scene[:20].std()  # well above the floor: blurred
    np.testing.assert_array_equal(out[30:], scene[30:])  # the surface in front stays sharp

    grey = np.full((40, 40, 3), 180.0, np.float32)
    alpha[10:30, 10:30] = 1.0
    colour[10:30, 10:30] = (250.0, 200.0, 150.0)  # a warm-lit product
    warm, meta = post_process(grey, colour, alpha, PostSettings(temperature_match=1.0), None, 0)
    r, g, b = warm[alpha == 0].mean(axis=0)
    assert r > g > b and meta["temperature_gains"][0] > 1.0

    grainy, _ = post_process(grey, colour, alpha, PostSettings(grain=3.0), None, 7)
    again, _ = post_process(grey, colour, alpha, PostSettings(grain=3.0), None, 7)
    assert 2.0 < (grainy - grey).std() < 4.0
    np.testing.assert_array_equal(grainy, again)  # seeded


def test_the_protected_zone_is_refilled_from_the_scene_not_left_grey():
    scene = np.zeros((32, 32, 3), np.float32)
    scene[:] = (200.0, 60.0, 40.0)
    keep = np.zeros((32, 32), np.uint8)
    keep[10:22, 10:22] = 1
    scene[keep == 1] = 128.0  # what the model leaves where it was told not to paint
    filled = fill_protected(scene, keep)
    np.testing.assert_allclose(filled[keep == 1], np.broadcast_to((200.0, 60.0, 40.0), (144, 3)), atol=2.0)
    np.testing.assert_array_equal(filled[keep == 0], scene[keep == 0])
