"""Two batches over the same SKUs at the same time: two `lightbox run` processes on one
SQLite catalog, one data dir (work files and result cache) and one output folder. Neither
corrupts the other's state, and no image is exported twice."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from catalog.db import session_scope
from catalog.models import Render, Sku
from tests.resilience._support import (
    assert_every_sku_terminal,
    assert_exported_once,
    cli_command,
    cli_env,
    finish,
    start_cli,
    write_catalog,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")

SKUS = 6


def test_two_batches_on_the_same_skus_at_once(tmp_path, api_url, model_dir):
    manifest = write_catalog(tmp_path / "catalog", SKUS)
    out, data = tmp_path / "out", tmp_path / "data"
    url = f"sqlite:///{data / 'catalog.db'}"
    env = cli_env(api_url)
    runs = []
    for name in ("first", "second"):  # both start before either has done any work
        command = cli_command(manifest, out, data, model_dir, "--batch-name", name)
        runs.append((start_cli(command, env, tmp_path / f"{name}.log"), tmp_path / f"{name}.log"))
    for proc, log in runs:
        finish(proc, log)

    skus = {f"SKU-{i:02d}" for i in range(SKUS)}
    with session_scope(url) as s:
        batches = {row.batch_id for row in s.scalars(select(Sku))}
    assert len(batches) == 2
    reports = {}
    for batch_id in batches:
        from catalog.report import build_report

        with session_scope(url) as s:
            reports[batch_id] = build_report(s, batch_id)
        assert reports[batch_id]["state"] == "done"
        assert_every_sku_terminal(url, reports[batch_id], skus)

    # the same inputs give the same verdicts in both batches; no SKU failed on the other's account
    first, second = (reports[b]["skus"] for b in sorted(batches))
    assert [(e["sku"], e["state"]) for e in first] == [(e["sku"], e["state"]) for e in second]
    assert not [e for e in first + second if e["state"] == "failed"], [e["reason"] for e in first + second]
    for entry in first + second:  # whichever batch delivered a file, both report where it is
        if entry["state"] == "exported":
            assert set(entry["outputs"]) == {"amazon-main", "mask"}, (entry["sku"], entry["outputs"])

    # each batch's renders belong to its own SKU rows, one attempt each
    with session_scope(url) as s:
        for sku in s.scalars(select(Sku)):
            renders = s.scalars(select(Render).where(Render.sku_id == sku.id)).all()
            assert [r.attempt for r in renders] == [1], (sku.sku, sku.batch_id, len(renders))

    # one export row per file, every file whole and as recorded
    keys = assert_exported_once(url, out)
    exported = {e["sku"] for e in first if e["state"] == "exported"}
    assert exported and {k.split("/")[0] for k in keys} == exported
    assert json.loads((out / "report.json").read_text())["batch_id"] in batches
