"""Prefect's zombie detection as bootstrap sets it up (infra/desired.zombie_automation), on a
real server with its triggers service: a flow run that sent a heartbeat and then fell
silent is marked Crashed; a running flow run that never sent one (heartbeats off) is not
touched. Workers send heartbeats every 30 s (infra/stack.py, the job templates); here the
automation waits 10 s instead of 120 and the heartbeat is posted to /api/events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from infra.desired import zombie_automation

pytestmark = pytest.mark.server
AFTER_S = 10
HEARTBEAT_TO_STATE_S = 2  # well inside AFTER_S


def _heartbeat(client, run_id) -> None:
    from prefect.events import Event

    event = Event(
        occurred=datetime.now(UTC),
        event="prefect.flow-run.heartbeat",
        resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"},
        id=uuid4(),
    )
    client.request("POST", "/events", json=[event.model_dump(mode="json")])


def test_a_run_whose_heartbeats_stop_is_marked_crashed(batch_deployment):
    """One wait, five runs that each sent a heartbeat and then fell silent: only the one
    still Running is Crashed. A batch suspended for review, a refresh handed over to a later
    window (Scheduled again) and a batch that ended in a named final state have no process
    and no heartbeat, rightly; a run that never sent a heartbeat is left alone too."""
    from datetime import UTC, datetime, timedelta

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running, Scheduled, Suspended

    from catalog.states import COMPLETED_WITH_REJECTIONS

    @flow(name="zombie-test")
    def idle():  # never run: the test only needs flow runs to hold states
        return None

    automation = zombie_automation(AFTER_S).model_copy(update={"name": f"zombie-test-{uuid4().hex[:6]}"})
    with batch_deployment.api(), get_client(sync_client=True) as client:
        automation_id = client.create_automation(automation)
        # a deployment on no work pool: the session's worker never picks its runs up
        deployment_id = client.create_deployment(flow_id=client.create_flow(idle), name=f"zombie-{uuid4().hex[:6]}")
        try:
            silent = client.create_flow_run(idle, name="zombie-silent")
            quiet = client.create_flow_run(idle, name="no-heartbeats")
            held = client.create_flow_run_from_deployment(deployment_id, name="held-for-review")
            later = client.create_flow_run(idle, name="handed-over")
            named = client.create_flow_run(idle, name="completed-with-rejections")
            for run in (silent, quiet, held, later, named):
                client.set_flow_run_state(run.id, Running(), force=True)
            for run in (silent, held, later, named):
                _heartbeat(client, run.id)  # then nothing: its process is gone
            # Prefect's triggers service handles two events at once: a state change posted in
            # the same instant as the heartbeat can be read before the heartbeat's window
            # opens, and is then not counted (CI saw the held run Crashed that way). A real
            # run's heartbeats are 30 s apart, so its last one almost always comes seconds
            # before its suspend; so do these (docs/ARCHITECTURE.md, Deployment: the rare case).
            time.sleep(HEARTBEAT_TO_STATE_S)
            client.set_flow_run_state(held.id, Suspended(timeout_seconds=3600, pause_key="review"), force=True)
            when = datetime.now(UTC) + timedelta(hours=6)
            client.set_flow_run_state(later.id, Scheduled(scheduled_time=when), force=True)
            client.set_flow_run_state(named.id, Completed(name=COMPLETED_WITH_REJECTIONS), force=True)
            deadline = time.monotonic() + AFTER_S + 90
            while time.monotonic() < deadline:
                state = client.read_flow_run(silent.id).state
                if state.is_crashed():
                    break
                time.sleep(2)
            assert state.is_crashed(), state
            assert "No heartbeat for 10 s" in state.message
            time.sleep(5)  # the others' windows closed at the same time as the silent one's
            assert client.read_flow_run(quiet.id).state.is_running()  # heartbeats off: left alone
            assert client.read_flow_run(held.id).state.is_paused()
            assert client.read_flow_run(later.id).state.is_scheduled()
            assert client.read_flow_run(named.id).state.name == COMPLETED_WITH_REJECTIONS
        finally:
            client.delete_automation(automation_id)
            client.delete_deployment(deployment_id)
