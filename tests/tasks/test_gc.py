"""tasks/gc.py and `lightbox gc`: expired work goes, work an open SKU needs stays."""

import os
import time
from pathlib import Path

from catalog import repository as repo
from catalog.db import session_scope
from catalog.manifest import ManifestEntry
from catalog.states import SkuState
from deployments.cli import main
from tasks.gc import collect_garbage

OLD = time.time() - 40 * 86400


def _work(data_dir: Path, sha: str, old: bool) -> Path:
    folder = data_dir / "work" / sha[:2] / sha
    folder.mkdir(parents=True)
    for name in ("source", "mask-0123.png", "0123-shopify.jpg"):
        (folder / name).write_bytes(b"x" * 100)
        if old:
            os.utime(folder / name, (OLD, OLD))
    return folder


def _catalog(url: str, states: dict[str, str]) -> None:
    """One SKU per photo sha, walked to the given state."""
    walk = {
        "held": ["validated", "rendering", "rendered", "qc_failed", "held"],
        "exported": ["validated", "rendering", "rendered", "qc_passed", "approved", "exported"],
    }
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id="b1",
            name="t",
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        entries = [ManifestEntry(i + 1, f"SKU-{i}", Path(f"{i}.png")) for i in range(len(states))]
        rows = repo.add_skus(s, "b1", entries, "white_studio")
        for row, (sha, state) in zip(rows, states.items(), strict=True):
            repo.record_source(s, row.id, sha256=sha, width=10, height=10, fmt="PNG", size=100)
            for step in walk[state]:
                repo.set_sku_state(s, row.id, SkuState(step))


def test_expired_work_goes_open_and_recent_work_stays(tmp_path, database_url):
    held, exported, recent = "a" * 64, "b" * 64, "c" * 64
    _catalog(database_url, {held: "held", exported: "exported"})
    data = tmp_path / "data"
    folders = {sha: _work(data, sha, old=sha != recent) for sha in (held, exported, recent)}
    results = tmp_path / "results"
    results.mkdir()
    for name in ("sku-old", "sku-new", "flow-run-result"):
        (results / name).write_bytes(b"r")
    os.utime(results / "sku-old", (OLD, OLD))
    os.utime(results / "flow-run-result", (OLD, OLD))

    dry = collect_garbage(data, database_url, results, dry_run=True)
    assert dry.removed_folders == [exported] and dry.removed_records == 1
    assert all(f.exists() for f in folders.values()) and (results / "sku-old").exists()

    report = collect_garbage(data, database_url, results)
    assert report.removed_folders == [exported] and report.kept_in_use == 1 and report.kept_recent == 1
    assert report.freed_bytes == 300 + 1
    assert not folders[exported].exists()
    assert folders[held].exists() and folders[recent].exists()  # held for review / written lately
    assert sorted(p.name for p in results.iterdir()) == ["flow-run-result", "sku-new"]


def test_cli_gc(tmp_path, capsys):
    from catalog.db import migrate

    data = tmp_path / "data"
    data.mkdir()
    migrate(f"sqlite:///{data / 'catalog.db'}")
    _work(data, "d" * 64, old=True)
    assert main(["gc", "--data-dir", str(data), "--dry-run"]) == 0
    assert "would remove 1 work folder(s)" in capsys.readouterr().out
    assert (data / "work" / "dd").exists()
    assert main(["gc", "--data-dir", str(data)]) == 0
    assert "removed 1 work folder(s)" in capsys.readouterr().out
    assert not (data / "work" / "dd" / ("d" * 64)).exists()
    assert main(["gc", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no catalog database" in capsys.readouterr().err
