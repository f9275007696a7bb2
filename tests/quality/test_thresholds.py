"""quality/thresholds.py: three-level limits, versioned config, profile overrides."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from quality.thresholds import MARKETPLACE_PROFILES, Limit, MarketplaceRules, QcThresholds


def test_limit_three_levels_both_directions():
    hi = Limit(warn=1.5, fail=3.0)
    assert [hi.status(v) for v in (1.0, 1.5, 2.0, 3.0, 3.1)] == ["pass", "pass", "warn", "warn", "fail"]
    lo = Limit(warn=0.9, fail=0.8, worse="lower")
    assert [lo.status(v) for v in (0.95, 0.9, 0.85, 0.8, 0.7)] == ["pass", "pass", "warn", "warn", "fail"]
    exact = Limit(warn=0.0, fail=0.0)
    assert exact.status(0.0) == "pass" and exact.status(1e-9) == "fail"
    assert hi.describe() == "warn > 1.5, fail > 3"


def test_limit_rejects_inverted_levels():
    with pytest.raises(ValidationError, match="beyond"):
        Limit(warn=3.0, fail=1.0)
    with pytest.raises(ValidationError, match="beyond"):
        Limit(warn=0.5, fail=0.8, worse="lower")


def test_every_threshold_states_its_reason():
    for name, field in QcThresholds.model_fields.items():
        assert field.description and len(field.description) > 20, name
        assert "PROVISIONAL" not in field.description, name


def test_version_and_json_round_trip():
    th = QcThresholds()
    # the README's calibration figures are for the shipped thresholds: bumping the version
    # without re-measuring (or re-measuring without bumping) fails here
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    measured = re.search(r"### The quality gate, measured \([^)]*thresholds ([0-9.]+)\)", readme)
    assert measured and measured.group(1) == th.version
    again = QcThresholds.model_validate_json(th.model_dump_json())
    assert again == th
    with pytest.raises(ValidationError):
        QcThresholds(not_a_field=1)


def test_profile_overrides():
    th = QcThresholds()
    amazon = th.for_profile("amazon-main")
    assert amazon.border_impure_share == Limit(warn=0.0, fail=0.0)
    assert amazon.background_impure_share == th.background_impure_share
    assert th.border_impure_share.fail == 0.01  # the default is untouched
    assert th.for_profile("shopify") is th
    custom = QcThresholds(profile_overrides={"shopify": {"delta_e_mean": Limit(warn=1.0, fail=2.0)}})
    assert custom.for_profile("shopify").delta_e_mean.fail == 2.0
    with pytest.raises(ValidationError, match="names no Limit field"):
        QcThresholds(profile_overrides={"x": {"version": Limit(warn=1, fail=2)}})
    with pytest.raises(ValidationError, match="edge_rim_px"):
        QcThresholds(edge_rim_px=6)


def test_marketplace_profiles():
    amazon = MARKETPLACE_PROFILES["amazon-main"]
    assert amazon.background_rgb == (255, 255, 255) and amazon.fill_target == 0.85
    assert amazon.min_longest_side == 1600 and amazon.require_srgb
    shopify = MARKETPLACE_PROFILES["shopify"]
    assert shopify.max_longest_side == 4472 and shopify.max_megapixels == 20.0
    with pytest.raises(ValidationError):
        MarketplaceRules(name="x", fill_target=1.5)
