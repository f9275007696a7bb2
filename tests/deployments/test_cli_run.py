"""`lightbox run` end to end through its entry point (progress lines, quiet terminal, the log
file, the summary from report.json) and its exit code from the batch flow's final state."""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from prefect.states import Completed, Failed

from catalog.manifest import ManifestError
from deployments.cli_run import _finish
from tests.conftest import CLASSICAL_THRESHOLDS, EXAMPLES, REPO


@pytest.mark.slow
def test_a_run_prints_a_line_per_sku_and_keeps_prefect_in_the_log_file(tmp_path, model_dir):
    folder = tmp_path / "catalog"
    folder.mkdir()
    for name in ("espresso-cup.png", "logo-sticker.png", "not-an-image.jpg"):
        shutil.copy(EXAMPLES / "images" / name, folder / name)
    (folder / "m.csv").write_text(
        "sku,image\nCUP-1,espresso-cup.png\nSTICKER-2,logo-sticker.png\nNOT-IMG,not-an-image.jpg\n"
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "lightbox"), "run", str(folder / "m.csv"), "--out", str(out)]
        + ["--data-dir", str(tmp_path / "data"), "--model-dir", str(model_dir), "--upscaler", "lanczos"]
        + ["--thresholds", str(CLASSICAL_THRESHOLDS), "--profile", "shopify", "--max-failed-share", "0.5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")},  # stdout is a pipe: plain lines
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert [line[:5] for line in progress] == ["[1/3]", "[2/3]", "[3/3]"], lines
    assert all(re.match(r"\[\d/3\] (exported|rejected|failed) +\S", line) for line in progress), progress
    assert "failed    NOT-IMG  validate: not-an-image.jpg: not an image" in result.stdout
    report = json.loads((out / "report.json").read_text())
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items())
    summary = lines[len(progress) :]
    assert summary[0] == f"batch {report['batch_id']}: {counts} in {report['wall_seconds']:.1f} s", lines
    assert f"log:           {out / 'lightbox.log'}" in summary and len(lines) == 3 + 7
    assert "Finished in state" not in result.stdout + result.stderr  # Prefect's lines stay off the terminal
    log = (out / "lightbox.log").read_text()
    assert "Finished in state" in log and "Beginning flow run" in log


def _report(out, counts=None):
    out.mkdir(exist_ok=True)
    counts = counts or {"exported": 2, "rejected": 0, "failed": 3}
    report = {"batch_id": "b1", "name": "m", "counts": counts, "wall_seconds": 12.0, "skus": []}
    (out / "report.json").write_text(json.dumps(report))


def test_a_completed_batch_exits_0_whatever_its_state_is_named(tmp_path, capsys):
    _report(tmp_path)
    state = Completed(name="Completed with rejections", message="1 SKU rejected")
    assert _finish(state, tmp_path, tmp_path / "lightbox.log", time.time(), (ManifestError,)) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("batch b1: 2 exported, 0 rejected, 3 failed in 12.0 s\n")
    assert captured.err == ""


def test_a_failed_batch_with_a_report_exits_1_with_its_message(tmp_path, capsys):
    _report(tmp_path)
    state = Failed(message="5 SKUs: 3 failed (60 %\nfailed, more than the 20 % allowed)")
    assert _finish(state, tmp_path, tmp_path / "lightbox.log", time.time(), (ManifestError,)) == 1
    captured = capsys.readouterr()
    assert "report:        " in captured.out  # the summary is still printed
    assert captured.err == "lightbox: 5 SKUs: 3 failed (60 % failed, more than the 20 % allowed)\n"


def test_a_report_left_by_an_earlier_run_is_not_this_runs(tmp_path, capsys):
    _report(tmp_path)
    os.utime(tmp_path / "report.json", (time.time() - 3600, time.time() - 3600))
    state = Failed(message="Flow run encountered an exception: RuntimeError: boom")
    assert _finish(state, tmp_path, tmp_path / "lightbox.log", time.time(), (ManifestError,)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "boom" in line and str(tmp_path / "lightbox.log") in line


def test_a_batch_that_could_not_read_its_manifest_was_refused(tmp_path, capsys):
    state = Failed(data=ManifestError("manifest has no 'image' column"), message="failed")
    assert _finish(state, tmp_path, tmp_path / "lightbox.log", time.time(), (ManifestError,)) == 2
    assert capsys.readouterr().err == "lightbox: manifest has no 'image' column\n"


LOG_SOME = """
import logging, sys
from pathlib import Path
from deployments.cli_logging import configure
configure(Path(sys.argv[1]), verbose=sys.argv[2] == "1")
from prefect import flow  # noqa: F401  (Prefect's API configures logging, from our file)
Path(sys.argv[1]).mkdir()
task = {"task_run_name": "validate-A", "task_run_id": None, "flow_run_id": None}
logging.getLogger("prefect.task_runs").error("Finished in state Failed('bad photo')", extra=task)
logging.getLogger("prefect.flow_runs").info("Beginning flow run", extra={"flow_run_name": "batch-m"})
logging.getLogger("prefect").warning("a warning people should see")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_prefect_logs_go_to_the_file_and_only_warnings_to_the_terminal(tmp_path, verbose):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_LOGGING", "LIGHTBOX_LOG"))}
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", LOG_SOME, str(tmp_path / "out"), "1" if verbose else "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_TO_API_ENABLED": "false"},
    )
    assert result.returncode == 0, result.stderr
    assert "a warning people should see" in result.stderr
    assert ("Finished in state" in result.stderr) is verbose
    assert ("Beginning flow run" in result.stderr) is verbose
    log = (tmp_path / "out" / "lightbox.log").read_text()
    assert "Finished in state Failed('bad photo')" in log and "Beginning flow run" in log and "a warning" in log
