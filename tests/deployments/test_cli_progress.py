"""deployments/progress.py: what `lightbox run` prints while a batch runs, read from the catalog."""

import io
from pathlib import Path

from catalog import repository as repo
from catalog.db import session_scope
from catalog.manifest import ManifestEntry
from catalog.states import BatchState
from deployments.progress import ProgressPrinter, ProgressWatcher, SkuRow, Snapshot, clock, read_snapshot


def _snap(*states, batch_state="processing"):
    rows = [SkuRow(i, f"SKU-{i}", s, "validate: not an image" if s == "failed" else None) for i, s in enumerate(states)]
    return Snapshot(batch_state, rows)


def test_plain_output_is_one_line_per_sku_as_it_finishes():
    out = io.StringIO()
    printer = ProgressPrinter(out, live=False)
    printer.update(_snap("failed", "rendering", "pending"))
    printer.update(_snap("failed", "exported", "rendering"))  # SKU-0 is not printed again
    printer.update(_snap("failed", "exported", "rejected", batch_state="done"))
    assert out.getvalue().splitlines() == [
        "[1/3] failed    SKU-0  validate: not an image",
        "[2/3] exported  SKU-1",
        "[3/3] rejected  SKU-2",
    ]


def test_a_long_reason_stays_on_one_line():
    out = io.StringIO()
    row = SkuRow(0, "A", "rejected", "qc: halo\naround the product; " * 20)
    ProgressPrinter(out, live=False).update(Snapshot("qc", [row]))
    (line,) = out.getvalue().splitlines()
    assert line.endswith("...") and len(line) < 160


def test_the_live_bar_counts_states_and_estimates_the_time_left():
    now = iter([0.0, 5.0, 30.0]).__next__  # started at 0 s, drawn at 5 s and 30 s
    out = io.StringIO()
    printer = ProgressPrinter(out, live=True, now=now)
    printer.update(_snap("failed", "rendering", "pending", "pending", batch_state="processing"))
    assert "0:05" in out.getvalue() and "left" not in out.getvalue()  # no rate yet
    printer.update(_snap("failed", "exported", "rendering", "pending", batch_state="processing"))
    text = out.getvalue().split("\r")[-1]
    assert text.startswith("[##########----------]   2/4")
    assert "exported 1 · rejected 0 · failed 1" in text and "processing" in text
    # one SKU rendered in the 25 s since rendering began (the validation failure was free)
    assert "0:30, ~0:50 left" in text and "\n" not in out.getvalue()  # redrawn in place
    printer.close()
    assert out.getvalue().endswith("\n")


def test_clock():
    assert clock(0) == "0:00" and clock(75) == "1:15" and clock(3725) == "1:02:05"


def _batch(url, batch_id, name, skus):
    with session_scope(url) as s:
        repo.create_batch(
            s,
            batch_id=batch_id,
            name=name,
            manifest_path="m.csv",
            manifest_sha256="0" * 64,
            template="white_studio",
            profiles=["shopify"],
            review_policy="auto",
        )
        entries = [ManifestEntry(row=i + 1, sku=sku, image=Path(f"{sku}.png")) for i, sku in enumerate(skus)]
        repo.add_skus(s, batch_id, entries, "white_studio")
        repo.set_batch_state(s, batch_id, BatchState.validating)


def test_the_watcher_follows_the_new_batch_of_that_name(database_url):
    from sqlalchemy import create_engine

    _batch(database_url, "old", "shoes", ["OLD-1"])  # an earlier run with the same name
    out = io.StringIO()
    watcher = ProgressWatcher(database_url, "shoes", ProgressPrinter(out, live=False))
    assert watcher.known == {"old"}
    engine = create_engine(database_url)
    assert read_snapshot(engine, "shoes", watcher.known) is None  # the run's batch is not there yet
    _batch(database_url, "new", "shoes", ["A-1", "B-2"])
    with session_scope(database_url) as s:
        (b2,) = [row for row in repo.batch_skus(s, "new") if row.sku == "B-2"]
        repo.fail_sku(s, b2.id, "validate: not an image")
    snap = read_snapshot(engine, "shoes", watcher.known)
    assert snap.batch_state == "validating" and [r.sku for r in snap.skus] == ["A-1", "B-2"]
    watcher.stop()  # never started: one last poll prints what the batch reached
    engine.dispose()
    assert out.getvalue().splitlines() == ["[1/2] failed    B-2  validate: not an image"]
