"""bench/qc_calibration.py --defects: named classes drawn on every product (a class's rate
over many products), and a clear error for a class the corpus does not have."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "qc_calibration.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_defects_draws_the_named_class_on_every_product(tmp_path):
    out = tmp_path / "rows.json"
    run = _run("--products", "2", "--defects", "jpeg", "--workers", "1", "--json", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    by_product = {}
    for r in rows:
        by_product.setdefault(r["product"], set()).add(r["defect"])
    assert len(by_product) == 2
    for defects in by_product.values():  # each product: its clean case (or too small a source) and jpeg
        assert "jpeg" in defects and defects <= {"jpeg", "clean", "source_small"}
    assert "jpeg" in run.stdout


def test_an_unknown_defect_class_is_refused_by_name():
    run = _run("--products", "1", "--defects", "jpeg,halos")
    assert run.returncode == 2
    assert "halos" in run.stderr and "fringe" in run.stderr
