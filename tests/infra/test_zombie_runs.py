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
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    @flow(name="zombie-test")
    def idle():  # never run: the test only needs flow runs to hold states
        return None

    automation = zombie_automation(AFTER_S).model_copy(update={"name": f"zombie-test-{uuid4().hex[:6]}"})
    with batch_deployment.api(), get_client(sync_client=True) as client:
        automation_id = client.create_automation(automation)
        try:
            silent = client.create_flow_run(idle, name="zombie-silent")
            quiet = client.create_flow_run(idle, name="no-heartbeats")
            for run in (silent, quiet):
                client.set_flow_run_state(run.id, Running(), force=True)
            _heartbeat(client, silent.id)  # then nothing: its process is gone
            deadline = time.monotonic() + AFTER_S + 90
            while time.monotonic() < deadline:
                state = client.read_flow_run(silent.id).state
                if state.is_crashed():
                    break
                time.sleep(2)
            assert state.is_crashed(), state
            assert "No heartbeat for 10 s" in state.message
            assert client.read_flow_run(quiet.id).state.is_running()  # heartbeats off: left alone
        finally:
            client.delete_automation(automation_id)
