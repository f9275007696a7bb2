"""`lightbox run` refuses a run that cannot succeed before any SKU starts: exit code 2 and one
line on stderr naming the fix, and nothing written (no output folder)."""

import os
import shutil
import subprocess
import sys

import pytest

from deployments.cli import main
from tests.conftest import EXAMPLES, REPO


@pytest.fixture
def run_cli(tmp_path, model_dir, capsys):
    """`lightbox run` in this process; the environment it sets for Prefect is undone after."""
    saved = dict(os.environ)

    def run(*args, out=None, manifest=EXAMPLES / "manifest.csv"):
        out = out or tmp_path / "out"
        argv = ["run", str(manifest), "--out", str(out), "--data-dir", str(tmp_path / "data")]
        code = main([*argv, "--model-dir", str(model_dir), *args])
        captured = capsys.readouterr()
        return code, captured.err.strip().splitlines(), out

    yield run
    os.environ.clear()
    os.environ.update(saved)


def _refused(result, *words):
    code, lines, out = result
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("lightbox: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()  # nothing started


def test_a_lifestyle_template_without_weights(run_cli):
    _refused(run_cli("--template", "marble_counter"), "marble_counter", "diffusion.inpaint", "--diffusion-dir")


def test_a_lifestyle_template_named_by_a_manifest_row(run_cli, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"sku,image,template\nA,{EXAMPLES / 'images' / 'espresso-cup.png'},wooden_table\n")
    _refused(run_cli(manifest=manifest), "wooden_table", "--diffusion-dir")


def test_a_diffusion_dir_that_is_not_there(run_cli, tmp_path):
    _refused(run_cli("--diffusion-dir", str(tmp_path / "nope")), "--diffusion-dir", "not a folder")


def test_an_unreachable_database(run_cli):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/catalog"  # nothing listens on port 1
    _refused(run_cli("--database-url", url), "not reachable", "--database-url", "127.0.0.1:1")


def test_an_output_folder_that_cannot_be_made(run_cli, tmp_path):
    (tmp_path / "a-file").write_text("x")
    _refused(run_cli(out=tmp_path / "a-file" / "out"), "is a file, not a folder", "--out")


def test_an_unknown_profile(run_cli):
    _refused(run_cli("--profile", "amazon-mian"), "amazon-mian", "known: ")


def test_a_missing_manifest(run_cli, tmp_path):
    _refused(run_cli(manifest=tmp_path / "nope.csv"), "nope.csv", "does not exist")


def test_a_manifest_that_cannot_be_read(run_cli, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("name,picture\nA,a.png\n")
    code, lines, out = run_cli(manifest=manifest)
    assert code == 2 and len(lines) == 1 and "image" in lines[0], lines
    assert not out.exists()


def test_an_unreachable_prefect_api(tmp_path, model_dir):
    """Through the installed entry point: the API URL is read when Prefect is imported."""
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "lightbox"), "run", str(EXAMPLES / "manifest.csv")]
        + ["--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), "--model-dir", str(model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:1/api", "PREFECT_HOME": str(tmp_path / "prefect")},
    )
    _refused((result.returncode, result.stderr.strip().splitlines(), tmp_path / "out"), "Prefect API", "127.0.0.1:1")
    assert result.stdout == ""


@pytest.mark.parametrize("share", ["1.5", "-0.1", "lots"])
def test_max_failed_share_is_a_share(share, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "m.csv", "--out", "o", "--max-failed-share", share])
    assert exc.value.code == 2 and "--max-failed-share" in capsys.readouterr().err


def test_cli_runs_as_a_module_too():
    result = subprocess.run([sys.executable, "-m", "deployments.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("lightbox ")


def test_an_unknown_segmenter(run_cli):
    _refused(run_cli("--segmenter", "u3net"), "unknown segmenter 'u3net'", "u2netp")


def test_missing_upscaler_weights(run_cli, tmp_path, model_dir):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(model_dir / "u2netp.onnx", models / "u2netp.onnx")
    code, lines, out = run_cli("--model-dir", str(models), "--upscaler", "realesrgan-x4plus-ncnn")
    _refused((code, lines, out), "realesrgan-x4plus", "lightbox models fetch")


def test_a_profile_file_with_an_unknown_key(run_cli, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "acme-shop.yaml").write_text("format: jpeg\ncanvas: [1200, 1200]\nqualty: 80\n")
    _refused(run_cli("--profiles-dir", str(profiles), "--profile", "acme-shop"), "acme-shop.yaml", "qualty")


def test_a_profile_from_a_file_is_known_to_the_run(run_cli, tmp_path):
    """The profile a file adds passes the unknown-profile check (a typo in its name would not)."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "acme-shop.yaml").write_text("format: jpeg\ncanvas: [1200, 1200]\nbackground: white\nfill: 0.8\n")
    _refused(run_cli("--profiles-dir", str(profiles), "--profile", "acme-shpo"), "acme-shpo", "acme-shop")
