"""`lightbox report DIR`, `lightbox --version` and `lightbox run --help`."""

import json
from importlib.metadata import version

import pytest

from deployments.cli import main


def _entry(sku, state, reason=None, qc=None, **extra):
    return {
        "sku": sku,
        "dir": sku.lower(),
        "title": None,
        "template": "white_studio",
        "state": state,
        "reason": reason,
        "attempts": extra.get("attempts", 1),
        "segment_confidence": extra.get("confidence"),
        "timings": extra.get("timings", {}),
        "qc": qc or {},
        "consistency_flags": [],
        "status": "green" if state == "exported" else "red",
        "outputs": {},
        "preview": None,
    }


def _qc(status, delta_e, checks=()):
    return {"status": status, "failing": [], "metrics": {"colour.delta_e_mean": delta_e}, "checks": list(checks)}


@pytest.fixture
def out(tmp_path):
    warn = [{"name": "edge.halo", "status": "warn", "reason": "halo around the product"}]
    skus = [
        _entry(
            "CUP-1",
            "exported",
            qc={"amazon-main": _qc("pass", 0.8), "shopify": _qc("warn", 1.9, warn)},
            confidence=0.964,
            timings={"segment": 1.5, "render": 2.25},
        ),
        _entry("MOTO-2", "rejected", "qc: product colour changed (shopify)", qc={"shopify": _qc("fail", 4.2)}),
        _entry("BAD-3", "failed", "validate: not-an-image.jpg: not an image", attempts=0),
    ]
    report = {
        "batch_id": "b1",
        "name": "demo",
        "profiles": ["amazon-main", "shopify"],
        "counts": {"exported": 1, "rejected": 1, "failed": 1},
        "skus": skus,
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    return tmp_path


def test_report_prints_one_row_per_sku_with_key_figures(out, capsys):
    assert main(["report", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SKU", "STATE", "TRIES", "CONF", "ΔE", "QC", "SEC", "REASON"]
    cup, moto, bad = lines[1:4]
    assert cup.split()[:7] == ["CUP-1", "exported", "1", "0.96", "1.9", "PW", "3.8"]
    assert cup.endswith("shopify: halo around the product")  # an exported SKU shows its warnings
    assert moto.split()[:6] == ["MOTO-2", "rejected", "1", "-", "4.2", "-F"]
    assert moto.endswith("qc: product colour changed (shopify)")
    assert bad.split()[:3] == ["BAD-3", "failed", "0"] and bad.endswith("not an image")
    assert lines[4] == "batch b1 (demo): 1 exported, 1 rejected, 1 failed"


def test_report_filters_by_state(out, capsys):
    assert main(["report", str(out), "--state", "failed", "--state", "rejected"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["MOTO-2", "BAD-3"]
    assert lines[3].startswith("batch b1 (demo): 2 of 3 SKUs shown")


def test_report_without_a_report_says_so(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no report at" in err


def test_version_comes_from_the_installed_package(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"lightbox {version('lightbox')}\n"


def test_run_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "examples:\n  lightbox run examples/catalog/manifest.csv --out out/demo\n" in text  # layout kept
    assert "--diffusion-dir" in text and "--max-failed-share" in text and "130 interrupted" in text
