"""Nothing lost, nothing doubled: the receiver (``python -m deployments.webhook``, a real
process) against a real Prefect server (tests/prefect_server.py) with the
``shopify-refresh`` deployment and the trigger prefect.yaml gives it.

The receiver reaches the API through a loopback TCP forwarder on a port of its own, so
"the API is down" is a closed port (the forwarder not listening) while the server, its
deployment and its trigger stay up and loaded. The event store is the server's own
(``POST /api/events/filter``); the flow runs are the trigger's. Checked: the API down
when the delivery arrives (acknowledged, delivered once the port opens), and the receiver
SIGKILLed between its answer and the send (delivered by the next receiver's start-up
relay); in both, one event with the delivery's id and one flow run, and Shopify's retry
is a duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from catalog.db import migrate, session_scope
from catalog.models import OutboxEvent
from tasks.events import event_uuid
from tests.prefect_server import REPO, free_port, run_prefect_server

pytestmark = [pytest.mark.server]

SECRET = "shpss_outbox_0123456789"
SHOP = "lightbox-demo.myshopify.com"
POOL = "outbox-test"


class Forwarder:
    """Loopback TCP forwarding from ``port`` to the server's port while open; closing it
    closes the port and every connection through it (the API is unreachable)."""

    def __init__(self, target_port: int):
        self.port, self.target_port = free_port(), target_port
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for conn in self._conns:
            conn.close()
        self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def refresh_trigger() -> dict:
    """The trigger of shopify-refresh/webhook exactly as prefect.yaml declares it."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["entrypoint"].endswith(":shopify_refresh")]
    (trigger,) = deployment["triggers"]
    return trigger


