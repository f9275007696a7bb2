"""quality/shadow.py: shadows cast at known angles, contact shadows, light estimates."""

import numpy as np
import pytest

from quality.shadow import angle_difference, estimate_light_direction, shadow_geometry
from quality.thresholds import QcThresholds

_TH = QcThresholds()
KW = dict(
    work_side=256, noise_floor=0.02, min_mass=0.005, contact_depth_frac=0.03, min_lean_mass=_TH.shadow_min_lean_mass
)
WARN_DEG, FAIL_DEG = _TH.shadow_direction_error_deg.warn, _TH.shadow_direction_error_deg.fail


def _geo(s, light, known_background=True, **kw):
    bg = s.background_rgb if known_background else None
    return shadow_geometry(s.output_rgb, s.output_alpha, background_rgb=bg, light_direction_deg=light, **{**KW, **kw})


@pytest.mark.parametrize("light", [90.0, 135.0, 45.0, 180.0, 0.0, 160.0, 20.0])
@pytest.mark.parametrize("known_background", [True, False])
def test_shadow_cast_away_from_the_light_passes(scene, light, known_background):
    s = scene.make(light_deg=light, shadow_offset=25, contact=0.4, textured=False)
    g = _geo(s, light, known_background)
    assert g.visible
    # diagonal lights read ~11 deg steep: the cast's part under the base is left out with the contact
    assert angle_difference(g.implied_light_deg, light) <= 15.0
    assert g.direction_error_deg <= 15.0 < WARN_DEG
    assert g.lean > 0.5  # one-sided


@pytest.mark.parametrize("light", [135.0, 45.0, 90.0, 180.0])
def test_shadow_towards_the_light_fails(scene, light):
    s = scene.make(light_deg=light + 180.0, shadow_offset=25, contact=0.4, textured=False)
    g = _geo(s, light)
    assert g.direction_error_deg > FAIL_DEG


@pytest.mark.parametrize("shape", ["bottle", "box"])
@pytest.mark.parametrize("style,light", [("soft", 90.0), ("soft", 110.0), ("hard", 135.0)])
def test_studio_shadow_drawn_for_another_light_fails(scene, shape, style, light):
    # The compositor's own shadows (imaging/compose.py): a contact shadow under the base
    # whatever the light, plus a cast shadow shifted 2.5 % of the product's size away
    # from it (soft) or 5 % (hard). Drawn for a light turned 90 or 180 deg, the soft
    # one reads 0-25 deg off with a silhouette match (the contact shadow makes "down"
    # plausible); where the darkening leans, the contact zone left out, says 70 and up.
    from imaging.compose import compose_studio
    from imaging.types import Background, ShadowSpec

    if shape == "bottle":
        mask = scene.ellipse(400, 300, 150, 200, 80, 170)
    else:
        mask = np.pad(np.ones((200, 260), np.float32), ((100, 100), (20, 20)))
    rgb = scene.texture(*mask.shape, (150, 90, 60)).astype(np.uint8)
    for turn in (0.0, 90.0, -90.0, 180.0):
        c = compose_studio(
            rgb, mask, canvas_size=(800, 800), background=Background(), shadow=ShadowSpec(style, light + turn)
        )
        g = shadow_geometry(c.rgb, c.product_alpha, background_rgb=(255, 255, 255), light_direction_deg=light, **KW)
        if turn == 0.0:
            assert g.direction_error_deg is None or g.direction_error_deg < WARN_DEG, g
        else:
            assert g.direction_error_deg > FAIL_DEG, (turn, g)


def test_contact_only_shadow_is_not_failed_for_direction(scene):
    s = scene.make(light_deg=90.0, shadow_offset=0, contact=0.5, textured=False)
    for light in (90.0, 135.0, 45.0):
        g = _geo(s, light)
        assert g.visible and g.lean < 0.1  # even round the product: no direction information
        assert g.direction_error_deg is None and g.implied_light_deg is None


def test_grounded_product_has_contact_shadow(scene):
    grounded = _geo(scene.make(light_deg=135.0, shadow_offset=15, contact=0.5, textured=False), 135.0)
    assert grounded.contact_darkening > 0.3


def test_floating_product_has_no_contact_shadow(scene):
    # A floor shadow 30 px below the base (a 'floating' product): nothing right under it.
    s = scene.make(textured=False)
    ys, xs = np.nonzero(s.output_alpha >= 0.5)
    blob = scene.ellipse(*s.output_alpha.shape, xs.mean(), ys.max() + 40, 70, 8, supersample=1)
    s.output_rgb = (s.output_rgb * (1 - 0.4 * blob[..., None] * (1 - s.output_alpha[..., None]))).astype(np.uint8)
    g = _geo(s, 90.0)
    assert g.visible and g.direction_error_deg <= 5.0
    assert g.contact_darkening < 0.03
    none = _geo(scene.make(textured=False), 90.0)
    assert not none.visible and none.shadow_direction_deg is None and none.direction_error_deg is None
    assert none.contact_darkening < 0.01


def test_contact_not_measurable_at_canvas_bottom(scene):
    s = scene.make(textured=False, offset=(100, 170))  # the product runs off the bottom edge
    assert _geo(s, 90.0).contact_darkening is None


def test_light_estimate_from_backdrop_shading(scene):
    h = w = 256
    yy, xx = np.mgrid[:h, :w]
    alpha = scene.ellipse(h, w, 128, 140, 40, 60)
    for light in (135.0, 45.0, 90.0, 200.0):
        t = np.radians(light)
        # backdrop brighter towards the light: gradient along (cos t, -sin t) in y-down pixels
        v = 170 + 60 * ((xx - w / 2) * np.cos(t) - (yy - h / 2) * np.sin(t)) / w
        rgb = np.repeat(v[..., None], 3, axis=2).astype(np.uint8)
        e = estimate_light_direction(rgb, alpha)
        assert angle_difference(e.light_direction_deg, light) < 5.0
        assert e.strength > 0.2 and e.r2 > 0.9


def test_light_estimate_on_even_backdrop_has_no_strength(scene):
    alpha = scene.ellipse(200, 200, 100, 100, 40, 60)
    rgb = np.full((200, 200, 3), 230, np.uint8)
    e = estimate_light_direction(rgb, alpha)
    assert e.strength < 1e-6 and e.r2 == 0.0
    full = np.ones((50, 50), np.float32)
    assert estimate_light_direction(np.full((50, 50, 3), 200, np.uint8), full).n_pixels == 0


def test_angle_difference_wraps():
    assert angle_difference(10.0, 350.0) == 20.0
    assert angle_difference(90.0, 270.0) == 180.0
    assert angle_difference(-45.0, 315.0) == 0.0


def test_clear_errors(scene):
    s = scene.make(light_deg=90.0, shadow_offset=10)
    with pytest.raises(ValueError, match="empty"):
        shadow_geometry(
            s.output_rgb, np.zeros_like(s.output_alpha), background_rgb=None, light_direction_deg=90.0, **KW
        )
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        shadow_geometry(s.output_rgb, s.output_alpha[..., None], background_rgb=None, light_direction_deg=90.0, **KW)
    bad = s.output_alpha.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_light_direction(s.output_rgb, bad)
