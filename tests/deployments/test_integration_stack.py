"""The production shape on one machine, end to end: `python -m infra.stack up` (what `make
up` runs) starts a real Prefect server on a free loopback port with its own PREFECT_HOME,
bootstraps it, runs `prefect deploy --all`, starts a CPU and a GPU-pool process worker and
the webhook receiver. A correctly signed Shopify webhook then becomes a Prefect event, the
deployment trigger starts shopify-refresh, which fetches the product image from a loopback
http.server (private addresses allowed for this test only), renders it through the
render-shard deployment on the GPU pool and exports it. A forged signature, an oversized
body and a replayed delivery are refused and start no flow run. `infra.stack down` stops it
all. About 1.5-2 minutes on two shared cores."""

import base64
import functools
import hashlib
import hmac
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from PIL import Image

from catalog.paths import sku_dirname
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shpss_integration_0123456789"
SHOP = "lightbox-demo.myshopify.com"
RUN_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def image_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("cdn")
    # The store's image at the size a store serves (the sample photo is 600 px wide: the
    # gate would rightly reject it as too small for a 2048 px Shopify image on CPU, and this
    # test is about the webhook -> export path, not the gate).
    with Image.open(EXAMPLES / "images" / "espresso-cup.png") as photo:
        photo.convert("RGB").resize((photo.width * 3, photo.height * 3), Image.LANCZOS).save(root / "cup.png")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cup.png"
    server.shutdown()
    thread.join(5)


def stack_cmd(env: dict, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.stack", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, model_dir):
    home = tmp_path_factory.mktemp("stack")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LIGHTBOX_"))}
    env.update(
        LIGHTBOX_STACK_HOME=str(home),
        LIGHTBOX_PREFECT_PORT=str(free_port()),
        LIGHTBOX_WEBHOOK_PORT=str(free_port()),
        LIGHTBOX_MODEL_DIR=str(model_dir),
        LIGHTBOX_SHOPIFY_WEBHOOK_SECRET=SECRET,
        LIGHTBOX_SHOPIFY_SHOPS=SHOP,  # the receiver refuses deliveries from any other shop
        PREFECT_UI_ENABLED="false",
    )
    started = time.monotonic()
    up = stack_cmd(env, "up")
    try:
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"
        yield {
            "env": env,
            "home": home,
            "up_seconds": time.monotonic() - started,
            "api": f"http://127.0.0.1:{env['LIGHTBOX_PREFECT_PORT']}/api",
            "webhook": f"http://127.0.0.1:{env['LIGHTBOX_WEBHOOK_PORT']}/webhooks/shopify",
        }
    finally:
        down = stack_cmd(env, "down")
        assert down.returncode == 0, down.stderr
        assert not list((home / "pids").glob("*.pid")), down.stdout
        with socket.socket() as probe:  # nothing listens on the server's port any more
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", int(env["LIGHTBOX_PREFECT_PORT"])))


def client(stack):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(stack["api"])


def product_body(product_id: int, image_url: str, pad: int = 0) -> bytes:
    body = {
        "id": product_id,
        "title": "Espresso cup",
        "updated_at": "2026-11-20T10:00:00+00:00",
        "images": [{"src": image_url}],
        "body_html": "x" * pad,
    }
    return json.dumps(body).encode()


def post(stack, body: bytes, webhook_id: str, secret: str = SECRET) -> httpx.Response:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return httpx.post(
        stack["webhook"],
        content=body,
        timeout=30,
        headers={
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Topic": "products/update",
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Triggered-At": "2026-11-20T10:00:01Z",
            "Content-Type": "application/json",
        },
    )


def refresh_runs(api) -> dict[str, list]:
    """shopify-refresh flow runs by the product id they were started for."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    runs = api.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["shopify-refresh"])))
    by_product: dict[str, list] = {}
    for run in runs:
        by_product.setdefault(str(run.parameters.get("product_id")), []).append(run)
    return by_product


def wait_final(api, run_id: UUID):
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = api.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(2)
    pytest.fail(f"flow run {run_id} did not finish within {RUN_TIMEOUT_S} s")


def test_signed_webhook_becomes_an_exported_image(stack, image_url):
    from prefect.client.schemas.actions import DeploymentUpdate

    with client(stack) as api:
        nightly = api.read_deployment_by_name("catalog-batch/nightly")
        for value in (
            nightly.parameters["manifest"],
            nightly.parameters["out_dir"],
            nightly.parameters["settings"]["data_dir"],
        ):
            assert Path(value).is_absolute() and Path(value).is_relative_to(stack["home"]), value
        reconcile = api.read_deployment_by_name("reconcile-shopify/hourly")
        assert [s.active for s in reconcile.schedules] == [False]  # no store configured here
        refresh = api.read_deployment_by_name("shopify-refresh/webhook")
        api.update_deployment(
            refresh.id, DeploymentUpdate(parameters={**refresh.parameters, "allow_private_urls": True})
        )  # loopback CDN

        forged = post(stack, product_body(9001, image_url), "wh-forged", secret="not-the-secret")
        oversized = post(stack, product_body(9002, image_url, pad=1_100_000), "wh-big")
        accepted = post(stack, product_body(4242, image_url), "wh-4242")
        replayed = post(stack, product_body(4242, image_url), "wh-4242")
        assert (forged.status_code, oversized.status_code) == (401, 413)
        assert accepted.json() == {"status": "accepted"} and replayed.json() == {"status": "duplicate"}

        deadline = time.monotonic() + 60
        while "4242" not in refresh_runs(api):
            assert time.monotonic() < deadline, "the trigger started no shopify-refresh run"
            time.sleep(1)
        (run,) = refresh_runs(api)["4242"]
        run = wait_final(api, run.id)
        assert run.state.is_completed(), f"{run.state.name}: {run.state.message}"
        assert run.work_queue_name == "standard"
        assert run.parameters["shop"] == SHOP and run.parameters["image_urls"] == [image_url]

        sku_dir = stack["home"] / "data" / "exports" / sku_dirname("lightbox-demo-4242")
        image = sku_dir / "shopify.jpg"
        assert image.is_file() and image.read_bytes()[:3] == b"\xff\xd8\xff"
        shards = [r for r in api.read_flow_runs() if r.name.startswith("render-")]
        assert shards and all(r.state.is_completed() for r in shards)
        gpu_pool = api.read_work_pool("lightbox-gpu")
        assert {r.work_queue_id for r in shards} <= {q.id for q in api.read_work_queues(work_pool_name=gpu_pool.name)}

        time.sleep(5)  # anything the refused deliveries could have started would exist by now
        runs = refresh_runs(api)
        assert set(runs) == {"4242"} and len(runs["4242"]) == 1


def test_stack_status_and_pids(stack):
    status = stack_cmd(stack["env"], "status")
    assert status.returncode == 0
    for name in ("worker-cpu", "worker-gpu", "webhook", "server"):
        assert f"{name}: running" in status.stdout
        assert (stack["home"] / "pids" / f"{name}.pid").is_file()
        assert (stack["home"] / "logs" / f"{name}.log").is_file()
    secret_file = stack["home"] / "webhook-secret"
    assert secret_file.read_text() == SECRET and oct(secret_file.stat().st_mode & 0o777) == "0o600"
    for log in (stack["home"] / "logs").iterdir():
        assert SECRET not in log.read_text(errors="replace"), log.name
