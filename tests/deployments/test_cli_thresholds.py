"""``lightbox run --thresholds FILE``: QC limits changed from a file, checked before any SKU."""

import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, REPO


def _run(tmp_path, thresholds_text):
    path = tmp_path / "thresholds.yaml"
    path.write_text(thresholds_text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "run",
            str(EXAMPLES / "manifest.csv"),
            "--out",
            str(tmp_path / "out"),
            "--data-dir",
            str(tmp_path / "data"),
            "--thresholds",
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "text,words",
    [
        ("source_enlargment: {warn: 5, fail: 6}\n", "source_enlargment"),  # a typo is named, not ignored
        ("halo_share: {warn: 0.5, fail: 0.1}\n", "halo_share"),  # warn beyond fail
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_bad_thresholds_stop_the_run_with_one_line(tmp_path, text, words):
    result = _run(tmp_path, text)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightbox: --thresholds") and words in lines[0], lines
    assert not (tmp_path / "out").exists()  # nothing ran


def test_an_unknown_work_store_stops_the_run_with_one_line(tmp_path, model_dir):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "run",
            str(EXAMPLES / "manifest.csv"),
            "--out",
            str(tmp_path / "out"),
            "--data-dir",
            str(tmp_path / "data"),
            "--work-store",
            "lightbox-s3-destination/no-such-block",
            "--model-dir",
            str(model_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")},
    )
    assert result.returncode == 2, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("lightbox:")]  # not Prefect's server log
    assert len(ours) == 1 and "no-such-block" in ours[0], result.stderr
    assert not (tmp_path / "out").exists()
