"""A bulk edit's deferred refreshes become ONE off-peak batch per shop (issue 13), on a real
Prefect server with a process worker and the catalog in PostgreSQL.

Four product events of one shop arrive during a burst, outside the off-peak window (one
product updated twice: a broken photo first, then a good one). Each ``shopify-refresh``
run defers itself: the products wait in ``pending_refreshes`` and exactly one
``shopify-refresh-batch`` run is scheduled, at the window's start. The test then moves that
run to now (the clock, not the code: it is what happens when the window opens), and the
batch renders the three products as one catalog batch: the product updated twice with
its newest photo (exported), one whose photo cannot be fetched (failed, with the reason) and
one whose photo is broken (failed, with the reason).
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.db import migrate, session_scope
from catalog.models import Batch, Sku
from catalog.refreshes import pending_rows
from catalog.webhooks import record_delivery
from tests.conftest import EXAMPLES, REPO, _reset_pg
from tests.prefect_server import PrefectServer, run_prefect_server, run_process_worker

pytestmark = [pytest.mark.server, pytest.mark.postgres]
POOL = "lightbox-refresh-test"
SHOP = "lightbox-demo.myshopify.com"
MAX_IMAGE_BYTES = 2_000_000
RUN_DEADLINE_S = 300


def _api(server: PrefectServer):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: server.api_url})


@pytest.fixture(scope="module")
def refresh_pool(tmp_path_factory) -> Iterator[tuple[PrefectServer, Path]]:
    """A server, a process pool with the standard and urgent queues, shopify-refresh/webhook
    and shopify-refresh-batch/offpeak deployed from this tree, a worker."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from flows.shopify_refresh import shopify_refresh, shopify_refresh_batch

    root = tmp_path_factory.mktemp("refresh-offpeak")
    with run_prefect_server(root) as server:
        with _api(server):
            with get_client(sync_client=True) as client:
                template = ProcessWorker.get_default_base_job_template()
                client.create_work_pool(WorkPoolCreate(name=POOL, type="process", base_job_template=template))
                for priority, queue in enumerate(("urgent", "standard"), start=1):
                    client.create_work_queue(queue, work_pool_name=POOL, priority=priority)
            for flow, entrypoint, name in (
                (shopify_refresh, "flows/shopify_refresh.py:shopify_refresh", "webhook"),
                (shopify_refresh_batch, "flows/shopify_refresh.py:shopify_refresh_batch", "offpeak"),
            ):
                flow.from_source(source=str(REPO), entrypoint=entrypoint).deploy(
                    name=name,
                    work_pool_name=POOL,
                    work_queue_name="standard",
                    build=False,
                    push=False,
                    print_next_steps=False,
                    ignore_warnings=True,
                )
        worker_env = {"PREFECT_LOCAL_STORAGE_PATH": str(root / "results")}
        with run_process_worker(server, POOL, root, worker_env) as log:
            yield server, log


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    root = tmp_path / "served"
    root.mkdir()
    for name in ("espresso-cup.png", "truncated.jpg"):
        (root / name).write_bytes((EXAMPLES / "images" / name).read_bytes())
    (root / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES + 1))
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def pg_catalog(pg_server_url) -> str:
    _reset_pg(pg_server_url)
    migrate(pg_server_url)
    return pg_server_url


def _wait(server: PrefectServer, run_id, log: Path, timeout_s: float = RUN_DEADLINE_S):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    with _api(server), get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-5000:] if log.exists() else ""
                pytest.fail(f"run {run.name} is {run.state.name}, not final\n--- worker log ---\n{tail}")
            time.sleep(1)


def _runs_of(server: PrefectServer, deployment: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with _api(server), get_client(sync_client=True) as client:
        found = client.read_deployment_by_name(deployment)
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[found.id])))


