"""Urgent runs are never starved (issue 13): on a real Prefect server set up by
``python -m infra.bootstrap`` (pools, queues, priorities and limits as in production) with a
real process worker on ``lightbox-cpu``, fill the nightly, backfill and standard queues with
runs that hold their slot, then submit one run to ``urgent``: it reaches Running while runs
queued before it on standard, nightly and backfill are still waiting.

Prefect's queue limits cap a queue, they do not reserve slots for another one; the
bootstrap's limits on every queue but urgent (``infra.bootstrap.queue_limits``) add up to
the pool's limit minus one, and that one slot is what this test shows the urgent run takes.
The flow is ``tests/infra/queue_sleeper.py``: it sleeps until the test lets it go.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from infra.bootstrap import DEFAULT_CPU_RUNS, URGENT_HEADROOM, queue_limits
from tests.prefect_server import REPO, PrefectServer, run_prefect_server, run_process_worker

pytestmark = pytest.mark.server
POOL = "lightbox-cpu"
DEPLOYMENT = "queue-sleeper/cpu"
BUSY = {"RUNNING", "PENDING"}
START_DEADLINE_S = 240  # a flow-run process starting on a loaded 2-core machine
URGENT_DEADLINE_S = 180  # the worker polls every second; the rest is the process starting


def _api(server: PrefectServer):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: server.api_url})


@pytest.fixture(scope="module")
def cpu_pool(tmp_path_factory) -> Iterator[tuple[PrefectServer, Path]]:
    """Server, bootstrap (default --cpu-runs), the sleeper deployed to lightbox-cpu/standard,
    a process worker on the pool."""
    root = tmp_path_factory.mktemp("queue-priority")
    with run_prefect_server(root) as server:
        data = root / "data"
        done = subprocess.run(
            [sys.executable, "-m", "infra.bootstrap", "--data-dir", str(data), "--model-dir", str(data / "models")],
            cwd=REPO,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        from tests.infra.queue_sleeper import sleeper

        with _api(server):
            flow = sleeper.from_source(source=str(REPO), entrypoint="tests/infra/queue_sleeper.py:sleeper")
            flow.deploy(
                name="cpu",
                work_pool_name=POOL,
                work_queue_name="standard",
                build=False,
                push=False,
                print_next_steps=False,
                ignore_warnings=True,
            )
        with run_process_worker(server, POOL, root, {"PREFECT_LOGGING_LEVEL": "WARNING"}) as log:
            yield server, log


def _submit(server: PrefectServer, queue: str, release: Path) -> UUID:
    from prefect.deployments import run_deployment

    with _api(server):
        run = run_deployment(
            DEPLOYMENT, parameters={"release": str(release)}, work_queue_name=queue, timeout=0, as_subflow=False
        )
    return run.id


def _states(server: PrefectServer, ids: dict[UUID, str]) -> dict[UUID, str]:
    from prefect.client.orchestration import get_client

    with _api(server), get_client(sync_client=True) as client:
        return {run_id: client.read_flow_run(run_id).state_type.value for run_id in ids}


def _wait(server, ids, until, what: str, log: Path, timeout_s: float = START_DEADLINE_S) -> dict[UUID, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        states = _states(server, ids)
        if until(states):
            return states
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"not {what} within {timeout_s} s: {_by_queue(ids, states)}\n--- worker log ---\n{tail}")
        time.sleep(1)


def _by_queue(ids: dict[UUID, str], states: dict[UUID, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for run_id, queue in ids.items():
        out.setdefault(queue, []).append(states[run_id])
    return out


def test_configured_limits_leave_urgent_a_slot():
    limits = queue_limits(DEFAULT_CPU_RUNS)
    cpu = {queue: n for (role, queue), n in limits.items() if role == "cpu"}
    assert set(cpu) == {"standard", "nightly", "backfill"}  # every queue but urgent is capped
    assert sum(cpu.values()) == DEFAULT_CPU_RUNS - URGENT_HEADROOM and cpu["standard"] >= 2
    with pytest.raises(ValueError, match="no slot for the standard queue"):
        queue_limits(3)


def test_urgent_run_starts_while_the_other_queues_are_full(cpu_pool, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    server, log = cpu_pool
    with _api(server), get_client(sync_client=True) as client:
        pool = client.read_work_pool(POOL)
        limits = {q.name: q.concurrency_limit for q in client.read_work_queues(work_pool_name=POOL)}
    assert pool.concurrency_limit == DEFAULT_CPU_RUNS
    # as many runs as each queue may start (a queue without a limit: what the others leave of
    # the pool), plus one that must wait
    others = ("nightly", "backfill")
    busy = {q: limits[q] for q in others}
    busy["standard"] = limits["standard"] or pool.concurrency_limit - sum(busy.values())
    wanted = {queue: n + 1 for queue, n in busy.items()}
    release = tmp_path / "release"
    ids: dict[UUID, str] = {}
    try:
        for queue, count in wanted.items():
            for _ in range(count):
                ids[_submit(server, queue, release)] = queue

        def filled(states):  # every queue holds as many busy runs as it may
            by_queue = _by_queue(ids, states)
            return all(sum(s in BUSY for s in by_queue[q]) == busy[q] for q in wanted)

        _wait(server, ids, filled, "filled up to the queue limits", log)
        time.sleep(5)  # several worker polls: nothing else starts
        states = _states(server, ids)
        assert filled(states), _by_queue(ids, states)
        queued = [run_id for run_id, state in states.items() if state == "SCHEDULED"]
        assert len(queued) == len(wanted)  # one per queue, submitted before the urgent run

        urgent = _submit(server, "urgent", release)
        ids[urgent] = "urgent"
        states = _wait(server, ids, lambda s: s[urgent] == "RUNNING", "urgent Running", log, URGENT_DEADLINE_S)
        assert all(states[run_id] == "SCHEDULED" for run_id in queued), _by_queue(ids, states)
        # the urgent run took the slot the limits leave: the pool is now full
        assert sum(s in BUSY for s in states.values()) == pool.concurrency_limit
    finally:
        release.touch()
        with _api(server), get_client(sync_client=True) as client:
            for run_id in ids:
                if client.read_flow_run(run_id).state_type.value == "SCHEDULED":
                    client.set_flow_run_state(run_id, Cancelled(message="test over"), force=True)
    _wait(server, ids, lambda s: all(v in {"COMPLETED", "CANCELLED"} for v in s.values()), "all ended", log)
