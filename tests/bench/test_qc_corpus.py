"""bench/qc_corpus.py: the labelled QC calibration corpus (determinism, clean renders,
every defect present, severities as labelled). One small product's full case list, one
holed product's filled_hole cases: about 20 s on 2 cores."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench import qc_corpus as qc
from quality.delta_e import delta_e_2000, srgb_to_lab

MAIN = "amazon-main"


@pytest.fixture(scope="module")
def prods():
    return qc.products(12)


def _cheapest(products, holed):
    return min((p for p in products if p.attrs["has_hole"] == holed), key=lambda p: p.true_mask.size)


@pytest.fixture(scope="module")
def small(prods):
    return _cheapest(prods, False)


@pytest.fixture(scope="module")
def small_cases(small):
    return qc.cases(small)


@pytest.fixture(scope="module")
def hole_cases(prods):
    return qc.cases(_cheapest(prods, True), defects=["filled_hole"])


def _by(cases, defect):
    return [c for c in cases if c.defect == defect]


def test_products_vary_and_are_well_formed(prods):
    assert {p.attrs["shape"] for p in prods} >= {
        "bottle",
        "box",
        "mug",
        "ring",
        "frame",
        "lamp",
        "stand",
        "shoe",
        "jar",
        "headphones",
    }
    assert {p.attrs["colour"] for p in prods} == {"saturated", "neutral", "white", "black"}
    assert {p.attrs["size"] for p in prods} == {"small", "medium", "large"}
    assert {p.attrs["material"] for p in prods} == {"matte", "glossy", "smooth"}
    assert any(p.attrs["label"] for p in prods) and any(p.attrs["has_thin_part"] for p in prods)
    for p in prods:
        h, w = p.true_mask.shape
        assert p.source_rgb.shape == (h, w, 3) and p.source_rgb.dtype == np.uint8
        assert p.true_mask.dtype == np.float32 and 0.0 <= p.true_mask.min() and p.true_mask.max() <= 1.0
        partial = (p.true_mask > 0) & (p.true_mask < 1)
        assert partial.sum() > 0.5 * np.sqrt(p.true_mask.sum())  # anti-aliased outline
        assert h * w <= 3_400_000 and max(h, w) <= 2000
        if p.attrs["colour"] == "white":
            assert np.mean(p.old_background_rgb) > 150
        if p.attrs["colour"] == "black":
            assert np.mean(p.old_background_rgb) < 110


def test_deterministic(small, small_cases):
    again = qc.products(1, seed=0)[0] if small.attrs["index"] == 0 else qc._product(0, small.attrs["index"])
    assert np.array_equal(again.source_rgb, small.source_rgb) and np.array_equal(again.true_mask, small.true_mask)
    other = qc.products(1, seed=1)[0]
    assert other.source_rgb.shape != small.source_rgb.shape or not np.array_equal(other.source_rgb, small.source_rgb)
    # the random defects, made on their own, equal the ones of the full list
    redo = qc.cases(again, defects=["lost_part", "fragment", "colour_patch"])
    first = [c for c in small_cases if c.defect in ("clean", "lost_part", "fragment", "colour_patch")]
    assert len(redo) == len(first)
    for a, b in zip(redo, first, strict=True):
        assert (a.defect, a.severity, a.visible) == (b.defect, b.severity, b.visible)
        assert np.array_equal(a.source_mask, b.source_mask)
        assert np.array_equal(a.renders[MAIN].rgb, b.renders[MAIN].rgb)
        assert np.array_equal(a.renders[MAIN].alpha, b.renders[MAIN].alpha)


@pytest.mark.parametrize("which", ["small", "hole"])
def test_clean_render_matches_true_mask(which, small_cases, hole_cases):
    clean = (small_cases if which == "small" else hole_cases)[0]
    assert clean.defect == "clean" and clean.severity == 0.0 and not clean.visible
    r = clean.renders[MAIN]
    h, w = r.alpha.shape
    assert (w, h) == (2000, 2000) and r.rgb.shape == (h, w, 3)
    warped = cv2.warpAffine(clean.product.true_mask, r.placement.matrix(), (w, h), flags=cv2.INTER_LINEAR)
    a, b = warped >= 0.5, r.alpha >= 0.5
    assert (a & b).sum() / (a | b).sum() > 0.97
    assert r.background_rgb == (255, 255, 255) and r.shadow_style in ("soft", "hard") and r.grounded
    assert r.encoded[:2] == b"\xff\xd8" and clean.enlargement == pytest.approx(r.placement.scale)
    assert clean.source_mask is clean.product.true_mask


def test_every_defect_is_produced_both_sides_of_visible(small_cases, hole_cases):
    every = small_cases + hole_cases
    assert {c.defect for c in every} == set(qc.DEFECTS) | {"clean"}
    for name in set(qc.DEFECTS) - {"floating", "touches_edge"}:
        flags = {c.visible for c in every if c.defect == name}
        assert flags == {True, False}, name


def test_every_case_differs_from_clean(small_cases, hole_cases):
    for cases in (small_cases, hole_cases):
        clean = cases[0].renders[MAIN]
        for c in cases[1:]:
            r = c.renders[MAIN]
            same = (
                r.rgb.shape == clean.rgb.shape
                and np.array_equal(r.rgb, clean.rgb)
                and np.array_equal(r.alpha, clean.alpha)
                and c.source_mask is cases[0].source_mask
                and r.encoded == clean.encoded
            )  # a jpeg case differs in its shipped bytes only
            assert not same, (c.defect, c.severity)


def test_mask_stage_severities(small_cases, hole_cases, small):
    area = float(small.true_mask.sum())
    for c in _by(hole_cases, "filled_hole"):
        true = c.product.true_mask
        assert c.severity == pytest.approx((c.source_mask.sum() - true.sum()) / true.sum(), rel=1e-5)
        assert c.visible == (c.severity >= 0.01)
    lost = _by(small_cases, "lost_part")
    for c in lost:
        assert c.severity == pytest.approx((area - c.source_mask.sum()) / area, rel=1e-5)
        assert (c.source_mask <= small.true_mask + 1e-6).all()
        if c.detail["kind"] == "chunk":
            assert c.severity == pytest.approx(c.detail["nominal"], rel=0.1, abs=2e-4)
    for c in _by(small_cases, "fragment"):
        added = np.clip(c.source_mask - small.true_mask, 0, None).sum()
        r = c.renders[MAIN]
        assert c.severity == pytest.approx(added * r.placement.scale**2 / r.alpha.size, rel=1e-5)
        assert c.severity == pytest.approx(c.detail["nominal"], rel=0.35)


def test_colour_severities(small_cases):
    clean = small_cases[0].renders[MAIN]
    interior = clean.alpha >= 0.98
    mean0 = srgb_to_lab(clean.rgb[interior]).mean(axis=0)
    for c in _by(small_cases, "colour_shift"):
        measured = float(delta_e_2000(mean0, srgb_to_lab(c.renders[MAIN].rgb[interior]).mean(axis=0)))
        assert measured == pytest.approx(c.severity, rel=1e-6)
        assert measured == pytest.approx(c.detail["nominal"], rel=0.15)
        assert c.visible == (c.severity >= 2.0)
    product = clean.alpha >= 0.5
    for c in _by(small_cases, "colour_patch"):
        changed = (c.renders[MAIN].rgb != clean.rgb).any(axis=2)[product].mean()
        assert changed == pytest.approx(c.severity, rel=0.5)
        assert c.severity == pytest.approx(c.detail["nominal"], rel=0.1)
        assert c.detail["delta_e"] == pytest.approx(c.detail["delta_e_nominal"], rel=0.15)
        assert c.visible == (c.detail["delta_e"] >= 4.95 and c.detail["nominal"] >= 0.01)  # the ΔE reached
    for c in _by(small_cases, "clipped"):
        rgb = c.renders[MAIN].rgb
        before, after = (clean.rgb[product] >= 250).all(axis=1), (rgb[product] >= 250).all(axis=1)
        assert (after & ~before).mean() == pytest.approx(c.severity, rel=1e-6)
        assert c.severity == pytest.approx(c.detail["nominal"], rel=0.25)


def test_render_stage_severities(small_cases):
    clean_case = small_cases[0]
    clean = clean_case.renders[MAIN]
    lab0 = srgb_to_lab(clean.rgb)
    for c in _by(small_cases, "halo"):
        drop = lab0[..., 0] - srgb_to_lab(c.renders[MAIN].rgb)[..., 0]  # darker rim on white
        assert drop.max() == pytest.approx(100 * c.severity, rel=0.2)
        assert c.detail["width_px"] in (1, 2, 3) and np.array_equal(c.renders[MAIN].alpha, clean.alpha)
    for c in _by(small_cases, "fringe"):
        assert c.detail["width_px"] in (1, 2, 3) and not np.array_equal(c.renders[MAIN].rgb, clean.rgb)
    for c in _by(small_cases, "blur"):
        assert c.detail["sigma_canvas_px"] == pytest.approx(c.severity * max(1.0, clean_case.enlargement))
        assert c.renders[MAIN].alpha[clean.alpha == 0].max() > 0  # the coverage spread too
    for c in _by(small_cases, "jpeg"):
        r = c.renders[MAIN]
        decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.encoded, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        # the canvas stays the lossless render (what production's gate sees); the shipped
        # bytes are the low-quality encode of it
        assert np.array_equal(r.rgb, clean.rgb) and not np.array_equal(decoded, r.rgb)
        assert c.visible == (c.severity <= 25)
    for c in _by(small_cases, "shadow_direction") + _by(small_cases, "floating"):
        r = c.renders[MAIN]
        assert (r.light_direction_deg, r.shadow_style, r.grounded) == (
            clean.light_direction_deg,
            clean.shadow_style,
            True,
        )
        assert np.array_equal(r.alpha, clean.alpha)
    for c in _by(small_cases, "touches_edge"):
        assert c.severity > 0 and c.visible
        if c.detail["nominal"] != "fill":
            assert c.severity == pytest.approx(c.detail["nominal"], rel=0.15)


def test_source_stage_severities(small_cases, small):
    for c in _by(small_cases, "source_small"):
        assert c.severity == pytest.approx(c.enlargement) and c.product.name == small.name
        assert c.severity == pytest.approx(c.detail["nominal"], rel=0.05)
    for c in _by(small_cases, "source_cut_off"):
        share = 1.0 - c.product.true_mask.sum() / small.true_mask.sum()
        assert c.severity == pytest.approx(share, rel=1e-5) and c.source_mask is c.product.true_mask
        assert c.product.true_mask.shape != small.true_mask.shape
