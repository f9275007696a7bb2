"""The catalog database goes away mid-batch: from another connection, every backend the
batch holds on the per-run PostgreSQL database is terminated (``pg_terminate_backend``),
once in the middle of a transaction (the batch is made to wait on a table lock, then its
connection is killed) and then every half second until the batch ends. The shared server
is never restarted. The batch retries and completes — or, if a step gives up, it stops
with a clear reason (the whole batch, or the SKUs whose step gave up while the batch went
on) and a re-run completes it with nothing lost and nothing exported twice.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from catalog.db import migrate
from tests.conftest import _reset_pg
from tests.resilience._support import (
    assert_every_sku_terminal,
    assert_exported_once,
    batch_rows,
    run_batch,
    write_catalog,
)

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("prefect_harness")]

SKUS = 4
OTHERS = "datname = current_database() AND pid <> pg_backend_pid()"


class Saboteur(threading.Thread):
    """Kills the batch's connections: one mid-transaction, then all of them, repeatedly."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.stop = threading.Event()
        self.mid_transaction = 0
        self.terminated = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                self._kill_one_mid_transaction(conn)
                while not self.stop.wait(0.5):
                    self.terminated += len(
                        conn.execute(
                            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OTHERS}"
                        ).fetchall()
                    )
        except BaseException as exc:  # reported by the test, never swallowed
            self.error = exc

    def _kill_one_mid_transaction(self, conn) -> None:
        while not self.stop.is_set():  # until the batch has written its SKU rows
            if conn.execute("SELECT EXISTS (SELECT 1 FROM skus)").fetchone()[0]:
                break
            time.sleep(0.05)
        with conn.transaction():
            conn.execute("LOCK TABLE skus IN EXCLUSIVE MODE")  # the batch's next SKU write waits
            deadline = time.monotonic() + 120
            while not self.stop.is_set() and time.monotonic() < deadline:
                waiting = conn.execute(
                    f"SELECT pid FROM pg_stat_activity WHERE {OTHERS} AND wait_event_type = 'Lock'"
                ).fetchall()
                if waiting:
                    for (pid,) in waiting:
                        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    self.mid_transaction += len(waiting)
                    return
                time.sleep(0.02)


def _retried_task_runs(since: datetime) -> list[str]:
    """Names of the task runs started since ``since`` that ran more than once."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(start_time=TaskRunFilterStartTime(after_=since)))
    return [r.name for r in runs if r.run_count > 1]


def test_connections_killed_mid_batch_the_batch_retries_and_nothing_is_lost(tmp_path, thumb_settings, pg_server_url):
    _reset_pg(pg_server_url)
    migrate(pg_server_url)
    manifest = write_catalog(tmp_path / "catalog", SKUS)
    out, settings = tmp_path / "out", thumb_settings(database_url=pg_server_url)

    started = datetime.now(UTC)
    saboteur = Saboteur(pg_server_url)
    saboteur.start()
    try:
        report, stopped = run_batch(manifest, out, settings), None
    except Exception as exc:  # the other allowed outcome: a clear stop, then a re-run
        report, stopped = None, exc
    finally:
        saboteur.stop.set()
        saboteur.join(30)
    assert saboteur.error is None, f"the saboteur failed: {saboteur.error!r}"
    assert saboteur.mid_transaction >= 1, "no connection was killed in the middle of a transaction"

    if stopped is not None:
        text = str(stopped).lower()
        assert any(w in text for w in ("terminat", "connection", "server closed")), (
            f"the batch stopped without saying the database went away: {stopped!r}"
        )
        report = run_batch(manifest, out, settings)
    else:  # it completed: the step whose connection was killed mid-transaction ran again
        assert _retried_task_runs(started), "no task was retried after its connection was killed"
        if report["counts"].get("failed", 0):  # on a loaded machine a SKU's step can spend its retries
            assert_every_sku_terminal(pg_server_url, report, {f"SKU-{i:02d}" for i in range(SKUS)})
            rows = batch_rows(pg_server_url, report["batch_id"]).values()
            reasons = " ".join(r for state, r in rows if state == "failed").lower()
            assert any(w in reasons for w in ("terminat", "connection", "server closed")), reasons
            report = run_batch(manifest, out, settings)  # the re-run completes them
            assert report["counts"].get("failed", 0) == 0, report["counts"]
    assert report["state"] == "done"
    assert_every_sku_terminal(pg_server_url, report, {f"SKU-{i:02d}" for i in range(SKUS)})
    assert report["counts"]["exported"] >= 1, report["counts"]
    assert_exported_once(pg_server_url, out)
