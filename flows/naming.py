"""How ops find a batch's runs: run names with the date, ``batch:<name>`` tags.

A nightly run is ``batch-nightly-2026-12-02`` (the date it was scheduled for, UTC), its
shard runs ``render-nightly-2026-12-02-0``, ``-1``...; the batch run, its task runs and its
shard runs all carry the tag ``batch:nightly``, so the UI's tag filter shows one night.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

TAG_PREFIX = "batch:"


def run_date() -> str:
    """The date this run was scheduled for (its expected start, UTC); today for a direct call."""
    when = flow_run.scheduled_start_time or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def batch_run_name() -> str:
    """``flow_run_name`` of catalog-batch: ``batch-<name>-<YYYY-MM-DD>``."""
    return f"batch-{flow_run.parameters.get('name', 'catalog')}-{run_date()}"


def shard_run_name() -> str:
    """``flow_run_name`` of render-shard: ``render-<batch name>-<date>-<shard index>``."""
    params = flow_run.parameters
    return (
        f"render-{params.get('batch_name') or params.get('batch_id', '')[:8]}-{run_date()}-{params.get('shard_index')}"
    )


def batch_tag(name: str) -> str:
    return f"{TAG_PREFIX}{name}"


def tag_this_run(*tags: str) -> None:
    """Add ``tags`` to the current flow run (a deployment's or caller's tags stay). A no-op
    outside a flow run."""
    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id).tags or []
        wanted = list(dict.fromkeys([*current, *tags]))
        if wanted != current:
            client.update_flow_run(run_id, tags=wanted)
