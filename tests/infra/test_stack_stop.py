"""``make down`` stops a Prefect process worker in seconds while a run it just picked up is
starting or running (infra/stack.stop_worker): a real worker, a real catalog-batch run on
the session's server (tests/prefect_server.py). Before, the worker answered SIGTERM by
waiting for the run, which lived in a session of its own, and was killed after 30 s."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from infra.processes import group_alive
from infra.stack import descendants, stop_worker
from tests.conftest import REPO
from tests.prefect_server import STICKER, small_manifest

pytestmark = pytest.mark.server
POOL, DEPLOYMENT = "stop-test", "stop-test"


@pytest.mark.parametrize("when", ["PENDING", "RUNNING"])
def test_a_worker_with_a_run_in_flight_stops_in_seconds(batch_deployment, tmp_path, run_settings, when):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment
    from prefect.workers.process import ProcessWorker

    from flows.catalog_batch import catalog_batch

    deployed = batch_deployment
    with deployed.api(), get_client(sync_client=True) as client:
        if not any(p.name == POOL for p in client.read_work_pools()):
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process", base_job_template=template))
            flow = catalog_batch.from_source(source=str(REPO), entrypoint="flows/catalog_batch.py:catalog_batch")
            flow.deploy(
                name=DEPLOYMENT,
                work_pool_name=POOL,
                build=False,
                push=False,
                print_next_steps=False,
                ignore_warnings=True,
            )
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"],
        env={
            **deployed.server.env,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "results"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO,
    )
    try:
        settings = run_settings(data_dir=tmp_path / "data")
        manifest = small_manifest(tmp_path / "catalog", (STICKER,))
        with deployed.api():
            run = run_deployment(
                f"catalog-batch/{DEPLOYMENT}",
                timeout=0,
                parameters=dict(
                    manifest=str(manifest),
                    out_dir=str(tmp_path / "out"),
                    settings=settings.model_dump(mode="json"),
                    profiles=["shopify"],
                ),
            )
        deadline = time.monotonic() + 120
        with deployed.api(), get_client(sync_client=True) as client:
            while (state := client.read_flow_run(run.id).state).type.value != when:
                assert not state.is_final(), f"run ended {state.name} before the stop: {state.message}"
                assert time.monotonic() < deadline, f"the worker never made the run {when}"
                time.sleep(0.2)
        flow_runs = descendants(worker.pid)
        # reap the worker when it exits, as init does for the stack's (a zombie is still "alive")
        threading.Thread(target=worker.wait, daemon=True).start()
        started = time.monotonic()
        outcome = stop_worker(worker.pid, timeout_s=30)
        took = time.monotonic() - started
        assert outcome.startswith("stopped") and took < 15, (outcome, took, (tmp_path / "worker.log").read_text())
        assert not group_alive(worker.pid)
        assert not [pid for pid in flow_runs if os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid)]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, 9)
        worker.wait(10)
        log.close()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((line for line in status if line.startswith("State:")), "").lower()
    except OSError:
        return ""


def test_a_stop_that_runs_out_of_time_names_what_held_it():
    """A worker group that ignores SIGTERM is killed at the timeout, and the outcome lists the
    processes it waited on with their state (a zombie counts as alive to a signal): what a
    flaky stop of a run in flight needs to be told apart."""
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        outcome = stop_worker(proc.pid, timeout_s=1.0)
        assert outcome.startswith("killed after 1 s (") and f"{proc.pid} S " in outcome, outcome
        assert "-c import signal, time" in outcome  # its command line, cut at 80 characters
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
