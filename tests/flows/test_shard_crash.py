"""A render shard whose process is killed mid-run: the worker reports the run Crashed, the
batch queues the shard again (flows/dispatch.py, MAX_SHARD_RESUBMITS) and finishes with
every SKU in a final state, nothing lost.

A real Prefect server; ``render-shard`` deployed to its own process pool with a worker in
a separate process (sharing this test's folders); the batch runs in this process and queues
its shards there. The kill is a real SIGKILL of the shard's flow-run process, found by the
``PREFECT__FLOW_RUN_ID`` its worker put in its environment.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.prefect_server import REPO, run_process_worker, small_manifest

pytestmark = [pytest.mark.server, pytest.mark.usefixtures("prefect_harness")]
SKUS = ("CUP-ESPRESSO-01",)
POOL = "lightbox-test-crash"


def _deploy_shards() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    from flows.render_shard import render_shard

    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name=POOL, type="process", base_job_template=ProcessWorker.get_default_base_job_template())
        )
    flow = render_shard.from_source(source=str(REPO), entrypoint="flows/render_shard.py:render_shard")
    flow.deploy(
        name="crash-test", work_pool_name=POOL, build=False, push=False, print_next_steps=False, ignore_warnings=True
    )
    return f"{flow.name}/crash-test"


def _process_of(flow_run_id: str) -> int | None:
    """The pid whose environment names this flow run (the worker's child), if any."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


class ShardKiller(threading.Thread):
    """Waits for the first running render-shard run of the server and SIGKILLs its process."""

    def __init__(self, api_url: str) -> None:
        super().__init__(daemon=True)
        self.api_url, self.killed, self.stop = api_url, None, threading.Event()

    def run(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            while not self.stop.is_set() and self.killed is None:
                runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["render-shard"])))
                for run in runs:
                    if run.state is not None and run.state.is_running():
                        pid = _process_of(str(run.id))
                        if pid is not None:
                            os.kill(pid, signal.SIGKILL)
                            self.killed = run.id
                            return
                time.sleep(0.2)


def test_a_killed_shard_is_resubmitted_and_the_batch_finishes(batch_deployment, tmp_path, run_settings, model_dir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from flows.catalog_batch import catalog_batch

    server = batch_deployment.server
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        shards = _deploy_shards()
    manifest = small_manifest(tmp_path / "catalog", SKUS)
    settings = run_settings(data_dir=tmp_path / "data", model_dir=model_dir)
    results = tmp_path / "results"  # one folder: the shard's worker writes, this process reads
    killer = ShardKiller(server.api_url)
    (tmp_path / "node").mkdir()
    with run_process_worker(server, POOL, tmp_path / "node", {"PREFECT_LOCAL_STORAGE_PATH": str(results)}):
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_LOCAL_STORAGE_PATH: str(results)}):
            killer.start()
            try:
                report = catalog_batch(
                    manifest=str(manifest),
                    out_dir=str(tmp_path / "out"),
                    settings=settings,
                    profiles=["shopify"],
                    render_deployment=shards,
                    shard_size=1,
                    max_failed_share=1.0,
                )
            finally:
                killer.stop.set()
                killer.join(timeout=10)
    assert killer.killed is not None, "no shard run was seen running to kill"
    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["render-shard"])))
    ours = {r.id: r for r in runs if r.parameters.get("batch_id") == report["batch_id"]}
    assert ours[killer.killed].state.is_crashed(), ours[killer.killed].state
    again = [r for r in ours.values() if r.id != killer.killed]
    assert len(again) == 1 and again[0].state.is_completed(), [(r.name, r.state.name) for r in ours.values()]
    (entry,) = report["skus"]
    assert entry["state"] in ("exported", "rejected"), entry  # rendered and graded, not failed by the crash
    assert "crash" not in (entry["reason"] or "").lower()
