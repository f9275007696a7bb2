"""What the resilience tests share: small real product photos, catalogs, the CLI as a child
process, and the checks that nothing was lost or exported twice.

Photos are the sample catalog's sticker and espresso cup (examples/catalog) at sizes and
mirrors that differ per SKU, so every SKU has its own content (no cache hit between
SKUs) and most pass QC, so there is something to export. Nothing here is committed as a
binary: every file is written into the test's tmp_path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from tests.conftest import CLASSICAL_THRESHOLDS, EXAMPLES, REPO

TERMINAL = {"exported", "rejected", "failed"}
# A small studio profile keeps in-process batches quick on 2 cores: the pipeline's work
# per SKU is the same as for the marketplace profiles, on a 512 px canvas.
THUMB = {"thumb": {"format": "jpeg", "canvas": [512, 512], "background": "white", "fill": 0.85}}
REPORT_FILES = {"report.json", "report.html", "contact_sheet.png"}


def product_photo(index: int) -> bytes:
    """PNG bytes of SKU ``index``'s photo: the sticker at 240-460 px (or, every fifth, the
    cup at 360 px), mirrored on odd indices. Distinct for indices 0..49."""
    if index % 5 == 4:
        name, side = "espresso-cup.png", 360
    else:
        name, side = "logo-sticker.png", 240 + 10 * ((index // 2) % 23)
    with Image.open(EXAMPLES / "images" / name) as im:
        photo = im.convert("RGB")
    photo.thumbnail((side, side), Image.LANCZOS)
    if index % 2:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    return buf.getvalue()


def write_catalog(folder: Path, count: int, prefix: str = "SKU") -> Path:
    """``count`` SKUs (``SKU-00``...) with distinct photos and a manifest.csv; returns it."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        sku = f"{prefix}-{i:02d}"
        (folder / "images" / f"{sku}.png").write_bytes(product_photo(i))
        rows.append({"sku": sku, "image": f"images/{sku}.png", "title": f"Product {i}"})
    return write_manifest(folder / "manifest.csv", rows)


def write_manifest(
    path: Path, rows: list[dict], encoding: str = "utf-8", columns: tuple[str, ...] = ("sku", "image", "title")
) -> Path:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def run_batch(manifest: Path, out: Path, settings, **kw) -> dict:
    """The batch flow in this process (under the session's Prefect harness), ``thumb`` only.
    Failed SKUs are what these tests cause: the run completes whatever share failed
    (``max_failed_share=1.0``), so the call returns the report."""
    from flows.catalog_batch import catalog_batch

    kw.setdefault("max_failed_share", 1.0)
    return catalog_batch(
        manifest=str(manifest), out_dir=str(out), settings=settings, profiles=kw.pop("profiles", ["thumb"]), **kw
    )


# --- the CLI as a child process ---------------------------------------------------------


