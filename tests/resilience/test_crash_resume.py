"""SIGKILL the process running a batch, twice (while rendering, then while exporting), and
run the same command again: every SKU ends in one terminal state, none is lost, and no
image is exported twice (export rows and the files themselves)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.resilience._support import (
    assert_every_sku_terminal,
    assert_exported_once,
    cli_command,
    cli_env,
    file_identities,
    finish,
    sqlite_reader,
    start_cli,
    wait_until,
    write_catalog,
)

SKUS = 6

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _kill(proc, log) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"the batch was not killed mid-way:\n{log.read_text()[-3000:]}"


def test_batch_killed_twice_then_rerun_loses_nothing_and_exports_once(tmp_path, api_url, model_dir):
    manifest = write_catalog(tmp_path / "catalog", SKUS)
    out, data = tmp_path / "out", tmp_path / "data"
    url = f"sqlite:///{data / 'catalog.db'}"
    command = cli_command(manifest, out, data, model_dir)
    env = cli_env(api_url)
    query = sqlite_reader(url)

    # 1. killed while rendering: a SKU has been rendered and scored, the batch is not done
    log1 = tmp_path / "run1.log"
    proc = start_cli(command, env, log1)
    wait_until(lambda: bool(query("SELECT 1 FROM renders LIMIT 1")), proc, log1)
    _kill(proc, log1)
    assert not query("SELECT 1 FROM exports")

    # 2. killed while exporting: the second run's first export claim is in the database
    log2 = tmp_path / "run2.log"
    proc = start_cli(command, env, log2)
    wait_until(lambda: bool(query("SELECT 1 FROM exports LIMIT 1")), proc, log2, poll_s=0.002)
    _kill(proc, log2)
    before = file_identities(out)
    done_before = {key for key, status in query("SELECT destination_key, status FROM exports") if status == "done"}

    # 3. the same command again finishes the work
    log3 = tmp_path / "run3.log"
    proc = start_cli(command, env, log3)
    finish(proc, log3)
    report = json.loads((out / "report.json").read_text())
    skus = {f"SKU-{i:02d}" for i in range(SKUS)}
    assert_every_sku_terminal(url, report, skus)
    exported = {e["sku"] for e in report["skus"] if e["state"] == "exported"}
    assert exported, report["counts"]
    keys = assert_exported_once(url, out, killed_puts_ok=True)
    for entry in report["skus"]:  # files delivered by a killed run are this batch's outputs too
        if entry["state"] == "exported":
            assert entry["outputs"] == {
                "amazon-main": f"{entry['dir']}/amazon-main.jpg",
                "mask": f"{entry['dir']}/mask.png",
            }, entry["outputs"]
    assert {k.split("/")[0] for k in keys} == exported

    # what the killed run had already delivered was not written again
    after = file_identities(out)
    for key in done_before:
        assert after[key] == before[key], f"{key} was rewritten after it was exported"

    # the killed batches never claim to be done
    batches = dict(query("SELECT id, state FROM batches"))
    assert len(batches) == 3 and batches[report["batch_id"]] == "done"
    assert all(state != "done" for bid, state in batches.items() if bid != report["batch_id"])