def test_a_bulk_edit_is_one_offpeak_batch_per_shop(refresh_pool, served, pg_catalog, run_settings, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Scheduled

    from tests.flows.test_shopify_refresh import window_closed_now

    server, log = refresh_pool
    settings = run_settings(database_url=pg_catalog, data_dir=tmp_path / "data")
    window = window_closed_now()
    opens = window.window().next_window_start(datetime.now(UTC))
    now = datetime.now(UTC).replace(microsecond=0)
    cup, fetch_fails, broken = "501", "502", "503"
    events = [  # (product, photo, updated minutes ago)
        (cup, "truncated.jpg", 10),  # the cup's first edit had a broken photo...
        (fetch_fails, "huge.png", 9),
        (broken, "truncated.jpg", 8),
        (cup, "espresso-cup.png", 5),  # ...its second the good one: only this one may be used
    ]
    with session_scope(pg_catalog) as session:  # the receiver's deliveries: a burst of 3 products
        for i, (product, _, minutes) in enumerate(events):
            record_delivery(
                session,
                webhook_id=f"wh-{i}",
                shop=SHOP,
                topic="products/update",
                product_id=product,
                triggered_at=None,
                product_updated_at=now - timedelta(minutes=minutes),
                payload_sha256=f"{i:064d}",
                now=now,
            )
    refreshes = []
    with _api(server):
        for i, (product, photo, minutes) in enumerate(events):
            run = run_deployment(
                "shopify-refresh/webhook",
                timeout=0,
                work_queue_name="standard",
                parameters=dict(
                    shop=SHOP,
                    product_id=product,
                    image_urls=[f"{served}/{photo}"],
                    updated_at=(now - timedelta(minutes=minutes)).isoformat(),
                    webhook_id=f"wh-{i}",
                    settings=settings.model_dump(mode="json"),
                    out_dir=str(tmp_path / "out"),
                    offpeak=window.model_dump(mode="json"),
                    large_batch_threshold=2,
                    profiles=["shopify"],
                    max_image_bytes=MAX_IMAGE_BYTES,
                    allow_private_urls=True,
                ),
            )
            refreshes.append(run.id)
    for run_id in refreshes:
        run = _wait(server, run_id, log)
        assert run.state.is_completed(), (run.name, run.state.message)

    (batch_run,) = _runs_of(server, "shopify-refresh-batch/offpeak")  # one run for four deferred events
    assert batch_run.state.is_scheduled() and batch_run.expected_start_time == opens
    assert batch_run.parameters["shop"] == SHOP
    with session_scope(pg_catalog) as session:
        waiting = {r.product_id: r for r in pending_rows(session, SHOP)}
    assert set(waiting) == {cup, fetch_fails, broken}
    assert waiting[cup].image_urls == [f"{served}/espresso-cup.png"]  # the newest version only
    assert all(r.window_start == opens and r.batch_run is None for r in waiting.values())

    with _api(server), get_client(sync_client=True) as client:  # the window opens
        client.set_flow_run_state(batch_run.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)
    ended = _wait(server, batch_run.id, log, timeout_s=600)

    # two of three SKUs failed: more than the batch's 20 %, so the run says Failed, truthfully
    assert ended.state.is_failed() and "more than the 20 % allowed" in (ended.state.message or ""), ended.state
    assert len(_runs_of(server, "shopify-refresh-batch/offpeak")) == 1
    assert ended.name == f"shopify-lightbox-demo-offpeak-{opens:%Y-%m-%d}"  # named when it started
    sku = f"lightbox-demo-{cup}"
    with session_scope(pg_catalog) as session:
        (batch,) = session.scalars(select(Batch).where(Batch.name == "shopify-lightbox-demo-offpeak")).all()
        skus = {s.sku: s for s in session.scalars(select(Sku).where(Sku.batch_id == batch.id))}
        rows = {r.product_id: r for r in pending_rows(session, SHOP)}
    assert {s: skus[s].state for s in skus} == {
        sku: "exported",
        f"lightbox-demo-{fetch_fails}": "failed",
        f"lightbox-demo-{broken}": "failed",
    }
    fetch_reason = skus[f"lightbox-demo-{fetch_fails}"].reason  # the fetch's own words, not a missing file
    assert fetch_reason.startswith("image not fetched") and "cap" in fetch_reason, fetch_reason
    assert skus[f"lightbox-demo-{broken}"].reason
    assert rows[cup].outcome == "exported" and rows[cup].batch_run == str(batch_run.id)
    assert rows[fetch_fails].outcome == "failed" and "image not fetched" in rows[fetch_fails].reason
    assert "cap" in rows[fetch_fails].reason
    assert rows[broken].outcome == "failed" and rows[broken].reason == skus[f"lightbox-demo-{broken}"].reason
    assert [p.name for p in (tmp_path / "out" / skus[sku].dirname).iterdir()]  # the cup's export
