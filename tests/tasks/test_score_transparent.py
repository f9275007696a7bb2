"""tasks/score.py: a transparent cut-out stands on nothing, so the gate asks it for no
contact shadow, whatever fill its profile draws it at.

Production called every render without a "floating" shadow grounded, the transparent
export included: drawn at a fill under the built-in 0.95 (a profile override such as
``{"transparent": {"fill": 0.8}}``) the base no longer touches the canvas's bottom, the
contact check read the empty space under it, and every SKU failed "product floats". The
calibration corpus (bench/_corpus_defects.Scene.render) already built transparent
evidence ungrounded, so it never saw this."""

import numpy as np
import pytest

from imaging.compose import compose_studio
from imaging.encode import encode_image
from imaging.profiles import BUILTIN_PROFILES, profile_canvas
from imaging.types import ShadowSpec
from quality.gate import score_image
from quality.thresholds import QcThresholds
from tasks.records import RenderParams
from tasks.score import evidence, marketplace_rules


def _photo():
    """A textured bottle-like product standing on a grey photo backdrop."""
    h, w = 480, 360
    yy, xx = np.mgrid[:h, :w]
    mask = (((xx - 180) / 110) ** 2 + ((yy - 250) / 200) ** 2 <= 1).astype(np.float32)
    product = np.array([150.0, 70, 40]) + 30 * (np.sin(xx / 6.0) * np.cos(yy / 5.0))[..., None]
    rgb = mask[..., None] * product + (1 - mask[..., None]) * np.array([120.0, 125, 130])
    return rgb.round().astype(np.uint8), mask


def _info(profile: str, placement, shadow_style=None, light_direction_deg=None, background=None) -> dict:
    """What tasks/render.render_profile says of a studio render (the gate's inputs)."""
    return dict(
        profile=profile,
        template="white_studio",
        scale=placement.scale,
        offset_x=placement.offset_x,
        offset_y=placement.offset_y,
        params=RenderParams(),
        shadow_style=shadow_style,
        light_direction_deg=light_direction_deg,
        background=background,
        seed=None,
    )


@pytest.mark.parametrize("fill", [0.95, 0.8, 0.6])
def test_transparent_export_is_not_asked_for_a_contact_shadow(fill):
    rgb, mask = _photo()
    spec = BUILTIN_PROFILES["transparent"].model_copy(update={"fill": fill})
    canvas = profile_canvas(spec, None, ShadowSpec("soft"), product_size=(220, 400))
    composite = compose_studio(
        rgb,
        mask,
        canvas_size=canvas.size,
        background=canvas.background,
        shadow=canvas.shadow,
        fill=fill,
        transparent=True,
    )
    info = _info("transparent", composite.placement)  # no shadow, no backdrop drawn
    data = encode_image(composite.rgb, composite.product_alpha, fmt="png", icc=True)
    ev = evidence(rgb, mask, composite, info, spec, data, "none", True)
    assert not ev.grounded and not ev.backdrop
    report = score_image(ev, QcThresholds(), marketplace_rules(spec))
    statuses = {c.name: c.status for c in report.checks}
    assert "shadow.contact" not in statuses and statuses["shadow.direction"] == "pass"
    assert "product floats" not in " ".join(report.reasons), report.reasons
    # nothing behind the product: no shadow is measured (the gate's time goes to what ships)
    assert not any(k.startswith("shadow.") for k in report.metrics), report.metrics
    direction = next(c for c in report.checks if c.name == "shadow.direction")
    assert direction.detail == "not checked: a cut-out on transparency"


def test_an_opaque_render_of_the_same_photo_has_its_shadow_measured():
    """The control: the same photo on the white studio canvas is measured as before."""
    rgb, mask = _photo()
    spec = BUILTIN_PROFILES["amazon-main"]
    canvas = profile_canvas(spec, None, ShadowSpec("soft"), product_size=(220, 400))
    composite = compose_studio(
        rgb, mask, canvas_size=canvas.size, background=canvas.background, shadow=canvas.shadow, fill=spec.fill
    )
    info = _info("amazon-main", composite.placement, "soft", canvas.shadow.light_direction_deg, (255, 255, 255))
    data = encode_image(composite.rgb, None, fmt="jpeg", quality=90, icc=True)
    ev = evidence(rgb, mask, composite, info, spec, data, "none", True)
    assert ev.grounded and ev.backdrop
    report = score_image(ev, QcThresholds(), marketplace_rules(spec))
    assert report.metrics["shadow.darkening_mass"] > 0.0
    assert {c.name for c in report.checks} >= {"shadow.direction", "shadow.contact"}