@pytest.fixture(scope="module")
def prefect(tmp_path_factory):
    """A real server with shopify-refresh deployed (no worker: its runs stay Scheduled) and
    its trigger live: a probe event has started a run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.events import DeploymentEventTrigger
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    from flows.shopify_refresh import shopify_refresh
    from tasks.events import PrefectEventSender, product_event

    root = tmp_path_factory.mktemp("outbox-server")
    with run_prefect_server(root) as server, temporary_settings({PREFECT_API_URL: server.api_url}):
        with get_client(sync_client=True) as client:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process", base_job_template=template))
        flow = shopify_refresh.from_source(source=str(REPO), entrypoint="flows/shopify_refresh.py:shopify_refresh")
        deployment_id = flow.deploy(
            name="webhook",
            work_pool_name=POOL,
            parameters={
                "settings": {"data_dir": str(root / "data"), "database_url": "sqlite://", "model_dir": str(root)},
                "out_dir": str(root / "out"),
            },
            triggers=[DeploymentEventTrigger(**refresh_trigger())],
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=True,
        )
        probe = {"shop": SHOP, "product_id": "1", "webhook_id": "probe", "topic": "products/update"}
        probe |= {"image_urls": [], "updated_at": "2026-01-01T00:00:00+00:00", "triggered_at": None}
        sender = PrefectEventSender()
        deadline = time.monotonic() + 120
        while not runs_by_product(server.api_url, deployment_id).get("1"):
            assert time.monotonic() < deadline, "the trigger started no run for the probe event"
            sender([product_event(probe, datetime.now(UTC))])
            time.sleep(3)
        sender.close()
        yield {"server": server, "deployment_id": deployment_id}


def api(url: str):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(url)


def runs_by_product(api_url: str, deployment_id) -> dict[str, list]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with api(api_url) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    found: dict[str, list] = {}
    for run in runs:
        found.setdefault(str(run.parameters.get("product_id")), []).append(run)
    return found


def stored_events(api_url: str, event_id: str) -> list[dict]:
    with api(api_url) as client:
        page = client.request("POST", "/events/filter", json={"filter": {"id": {"id": [event_id]}}, "limit": 50})
    return page.json()["events"]


def wait(predicate, what: str, timeout_s: float = 90.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@contextmanager
def receiver(tmp_path: Path, database_url: str, api_url: str, env: dict, name: str):
    """``python -m deployments.webhook`` in its own process group; yields (process, url)."""
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET)
    port = free_port()
    log = tmp_path / f"{name}.log"
    child_env = {**env, "PREFECT_API_URL": api_url, "LIGHTBOX_DATABASE_URL": database_url}
    child_env |= {"LIGHTBOX_SHOPIFY_SHOPS": SHOP, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployments.webhook", "--port", str(port), "--secret-file", str(secret_file)],
            cwd=REPO,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy():
            assert proc.poll() is None, f"the receiver exited:\n{log.read_text()[-3000:]}"
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait(healthy, "the receiver's /healthz", 60)
        yield proc, url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        assert "password" not in log.read_text().lower()


def deliver(url: str, product_id: int, webhook_id: str) -> httpx.Response:
    body = json.dumps(
        {"id": product_id, "updated_at": "2026-11-20T10:00:00+00:00", "images": [{"src": "https://cdn.example/a.png"}]}
    ).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": webhook_id,
    }
    return httpx.post(f"{url}/webhooks/shopify", content=body, headers=headers, timeout=10)


def outbox(database_url: str) -> list[tuple[str, bool, int, str | None]]:
    with session_scope(database_url) as s:
        return [
            (r.event_id, r.sent_at is not None, r.attempts, r.last_error)
            for r in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        ]


def unsent(url: str) -> int:
    return httpx.get(f"{url}/healthz", timeout=5).json()["unsent_events"]


def assert_delivered_once(prefect, product_id: str, event_id: str) -> None:
    api_url, deployment = prefect["server"].api_url, prefect["deployment_id"]
    wait(lambda: stored_events(api_url, event_id), f"event {event_id} in the server's event store")
    wait(lambda: runs_by_product(api_url, deployment).get(product_id), f"a shopify-refresh run for {product_id}")
    time.sleep(3)  # a second event or run would show up by now
    (event,) = stored_events(api_url, event_id)
    assert event["event"] == "lightbox.shopify.product.updated" and event["payload"]["product_id"] == product_id
    (run,) = runs_by_product(api_url, deployment)[product_id]
    assert run.parameters["shop"] == SHOP and run.parameters["image_urls"] == ["https://cdn.example/a.png"]


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate(url)
    return url


@pytest.fixture
def postgres_url(pg_server_url):
    from tests.conftest import _reset_pg

    _reset_pg(pg_server_url)
    migrate(pg_server_url)
    return pg_server_url


@pytest.mark.parametrize("catalog", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_api_down_delivery_is_acknowledged_then_sent_once(prefect, catalog, request, tmp_path):
    """SQLite: the relay is a thread of its own; PostgreSQL: a task on the receiver's event
    loop (tasks.events.Relay.start_on). Each product id is this test's own: the server
    outlives the parameters."""
    database_url = request.getfixturevalue(f"{catalog}_url")
    product_id, hook = {"sqlite": (101, "wh-down"), "postgres": (102, "wh-pg-down")}[catalog]
    forwarder = Forwarder(int(prefect["server"].url.rsplit(":", 1)[1]))  # not open: the API is down
    api_url = f"http://127.0.0.1:{forwarder.port}/api"
    event_id = str(event_uuid(SHOP, f"{hook}-1"))
    try:
        with receiver(tmp_path, database_url, api_url, prefect["server"].env, "receiver") as (_, url):
            assert deliver(url, product_id, f"{hook}-1").json() == {"status": "accepted"}
            wait(lambda: outbox(database_url)[0][3], "a failed send recorded")
            assert outbox(database_url) == [(event_id, False, outbox(database_url)[0][2], "ConnectError")]
            assert unsent(url) == 1
            forwarder.open()  # the API is back
            wait(lambda: unsent(url) == 0, "the relay to send the pending event")
            assert_delivered_once(prefect, str(product_id), event_id)
            assert deliver(url, product_id, f"{hook}-1").json() == {"status": "duplicate"}  # Shopify's retry
            assert deliver(url, product_id, f"{hook}-2").json() == {"status": "duplicate"}  # same body, new id
            time.sleep(2)
            assert unsent(url) == 0 and len(outbox(database_url)) == 1
        assert len(runs_by_product(prefect["server"].api_url, prefect["deployment_id"])[str(product_id)]) == 1
    finally:
        forwarder.close()


@pytest.mark.postgres
def test_receiver_killed_between_ack_and_send_is_sent_by_the_next(prefect, postgres_url, tmp_path):
    forwarder = Forwarder(int(prefect["server"].url.rsplit(":", 1)[1]))
    api_url = f"http://127.0.0.1:{forwarder.port}/api"
    event_id = str(event_uuid(SHOP, "wh-kill-1"))
    env = prefect["server"].env
    try:
        with receiver(tmp_path, postgres_url, api_url, env, "first") as (proc, url):
            assert deliver(url, 202, "wh-kill-1").json() == {"status": "accepted"}
            os.killpg(proc.pid, signal.SIGKILL)  # acknowledged, never sent
            proc.wait(10)
        assert [(e, sent) for e, sent, *_ in outbox(postgres_url)] == [(event_id, False)]
        forwarder.open()
        with receiver(tmp_path, postgres_url, api_url, env, "second") as (_, url):
            wait(lambda: unsent(url) == 0, "the start-up relay to send the pending event")
            assert_delivered_once(prefect, "202", event_id)
        with receiver(tmp_path, postgres_url, api_url, env, "third") as (_, url):
            time.sleep(3)  # its start-up relay has run: nothing is pending, nothing is resent
            assert unsent(url) == 0
        ((_, sent, attempts, _),) = outbox(postgres_url)
        assert sent and attempts >= 1
        assert len(stored_events(prefect["server"].api_url, event_id)) == 1
        assert len(runs_by_product(prefect["server"].api_url, prefect["deployment_id"])["202"]) == 1
    finally:
        forwarder.close()
