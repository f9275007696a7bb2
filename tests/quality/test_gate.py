"""quality/gate.py: whole-image verdicts on constructed composites, and batches."""

import json

import numpy as np
import pytest

from quality.gate import QcEvidence, score_batch, score_image
from quality.thresholds import MARKETPLACE_PROFILES, QcThresholds

TH = QcThresholds()
GENERIC = MARKETPLACE_PROFILES["generic"]
CLEAN = dict(size=640, src_size=(560, 440), scale=1.0, light_deg=135.0, shadow_offset=15, contact=0.5)


def _evidence(s, **kw):
    base = dict(background_rgb=s.background_rgb, shadow_style="soft", light_direction_deg=135.0, grounded=True)
    return QcEvidence(s.source_rgb, s.source_mask, s.output_rgb, s.output_alpha, s.placement, **{**base, **kw})


def _statuses(report):
    return {c.name: c.status for c in report.checks}


def test_clean_composite_passes(scene):
    report = score_image(_evidence(scene.make(**CLEAN)), TH, GENERIC)
    assert report.status == "pass", [(c.name, c.value, c.detail) for c in report.checks if c.status != "pass"]
    assert report.failing == [] and report.warnings == []
    assert report.metrics["colour.delta_e_mean"] < 0.5
    assert report.metrics["shadow.direction"] <= 15.0  # a diagonal light reads a little steep (quality/shadow.py)
    assert report.thresholds_version == TH.version and report.profile == "generic"


def test_identical_images_score_zero(scene):
    s = scene.make(scale=1.0, size=300)
    ev = QcEvidence(s.source_rgb, s.source_mask, s.source_rgb, s.source_mask, (1.0, 0.0, 0.0))
    report = score_image(ev, TH, GENERIC)
    for name in ("colour.delta_e_mean", "colour.delta_e_p95", "colour.delta_e_share_above", "colour.delta_e_of_means"):
        assert report.metrics[name] == 0.0
    assert report.metrics["placement.iou"] == 1.0 and report.metrics["sharpness.vs_source"] == 1.0


@pytest.mark.parametrize(
    "defect,extra,failing",
    [
        ({"halo_px": 3, "bg": (200, 200, 200)}, {}, "edge.halo"),
        ({"fringe_px": 2}, {}, "edge.fringe"),
        ({"colour_shift": (0, 25, 25)}, {}, "colour.delta_e_of_means"),
        ({"light_deg": 315.0}, {}, "shadow.direction"),  # shadow drawn towards the light
        ({"light_deg": None}, {}, "shadow.contact"),  # grounded, but nothing under the base
        ({"jagged": 8}, {}, "edge.roughness"),
    ],
)
def test_each_defect_fails_its_check(scene, defect, extra, failing):
    s = scene.make(**{**CLEAN, **defect})
    report = score_image(_evidence(s, **extra), TH, GENERIC)
    assert failing in report.failing, [(c.name, c.status, c.value) for c in report.checks]
    assert report.status == "fail"


def test_missing_shadow_warns_and_floating_style_is_not_grounded(scene):
    s = scene.make(**{**CLEAN, "light_deg": None})
    report = score_image(_evidence(s, grounded=False), TH, GENERIC)
    st = _statuses(report)
    assert st["shadow.direction"] == "warn" and "shadow.contact" not in st
    none = score_image(_evidence(s, shadow_style="none", grounded=False), TH, GENERIC)
    assert _statuses(none)["shadow.direction"] == "pass"
    # Style 'none' is a template's choice (e.g. a plain cut-out): contact is not demanded.
    chosen = score_image(_evidence(s, shadow_style="none", grounded=True), TH, GENERIC)
    assert _statuses(chosen)["shadow.contact"] == "pass" and chosen.status == "pass"


def test_amazon_rules(scene):
    s = scene.make(**CLEAN)
    amazon = MARKETPLACE_PROFILES["amazon-main"]
    out = s.output_rgb.copy()
    out[:, :3] = 245  # a grey left edge
    s.output_rgb = out
    report = score_image(_evidence(s, encoded_bytes=11 * 1024 * 1024, icc_is_srgb=False), TH, amazon)
    st = _statuses(report)
    assert st["market.border_purity"] == "fail"  # amazon override: any off-white border pixel
    assert st["market.min_size"] == "fail"  # 640 < 1600
    assert st["market.srgb"] == "fail" and st["market.file_size"] == "fail"
    assert st["market.max_size"] == "pass"
    assert st["market.fill"] == "fail"  # ~0.70 vs 0.85
    unknown = score_image(_evidence(scene.make(**CLEAN)), TH, amazon)
    srgb = next(c for c in unknown.checks if c.name == "market.srgb")
    assert srgb.status == "pass" and srgb.detail.startswith("not checked")


