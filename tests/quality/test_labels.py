"""quality/labels.py: every check the gate can emit has a plain-language label, and the
figures read as a person would write them."""

import ast
import re
from pathlib import Path

import pytest

from quality.consistency import DIMENSIONS
from quality.defects import DEFECTS
from quality.gate import QcEvidence, score_sku
from quality.labels import CHECK_LABELS, DIMENSION_LABELS, describe_check, label_of, significant
from quality.thresholds import MARKETPLACE_PROFILES, QcThresholds

REPO = Path(__file__).resolve().parents[2]


FAMILIES = ("cut", "source", "segment", "colour", "placement", "sharpness", "edge", "shadow", "exposure")
FAMILIES += ("framing", "artefacts", "market")
KEY = re.compile(rf"^({'|'.join(FAMILIES)})\.[a-z0-9_]+$")


def _emitted_in_source() -> set[str]:
    """Check keys written in the code: a check-key-shaped string given as the first
    argument or as ``name=`` of any call in quality/ (``graded``, ``rule``, ``CheckResult``
    and whatever helper comes next), and the ``"name"`` of a check dict that tasks/score.py
    adds itself."""
    keys = set()
    for path in [*sorted((REPO / "quality").glob("*.py")), REPO / "tasks" / "score.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                args = [*node.args[:1], *(kw.value for kw in node.keywords if kw.arg == "name")]
            elif isinstance(node, ast.Dict):
                args = [v for k, v in zip(node.keys, node.values, strict=True) if getattr(k, "value", None) == "name"]
            else:
                continue
            keys |= {a.value for a in args if isinstance(a, ast.Constant) and KEY.match(str(a.value))}
    return keys


def test_every_check_key_in_the_code_has_a_label():
    keys = _emitted_in_source()
    assert len(keys) >= 30, f"the scan found too few check keys, is it still reading the right code? {keys}"
    assert "segment.confidence" in keys and "market.srgb" in keys
    assert keys - set(CHECK_LABELS) == set(), "label these checks in quality/labels.CHECK_LABELS"


def test_labels_and_defect_classes_name_the_same_checks():
    assert set(CHECK_LABELS) == set(DEFECTS)
    assert set(DIMENSION_LABELS) == set(DIMENSIONS)


def test_every_check_the_gate_emits_on_a_render_has_a_label(scene):
    s = scene.make(size=640, src_size=(560, 440), scale=1.0, light_deg=135.0, shadow_offset=15, contact=0.5)
    evidence = QcEvidence(
        s.source_rgb,
        s.source_mask,
        s.output_rgb,
        s.output_alpha,
        s.placement,
        background_rgb=s.background_rgb,
        shadow_style="soft",
        light_direction_deg=135.0,
        shipped_rgb=s.output_rgb,
        encoded_bytes=50_000,
        icc_is_srgb=True,
    )
    rules = dict(MARKETPLACE_PROFILES)  # every profile: every rule someone switched on
    reports = score_sku({p: evidence for p in rules}, QcThresholds(), rules)
    names = {c.name for r in reports.values() for c in r.checks}
    assert {"market.background_purity", "market.megapixels", "artefacts.jpeg", "cut.split"} <= names
    assert names - set(CHECK_LABELS) == set()


def _check(name, status, value, warn, fail, worse="higher"):
    return {"name": name, "status": status, "value": value, "threshold": {"warn": warn, "fail": fail, "worse": worse}}


@pytest.mark.parametrize(
    "check,text",
    [
        (
            _check("market.background_purity", "fail", 0.4321, 0.2, 0.4),
            "Background not pure white — 43 % off-white pixels, limit 40 %",
        ),
        (
            _check("amazon-main:market.border_purity", "fail", 0.0234, 0.0, 0.0),
            "Frame edge not pure white — 2.3 % off-white edge pixels, limit 0 %",
        ),
        (
            _check("shadow.contact", "warn", 0.1234, 0.15, 0.08, "lower"),
            "Product floats (no contact shadow) — 12 % darker under the base, warns below 15 %",
        ),
        (
            _check("market.min_size", "fail", 1200, 1600, 1600, "lower"),
            "Image too small for the marketplace — 1,200 px longest side, minimum 1,600 px",
        ),
        (  # one more digit where the rounded figure would equal the limit
            _check("market.file_size", "fail", 10.4 * 2**20, 10 * 2**20, 10 * 2**20),
            "File over the marketplace's size limit — 10.4 MB, limit 10 MB",
        ),
        (_check("source.resolution", "fail", 3.912345, 2.8, 3.5), "Source photo too small — enlarged 3.9×, limit 3.5×"),
        (
            _check("market.srgb", "fail", 0.0, 1.0, 1.0, "lower"),
            "Colour profile is not sRGB — no sRGB profile in the file",
        ),
        ({"name": "segment.confidence", "status": "fail", "value": 0.7612}, "Uncertain cut — 76 % confidence"),
        ({"name": "cut.split", "status": "pass", "value": None}, "Thin part cut through"),
    ],
)
def test_describe_check_reads_as_a_sentence(check, text):
    assert describe_check(check) == text


def test_significant_digits_and_unknown_keys():
    assert [significant(v) for v in (0.0, 0.000491, 0.0123, 1.0, 2.77, 12.34, 1234.5, -0.5)] == [
        "0",
        "0.00049",
        "0.012",
        "1",
        "2.8",
        "12",
        "1,234",
        "-0.5",
    ]
    assert label_of("shopify:edge.halo") is CHECK_LABELS["edge.halo"]
    assert label_of("some.new_check").problem == "some.new_check"  # shown raw, never a crash
