"""tasks/score.marketplace_rules: each marketplace profile's rules, as the gate sees them,
pass a clean constructed render at the profile's own size and fail its defects."""

from types import SimpleNamespace

import numpy as np
import pytest

from imaging.profiles import BUILTIN_PROFILES
from quality.checks import marketplace_checks, resolution_check
from quality.market_rules import market_rule_checks, strict_enlargement
from quality.thresholds import QcThresholds
from tasks.score import marketplace_rules

TH = QcThresholds()


def render(size, *, fill=0.85, bg=(255, 255, 255), scale=0.9, file_bytes=900_000):
    """A square product centred on a plain backdrop at ``size`` (w, h)."""
    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = bg
    alpha = np.zeros((h, w), np.float32)
    bw = bh = round(fill * min(w, h))  # a square product, as imaging.compose sizes it
    x0, y0 = (w - bw) // 2, (h - bh) // 2
    rgb[y0 : y0 + bh, x0 : x0 + bw] = (150, 40, 40)
    alpha[y0 : y0 + bh, x0 : x0 + bw] = 1.0
    return SimpleNamespace(
        output_rgb=rgb,
        output_alpha=alpha,
        placement=np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]),
        upscaled=False,
        icc_is_srgb=True,
        encoded_bytes=file_bytes,
    )


def gate(profile, ev):
    """The gate's marketplace checks for ``profile`` (as quality/gate.py runs them)."""
    rules = marketplace_rules(BUILTIN_PROFILES[profile])
    th = TH.for_profile(profile)
    checks = [resolution_check(ev, strict_enlargement(th, rules), profile)]
    checks += marketplace_checks(ev, th, rules) + market_rule_checks(ev, th, rules)
    return {c.name: c for c in checks}


PROFILES = ["amazon-main", "google-merchant", "ebay", "etsy", "zalando"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_clean_render_passes_every_rule(profile):
    p = BUILTIN_PROFILES[profile]
    checks = gate(profile, render(p.canvas, fill=p.fill))
    assert all(c.status == "pass" for c in checks.values()), {
        n: c.detail for n, c in checks.items() if c.status != "pass"
    }


EXPECTED_RULES = {
    "amazon-main": {"market.edge_clear", "market.residue", "market.border_purity", "market.min_size"},
    "google-merchant": {"market.fill_range", "market.border", "market.megapixels", "market.file_size"},
    "ebay": {"market.min_size", "market.border"},
    "etsy": {"market.min_short_side", "market.aspect"},
    "zalando": {"market.min_short_side", "market.aspect", "market.file_size", "market.background_purity"},
}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_profile_rules_are_checked(profile):
    p = BUILTIN_PROFILES[profile]
    assert EXPECTED_RULES[profile] <= set(gate(profile, render(p.canvas, fill=p.fill)))


def _fails(profile, ev, name, reason=None):
    check = gate(profile, ev)[name]
    assert check.status == "fail", (profile, name, check)
    if reason:
        assert check.reason == reason


def test_amazon_main_refuses_a_shadow_on_the_edge_and_residue():
    ev = render((2000, 2000))
    ev.output_rgb[-2:, 900:1100] = 235
    _fails("amazon-main", ev, "market.edge_clear", "shadow or residue reaches the frame edge")
    ev = render((2000, 2000))
    ev.output_rgb[5:70, 5:70] = 240  # a grey smudge in a corner
    _fails("amazon-main", ev, "market.residue", "grey residue on the backdrop")
    _fails("amazon-main", render((1000, 1000)), "market.min_size")


def test_google_merchant_refuses_upscaling_a_frame_and_the_wrong_fill():
    _fails(
        "google-merchant",
        render((1500, 1500), scale=1.5),
        "source.resolution",
        "source too small for google-merchant: needs 1.5x enlargement",
    )
    ev = render((1500, 1500), fill=0.7)
    for band in (np.s_[:12], np.s_[-12:], np.s_[:, :12], np.s_[:, -12:]):
        ev.output_rgb[band] = (20, 20, 20)
    _fails("google-merchant", ev, "market.border", "border drawn round the image")
    _fails("google-merchant", render((1500, 1500), fill=0.6), "market.fill_range")
    _fails("google-merchant", render((1500, 1500), file_bytes=17_000_000), "market.file_size")


def test_ebay_refuses_a_small_image_and_a_frame():
    _fails("ebay", render((480, 480)), "market.min_size")
    ev = render((1600, 1600), bg=(230, 230, 235), fill=0.7)
    for band in (np.s_[:8], np.s_[-8:], np.s_[:, :8], np.s_[:, -8:]):
        ev.output_rgb[band] = (255, 255, 255)
    _fails("ebay", ev, "market.border")


def test_etsy_refuses_a_small_or_wide_image():
    _fails("etsy", render((1800, 1800)), "market.min_short_side")
    _fails("etsy", render((3556, 2000)), "market.aspect")  # 16:9


def test_zalando_refuses_the_wrong_shape_a_big_file_and_a_grey_backdrop():
    _fails("zalando", render((2600, 2600)), "market.aspect")
    _fails("zalando", render((1801, 2600), file_bytes=21_000_000), "market.file_size")
    _fails("zalando", render((1801, 2600), bg=(238, 238, 238)), "market.background_purity")
