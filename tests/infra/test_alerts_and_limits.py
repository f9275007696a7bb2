"""What ops see, on a real Prefect server (the session's ``batch_deployment``: catalog-batch
deployed to a process pool, a worker running it) after ``python -m infra.bootstrap``:

- a batch with too many failures ends Failed, and the bootstrap's automation sends the
  notification to a webhook receiver on loopback;
- a batch with a failure under the share ends ``Completed with rejections``, named
  ``batch-<name>-<date>`` and tagged ``batch:<name>``, read back through the API;
- ``prefect deploy --all`` of prefect.yaml with the bootstrap's pools and queues: the queue
  limits that keep nightly batches and backfills from starving urgent and Shopify runs,
  the webhook deployment's enqueueing limit, the GPU cap on the GPU pool only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest

from tests.conftest import REPO
from tests.prefect_server import STICKER, small_manifest, start_batch, wait_for

pytestmark = pytest.mark.server
BROKEN = "BROKEN-NOT-IMAGE"
NOTIFY_DEADLINE_S = 90  # event -> trigger -> action -> webhook: seconds on a quiet server


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts/t0ken-{uuid4().hex[:8]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, words: list[str], deadline_s: float) -> dict:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                text = f"{body.get('subject')}\n{body.get('body')}"
                if all(w in text for w in words):
                    return body
            time.sleep(1)
        pytest.fail(f"no notification with {words} within {deadline_s} s; received: {self.bodies}")


@pytest.fixture(scope="module")
def bootstrapped(batch_deployment, tmp_path_factory):
    """Bootstrap run against the session server with the receiver as alert URL; the
    automations are deleted again at the end (the server outlives this module)."""
    receiver = Receiver()
    data = tmp_path_factory.mktemp("bootstrap-data")
    env = {**batch_deployment.server.env, "LIGHTBOX_ALERT_WEBHOOK_URL": receiver.url}
    argv = [sys.executable, "-m", "infra.bootstrap", "--data-dir", str(data), "--model-dir", str(data / "models")]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert receiver.url not in done.stdout + done.stderr
    yield receiver, env, data
    receiver.server.shutdown()
    from prefect.client.orchestration import get_client

    with batch_deployment.api(), get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if "lightbox" in automation.tags:
                client.delete_automation(automation.id)


def _read_run(deployed, run_id):
    from prefect.client.orchestration import get_client

    with deployed.api(), get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def test_too_many_failures_fail_the_run_and_notify(batch_deployment, bootstrapped, tmp_path, run_settings):
    receiver, _, _ = bootstrapped
    manifest = small_manifest(tmp_path / "catalog", (STICKER, BROKEN))
    settings = run_settings(data_dir=batch_deployment.root / "data")
    run_id = start_batch(batch_deployment, manifest, tmp_path / "out", settings, name="alerting")
    state = wait_for(batch_deployment, run_id, lambda s: s.is_final(), "final", timeout_s=300)
    assert state.is_failed() and "more than the 20 % allowed" in state.message, state
    run = _read_run(batch_deployment, run_id)
    body = receiver.wait_for([run.name, "Failed"], NOTIFY_DEADLINE_S)
    assert "more than the 20 % allowed" in body["body"]
    assert (tmp_path / "out" / "report.json").is_file()


def test_rejections_end_in_the_named_state(batch_deployment, bootstrapped, tmp_path, run_settings):
    manifest = small_manifest(tmp_path / "catalog", (STICKER, BROKEN))
    settings = run_settings(data_dir=batch_deployment.root / "data")
    run_id = start_batch(
        batch_deployment, manifest, tmp_path / "out", settings, name="nightly-eu", max_failed_share=0.5
    )
    state = wait_for(batch_deployment, run_id, lambda s: s.is_final(), "final", timeout_s=300)
    run = _read_run(batch_deployment, run_id)
    assert run.state.is_completed() and run.state.name == "Completed with rejections", state
    assert run.state.message.startswith("2 SKUs: ") and "1 failed" in run.state.message
    assert run.name == f"batch-nightly-eu-{run.expected_start_time:%Y-%m-%d}"
    assert "batch:nightly-eu" in run.tags


def test_deployed_queues_and_limits(batch_deployment, bootstrapped):
    """prefect.yaml deployed after bootstrap: the limits, read back through the API."""
    _, env, data = bootstrapped
    deploy = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=REPO,
        env={**env, "LIGHTBOX_ROOT": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    from prefect.client.orchestration import get_client

    with batch_deployment.api(), get_client(sync_client=True) as client:
        webhook = client.read_deployment_by_name("shopify-refresh/webhook")
        assert webhook.global_concurrency_limit is not None and webhook.global_concurrency_limit.limit == 2
        assert webhook.concurrency_options.collision_strategy == "ENQUEUE"
        nightly = client.read_deployment_by_name("catalog-batch/nightly")
        assert nightly.work_queue_name == "nightly"
        shards = client.read_deployment_by_name("render-shard/gpu")
        assert shards.global_concurrency_limit is None  # the GPU cap is the pool's
        assert client.read_work_pool("lightbox-gpu").concurrency_limit == 1
        cpu = client.read_work_pool("lightbox-cpu")
        limits = {q.name: q.concurrency_limit for q in client.read_work_queues(work_pool_name="lightbox-cpu")}
        assert limits["nightly"] == 1 and limits["backfill"] == 1
        assert limits["urgent"] is None and limits["standard"] >= 1
        # the capped queues together leave one slot that only urgent runs can take
        assert cpu.concurrency_limit - limits["nightly"] - limits["backfill"] - limits["standard"] == 1
        assert not [limit for limit in client.read_global_concurrency_limits() if limit.name == "gpu-slots"]
