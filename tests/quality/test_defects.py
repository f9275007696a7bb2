"""quality/defects.py: every check has a defect class; retry plans, descriptions, ranking."""

import pytest

from quality.defects import DEFECTS, attempt_badness, defect_of, describe_failures, plan_retry
from quality.gate import QcEvidence, score_image
from quality.thresholds import MARKETPLACE_PROFILES, MarketplaceRules, QcThresholds

TH = QcThresholds()
CLEAN = dict(size=640, src_size=(560, 440), scale=1.0, light_deg=135.0, shadow_offset=15, contact=0.5)
EVERY_RULE = MarketplaceRules(
    name="every-rule",
    background_rgb=(255, 255, 255),
    fill_target=0.85,
    min_longest_side=100,
    max_longest_side=5000,
    max_megapixels=20.0,
    require_srgb=True,
    max_file_bytes=10**7,
    fill_range=(0.5, 1.0),
    min_shortest_side=100,
    aspect_ratios=((1, 1),),
    edge_clear=True,
    residue_free=True,
    frameless=True,
)


def _emitted_names(scene):
    s = scene.make(**CLEAN)
    ev = QcEvidence(
        s.source_rgb,
        s.source_mask,
        s.output_rgb,
        s.output_alpha,
        s.placement,
        background_rgb=s.background_rgb,
        shadow_style="soft",
        light_direction_deg=135.0,
        grounded=True,
        encoded_bytes=400_000,
        icc_is_srgb=True,
        shipped_rgb=s.output_rgb.copy(),
        jpeg_quality=90.0,
    )
    names = set()
    for rules in (EVERY_RULE, MARKETPLACE_PROFILES["amazon-main"], MARKETPLACE_PROFILES["shopify"]):
        names |= {c.name for c in score_image(ev, TH, rules).checks}
    return names


def test_every_gate_check_has_a_defect_class(scene):
    names = _emitted_names(scene)
    assert len(names) >= 25
    assert names <= set(DEFECTS), sorted(names - set(DEFECTS))
    # and no class is stale: all but the task-level segmentation check come from the gate
    assert set(DEFECTS) - names == {"segment.confidence"}


def test_defect_of_ignores_profile_prefix_and_rejects_unknown():
    assert defect_of("amazon-main:edge.halo") is DEFECTS["edge.halo"]
    assert defect_of("edge.halo").name == "halo around the product"
    with pytest.raises(KeyError, match="no defect class"):
        defect_of("edge.sparkle")


def test_unfixable_failure_plans_no_retry():
    for check in (
        "source.resolution",
        "source.cut_off",
        "market.min_size",
        "colour.delta_e_mean",
        "segment.confidence",
    ):
        assert plan_retry([f"amazon-main:{check}"]) is None, check
        assert plan_retry(["shopify:edge.halo", f"amazon-main:{check}"]) is None, check


def test_retry_plans_merge():
    assert plan_retry(["cut.lost_part"]) == {"cut_bias": -1}
    assert plan_retry(["a:edge.halo", "b:edge.fringe", "a:cut.background_inside"]) == {
        "decontaminate": True,
        "refine_strength": "+1",
        "fill_holes": False,
    }
    assert plan_retry(["a:cut.fragments", "b:cut.background_attached"]) == {"cut_bias": 1}
    assert plan_retry([]) == {}


def test_conflicting_cut_bias_needs_a_person():
    assert plan_retry(["a:cut.lost_part", "a:cut.fragments"]) is None
    assert plan_retry(["a:cut.background_attached", "b:cut.lost_part"]) is None


def test_describe_names_each_class_once_with_its_profiles():
    text = describe_failures(
        [
            "amazon-main:edge.halo",
            "shopify:edge.halo",
            "amazon-main:edge.halo",
            "amazon-main:colour.delta_e_mean",
            "amazon-main:colour.delta_e_of_means",
            "shopify:cut.lost_part",
        ]
    )
    assert text == (
        "halo around the product (amazon-main, shopify); product colour changed (amazon-main); "
        "part of the product missing (shopify)"
    )
    assert "delta_e" not in text and "edge." not in text  # classes, not metric names
    assert describe_failures(["edge.halo"]) == "halo around the product"


def test_describe_uses_specific_details():
    details = {
        "amazon-main:source.resolution": "source too small for amazon-main: needs 5.7x enlargement",
        "shopify:source.resolution": "source too small for shopify: needs 5.7x enlargement",
    }
    text = describe_failures(
        ["amazon-main:source.resolution", "shopify:source.resolution", "amazon-main:edge.halo"], details
    )
    assert text == (
        "source too small for amazon-main: needs 5.7x enlargement; "
        "source too small for shopify: needs 5.7x enlargement; halo around the product (amazon-main)"
    )
    assert "(amazon-main)" not in text.split(";")[0]  # a detail names its own profile


def _check(name, status, value, warn, fail, worse="higher"):
    return {"name": name, "status": status, "value": value, "threshold": {"warn": warn, "fail": fail, "worse": worse}}


def test_attempt_badness_orders_milder_failures_first():
    clean = [_check("edge.halo", "pass", 0.01, 0.05, 0.25)]
    warned = [_check("edge.halo", "warn", 0.1, 0.05, 0.25)]
    mild = [_check("edge.halo", "fail", 0.3, 0.05, 0.25)]
    severe = [_check("edge.halo", "fail", 0.9, 0.05, 0.25)]
    two = [_check("edge.halo", "fail", 0.26, 0.05, 0.25), _check("cut.lost_part", "fail", 0.0041, 0.002, 0.004)]
    ranked = [attempt_badness(c) for c in (clean, warned, mild, severe, two)]
    assert ranked == sorted(ranked) and len(set(ranked)) == 5
    assert attempt_badness(clean) == (0, 0, 0.0)
    assert attempt_badness(mild)[2] == pytest.approx(0.2)


def test_attempt_badness_lower_is_worse_and_unvalued_failures():
    near = [_check("placement.iou", "fail", 0.85, 0.97, 0.9, worse="lower")]
    far = [_check("placement.iou", "fail", 0.3, 0.97, 0.9, worse="lower")]
    assert attempt_badness(near) < attempt_badness(far)
    assert attempt_badness(far)[2] == pytest.approx(2.0)
    rule = [{"name": "segment.confidence", "status": "fail", "value": 0.5}]  # no threshold: counts as 1
    assert attempt_badness(rule) == (1, 0, 1.0)