def cli_env(api_url: str) -> dict[str, str]:
    """The child's environment: the session's Prefect API (no temporary server per run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=api_url, PREFECT_LOGGING_LEVEL="WARNING", PYTHONPATH=str(REPO))
    return env


def cli_command(manifest: Path, out: Path, data_dir: Path, model_dir: Path, *extra: str) -> list[str]:
    """``lightbox run`` with one profile, one attempt and classical upscaling (fast)."""
    return [
        sys.executable,
        "-m",
        "deployments.cli",
        "run",
        str(manifest),
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--model-dir",
        str(model_dir),
        "--upscaler",
        "lanczos",
        "--thresholds",
        str(CLASSICAL_THRESHOLDS),
        "--profile",
        "amazon-main",
        "--max-attempts",
        "1",
        *extra,
    ]


def start_cli(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    return proc


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"lightbox run did not finish in {timeout} s:\n{tail(log)}") from None
    assert proc.returncode == 0, f"lightbox run exited {proc.returncode}:\n{tail(log)}"


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    condition: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 180.0, poll_s: float = 0.005
) -> None:
    """Poll ``condition`` until it holds; fail if the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(
                f"lightbox run ended ({proc.returncode}) before the point to interrupt it was reached:\n{tail(log)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"the point to interrupt the batch was not reached in {timeout} s")
        time.sleep(poll_s)


def sqlite_reader(url: str) -> Callable[[str, tuple], list[tuple]]:
    """Read-only queries on a SQLite catalog another process is writing (WAL lets us)."""
    path = url.removeprefix("sqlite:///")

    def query(sql: str, params: tuple = ()) -> list[tuple]:
        if not Path(path).exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:  # schema not migrated yet
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    return query


# --- nothing lost, nothing twice ----------------------------------------------------------


def batch_rows(database_url: str, batch_id: str) -> dict[str, tuple[str, str | None]]:
    """SKU id -> (state, reason) for one batch, from the database (the truth)."""
    from catalog.db import session_scope
    from catalog.models import Sku

    with session_scope(database_url) as s:
        rows = s.scalars(select(Sku).where(Sku.batch_id == batch_id)).all()
        return {r.sku: (r.state, r.reason) for r in rows}


def assert_every_sku_terminal(database_url: str, report: dict, expected_skus: set[str]) -> None:
    """Every SKU of the manifest is in the batch once, in one terminal state, with a reason
    when it is not exported; report.json agrees with the database."""
    rows = batch_rows(database_url, report["batch_id"])
    assert set(rows) == expected_skus, f"lost or extra SKUs: {set(rows) ^ expected_skus}"
    for sku, (state, reason) in rows.items():
        assert state in TERMINAL, f"{sku} ended {state!r}"
        if state != "exported":
            assert reason, f"{sku} is {state} without a reason"
    assert {e["sku"]: e["state"] for e in report["skus"]} == {k: v[0] for k, v in rows.items()}
    assert sum(report["counts"].values()) == len(expected_skus), report["counts"]


def export_rows(database_url: str) -> list:
    from catalog.db import session_scope
    from catalog.models import Export

    with session_scope(database_url) as s:
        return list(s.scalars(select(Export)).all())


def assert_exported_once(database_url: str, out: Path, *, killed_puts_ok: bool = False) -> dict[str, str]:
    """One export row per destination key, every row done, every file on disk holding the
    bytes its row records, no file without a row. Returns key -> sha256.

    ``killed_puts_ok``: a put that was SIGKILLed mid-write leaves its hidden temporary file
    (``.<name>.<random>.lightbox-tmp``) beside the key, and nothing removes it yet (the
    destination's ``cleanup_partial`` is never called): tolerate those, and only those,
    next to a complete file."""
    rows = [r for r in export_rows(database_url) if r.destination == f"local:{out.resolve()}"]
    per_key = Counter(r.destination_key for r in rows)
    twice = {k: n for k, n in per_key.items() if n > 1}
    assert not twice, f"exported more than once: {twice}"
    assert all(r.status == "done" for r in rows), [(r.destination_key, r.status) for r in rows if r.status != "done"]
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name not in REPORT_FILES}
    if killed_puts_ok:
        leftovers = {k for k in on_disk if Path(k).name.startswith(".") and k.endswith(".lightbox-tmp")}
        for k in leftovers:
            target = str(Path(k).parent / Path(k).name[1:].rsplit(".", 2)[0])
            assert target in per_key, f"{k} is a temporary file of {target}, which was never exported"
        on_disk -= leftovers
    assert on_disk == set(per_key), (
        f"files without an export row: {on_disk - set(per_key)}; rows without a file: {set(per_key) - on_disk}"
    )
    for r in rows:
        data = (out / r.destination_key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.content_sha256, f"{r.destination_key} is not what was recorded"
    return {r.destination_key: r.content_sha256 for r in rows}


def file_identities(out: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (inode, mtime_ns) of every exported file: a rewrite changes both."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file() and p.name not in REPORT_FILES
    }