def test_generated_scene_without_known_light(scene):
    s = scene.make(**CLEAN)
    report = score_image(_evidence(s, background_rgb=None, light_direction_deg=None, shadow_style=None), TH, GENERIC)
    st = _statuses(report)
    assert st["shadow.contact"] == "pass"
    assert st["shadow.direction"] == "pass"  # an even backdrop gives no light estimate: not checked
    assert "not checked" in next(c.detail for c in report.checks if c.name == "shadow.direction")


def test_report_is_json_safe(scene):
    report = score_image(_evidence(scene.make(**CLEAN)), TH, GENERIC)
    data = json.loads(report.model_dump_json())
    assert data["status"] in ("pass", "warn", "fail")
    assert all(isinstance(v, float) and np.isfinite(v) for v in report.metrics.values())
    assert {c["status"] for c in data["checks"]} <= {"pass", "warn", "fail"}
    assert set(report.features) == {
        "brightness_l",
        "white_balance_a",
        "white_balance_b",
        "background_l",
        "scale",
        "centroid_x",
        "centroid_y",
    }


def test_score_batch_accepts_report_features():
    rng = np.random.default_rng(0)
    base = dict(
        brightness_l=50.0,
        white_balance_a=0.0,
        white_balance_b=0.0,
        background_l=100.0,
        scale=0.85,
        centroid_x=0.5,
        centroid_y=0.5,
    )
    feats = [{k: v + rng.normal(0, 0.002) for k, v in base.items()} for _ in range(8)]
    feats[4]["centroid_y"] = 0.6
    result = score_batch(feats, TH)
    assert result.flagged[4] == ["position"] and sum(map(bool, result.flagged)) == 1
    small = score_batch(feats[:3], TH)
    assert small.flagged == [[], [], []] and small.note


def test_evidence_errors(scene):
    s = scene.make(scale=1.0, size=300)
    nan = s.output_alpha.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="output_alpha contains NaN"):
        QcEvidence(s.source_rgb, s.source_mask, s.output_rgb, nan, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="source_mask is empty"):
        QcEvidence(s.source_rgb, np.zeros_like(s.source_mask), s.output_rgb, s.output_alpha, (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="does not match"):
        QcEvidence(s.source_rgb, s.source_mask, s.output_rgb, s.output_alpha[:10], (1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="shadow_style"):
        QcEvidence(s.source_rgb, s.source_mask, s.output_rgb, s.output_alpha, (1.0, 0.0, 0.0), shadow_style="dramatic")
    with pytest.raises(ValueError, match="2x3"):
        QcEvidence(s.source_rgb, s.source_mask, s.output_rgb, s.output_alpha, np.eye(3))
    with pytest.raises(ValueError, match="light_direction_deg"):
        QcEvidence(
            s.source_rgb, s.source_mask, s.output_rgb, s.output_alpha, (1.0, 0.0, 0.0), light_direction_deg=np.inf
        )


@pytest.mark.parametrize("drawn_light,expected", [(135.0, "pass"), (315.0, "warn")])
def test_generated_scene_checks_shadow_against_shading_estimate(scene, drawn_light, expected):
    # Backdrop lit from the upper left (135 deg); the shadow is drawn for drawn_light.
    s = scene.make(**{**CLEAN, "light_deg": drawn_light})
    h, w = s.output_alpha.shape
    yy, xx = np.mgrid[:h, :w]
    shade = 1.0 - 0.35 * (xx + yy) / (h + w)
    a = s.output_alpha[..., None]
    s.output_rgb = (s.output_rgb * (a + (1 - a) * shade[..., None])).round().astype(np.uint8)
    report = score_image(_evidence(s, background_rgb=None, light_direction_deg=None, shadow_style=None), TH, GENERIC)
    check = next(c for c in report.checks if c.name == "shadow.direction")
    assert check.status == expected, (check.value, check.detail)
    assert "estimate" in check.detail  # an estimate can warn, never fail
