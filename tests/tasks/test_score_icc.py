"""tasks/score.py: the sRGB rule reads the ICC profile embedded in the shipped bytes; the segmenter's
certainty is a check of its own."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageCms

from imaging.encode import encode_image, read_encoded
from imaging.profiles import BUILTIN_PROFILES
from imaging.types import Composite, Placement
from quality.gate import score_image
from quality.marketplace import icc_is_srgb as srgb_embedded
from quality.thresholds import QcThresholds
from tasks.records import RenderParams
from tasks.score import _qc_info, evidence, marketplace_rules

RGB = (np.random.default_rng(0).integers(0, 255, (48, 64, 3))).astype(np.uint8)


def _with_profile(rgb, kind, fmt="JPEG"):
    """``rgb`` saved with a built-in non-sRGB LittleCMS profile ("XYZ" or "LAB") embedded."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile(kind)).tobytes()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, quality=95, icc_profile=icc)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_exported_srgb_profile_is_recognised(fmt):
    _, icc = read_encoded(encode_image(RGB, fmt=fmt, icc=True))
    assert icc is not None and srgb_embedded(icc) is True
    _, none = read_encoded(encode_image(RGB, fmt=fmt, icc=False))
    assert none is None and srgb_embedded(none) is False


@pytest.mark.parametrize("kind", ["XYZ", "LAB"])
def test_non_srgb_profile_is_not_srgb(kind):
    pixels, icc = read_encoded(_with_profile(RGB, kind))
    assert icc is not None and pixels.shape == RGB.shape
    assert srgb_embedded(icc) is False


def test_malformed_profile_is_not_srgb():
    assert srgb_embedded(b"not an icc profile at all" * 10) is False
    assert srgb_embedded(b"") is False


def _scene():
    """A textured product (ellipse) on a green photo backdrop, drawn 1:1 centred on white."""
    h, w, size, off = 200, 160, 320, (80.0, 60.0)
    yy, xx = np.mgrid[:h, :w]
    mask = (((xx - 80) / 58) ** 2 + ((yy - 100) / 80) ** 2 <= 1).astype(np.float32)
    product = np.array([180.0, 60, 50]) + 25 * (np.sin(xx / 5.0) * np.cos(yy / 4.0))[..., None]
    src = (mask[..., None] * product + (1 - mask[..., None]) * np.array([40.0, 170, 60])).astype(np.uint8)
    alpha = np.zeros((size, size), np.float32)
    alpha[60:260, 80:240] = mask
    canvas = np.full((size, size, 3), 255, np.uint8)
    canvas[60:260, 80:240] = np.where(mask[..., None] > 0, src, 255)
    placement = np.array([[1.0, 0.0, off[0]], [0.0, 1.0, off[1]]])
    return SimpleNamespace(source_rgb=src, source_mask=mask, output_rgb=canvas, output_alpha=alpha, placement=placement)


def _render(s):
    """What render_profile says about the scene's canvas (tasks/render.py)."""
    composite = Composite(
        rgb=s.output_rgb,
        product_alpha=s.output_alpha,
        placement=Placement(1.0, float(s.placement[0, 2]), float(s.placement[1, 2])),
    )
    info = dict(
        profile="amazon-main",
        template="studio-white",
        scale=1.0,
        offset_x=float(s.placement[0, 2]),
        offset_y=float(s.placement[1, 2]),
        params=RenderParams(),
        shadow_style="soft",
        light_direction_deg=135.0,
        background=(255, 255, 255),
        seed=None,
    )
    return composite, info


def test_srgb_rule_reads_the_shipped_bytes():
    s = _scene()
    composite, info = _render(s)
    spec = BUILTIN_PROFILES["amazon-main"]
    assert spec.icc and marketplace_rules(spec).require_srgb  # the profile asks for sRGB either way
    th, rules = QcThresholds(), marketplace_rules(spec)

    def srgb_check(data):
        ev = evidence(s.source_rgb, s.source_mask, composite, info, spec, data, "none", True)
        assert ev.encoded_bytes == len(data) and ev.shipped_grey is not None
        report = score_image(ev, th, rules)
        return next(c for c in report.checks if c.name == "market.srgb"), report

    good, _ = srgb_check(encode_image(s.output_rgb, fmt="jpeg", quality=95, icc=True))
    assert good.status == "pass"
    for data in (_with_profile(s.output_rgb, "XYZ"), encode_image(s.output_rgb, fmt="jpeg", quality=95, icc=False)):
        bad, report = srgb_check(data)
        assert bad.status == "fail" and "market.srgb" in report.failing
        assert bad.reason == "colour profile is not sRGB"


@pytest.mark.parametrize("confidence,fails", [(0.79, True), (0.81, False)])
def test_an_uncertain_cut_fails_with_its_reason_and_limit(confidence, fails):
    """tasks/score.py adds the segmenter's own certainty (quality/checks.confidence_check) to
    a render's checks: under ``segment_confidence_min`` (0.8) the SKU fails as "uncertain cut",
    with the figure and the limit it missed; above it nothing is added."""
    s = _scene()
    composite, info = _render(s)
    spec = BUILTIN_PROFILES["amazon-main"]
    th = QcThresholds()
    data = encode_image(s.output_rgb, fmt="jpeg", quality=95, icc=True)
    ev = evidence(s.source_rgb, s.source_mask, composite, info, spec, data, "none", True)
    report = score_image(ev, th, marketplace_rules(spec))
    assert "segment.confidence" not in report.failing  # the gate's own checks leave it to tasks
    qc = _qc_info(report, confidence, th, "out.jpg", 0.0)
    assert qc.metrics["segment.confidence"] == confidence
    assert qc.failing == report.failing + ["segment.confidence"] * fails
    assert qc.reasons == report.reasons + ["uncertain cut"] * fails
    added = [c for c in qc.checks if c["name"] == "segment.confidence"]
    assert len(added) == int(fails)
    if fails:
        assert added[0]["threshold"]["fail"] == th.segment_confidence_min and added[0]["value"] == confidence
