"""Create, or bring up to date, what Lightbox's deployments need on a Prefect server.

    python -m infra.bootstrap [--pool-type process|kubernetes|docker] [--gpu-slots 1] [--cpu-runs 6]
                              [--data-dir .lightbox] [--model-dir DIR] [--gpu-device cpu|cuda]
                              [--database-url URL] [--export-dir DIR] [--dry-run]

Idempotent: each object is compared with what the server holds and only written when it
differs, so a second run reports every line ``unchanged`` and changes nothing.

* work pools ``lightbox-cpu`` and ``lightbox-gpu`` with the base job templates in
  ``infra/job_templates/`` (``process-*.json`` for one machine; Kubernetes and Docker
  templates with ``--pool-type``); the CPU pool's concurrency limit is ``--cpu-runs``, the
  GPU pool's ``--gpu-slots`` (the one GPU cap: a ``gpu-slots`` global limit an older
  bootstrap made is removed);
* work queues ``urgent``, ``standard``, ``nightly``, ``backfill`` with priorities 1-4 on
  each pool (Prefect keeps priorities unique and sequential: the pool's ``default`` queue
  ends last); on the CPU pool ``nightly`` and ``backfill`` may run one flow run each and
  ``standard`` (Shopify refreshes, on-demand batches) ``--cpu-runs`` minus three, so
  nightly batches and backfills never take the slots of Shopify-triggered runs, and
  whatever fills those queues one slot stays for urgent runs
  (``tests/infra/test_queue_priority.py``);
* with ``LIGHTBOX_ALERT_WEBHOOK_URL`` set: the notification block ``custom-webhook/
  lightbox-alerts`` (Prefect's generic webhook; the URL kept among its secrets) and two
  automations: a catalog batch Failed or Crashed, and one waiting for review;
* the variables ``lightbox_data_dir`` (work files, caches) and ``lightbox_inbox`` (the
  folder the nightly batch reads), which prefect.yaml reads at deploy time;
* the Lightbox block types, and the blocks the deployments name: ``CatalogDatabase``
  "catalog", ``ModelStore`` "cpu" and "gpu", ``LocalFolderDestination`` "exports", an
  ``S3Destination`` "assets" when ``LIGHTBOX_S3_BUCKET`` is set, and a ``ShopifyStore``
  "store" when ``LIGHTBOX_SHOPIFY_SHOP`` is set; the catalog schema is migrated.

Secrets come from the environment only (never flags, which ``ps`` shows):
``LIGHTBOX_DATABASE_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``LIGHTBOX_SHOPIFY_ACCESS_TOKEN``, ``LIGHTBOX_SHOPIFY_WEBHOOK_SECRET``,
``LIGHTBOX_ALERT_WEBHOOK_URL`` (a chat webhook URL often is its own token). Output names
objects and what happened to them, never a value; an error message has the database URL
shown without its password, and any secret's value masked (``scrub``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import yaml
from prefect.blocks.core import Block
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import (
    VariableCreate,
    VariableUpdate,
    WorkPoolCreate,
    WorkPoolUpdate,
)
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound
from sqlalchemy.exc import SQLAlchemyError

from catalog.db import redacted
from catalog.db import scrub as scrub_url
from infra.desired import (
    ALERT_BLOCK,
    ZOMBIE_AFTER_S,
    alert_block,
    block_types,
    desired_automations,
    desired_blocks,
    stack_variables,
    zombie_automation,
)

TEMPLATES = Path(__file__).parent / "job_templates"
POOLS = {"lightbox-cpu": "cpu", "lightbox-gpu": "gpu"}
QUEUES = {  # name -> (priority, description)
    "urgent": (1, "Urgent SKUs and Shopify refreshes marked urgent: taken before anything else"),
    "standard": (2, "Shopify refreshes, day-time batches, batches planned into the off-peak window"),
    "nightly": (3, "The nightly batch: one run at a time on the CPU pool"),
    "backfill": (4, "Re-shoots of whole catalogs: one run at a time, only when nothing else waits"),
}
# Flow runs at once per (pool role, queue); absent: no limit of its own. Prefect's queue and
# pool limits cap, they do not reserve: a queue without a limit may take every free slot of
# its pool. So on the CPU pool every queue but ``urgent`` has a limit, and together they
# leave URGENT_HEADROOM slots that only urgent runs can take: nightly batches and backfills
# one run each, ``standard`` (Shopify refreshes, on-demand batches, reconciliation) the rest
# (``queue_limits``). When slots free up, the server hands them out by queue priority, so a
# waiting urgent run is always next. The GPU pool (``--gpu-slots``, often 1) cannot keep a
# slot aside; there priorities alone put urgent shards first when a slot frees.
QUEUE_LIMITS = {("cpu", "nightly"): 1, ("cpu", "backfill"): 1}
URGENT_HEADROOM = 1
MIN_CPU_RUNS = URGENT_HEADROOM + 1 + sum(QUEUE_LIMITS.values())  # standard gets at least one
DEFAULT_CPU_RUNS = 6  # urgent 1 of its own, nightly 1, backfill 1, standard 3
OLD_GPU_LIMIT = "gpu-slots"  # the global limit older bootstraps made: the GPU pool's limit replaces it
SECRET_VARIABLES = (
    "LIGHTBOX_ALERT_WEBHOOK_URL",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LIGHTBOX_SHOPIFY_ACCESS_TOKEN",
    "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET",
    "PGPASSWORD",
)
POOL_TYPES = ("process", "kubernetes", "docker")


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # created | updated | unchanged | skipped (planned, in --dry-run)

    def line(self) -> str:
        return f"{self.kind:<18} {self.name:<34} {self.action}"


def load_template(path: Path) -> dict[str, Any]:
    """A base job template from a .json or .yaml file, checked for its two sections."""
    text = path.read_text()
    template = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(template, dict) or set(template) != {"job_configuration", "variables"}:
        raise ValueError(f"{path}: a base job template has exactly job_configuration and variables")
    return template


def queue_limits(cpu_runs: int) -> dict[tuple[str, str], int]:
    """(pool role, queue) -> its concurrency limit. ``standard`` on the CPU pool gets what the
    pool's ``cpu_runs`` leaves after nightly, backfill and the urgent headroom, so all the
    limited queues together hold at most ``cpu_runs - URGENT_HEADROOM`` slots."""
    standard = cpu_runs - URGENT_HEADROOM - sum(QUEUE_LIMITS.values())
    if standard < 1:
        raise ValueError(f"--cpu-runs {cpu_runs} leaves no slot for the standard queue (at least {MIN_CPU_RUNS})")
    return {**QUEUE_LIMITS, ("cpu", "standard"): standard}


def template_for(pool_type: str, role: str) -> dict[str, Any]:
    if pool_type not in POOL_TYPES:
        raise ValueError(f"pool type {pool_type!r}: use one of {', '.join(POOL_TYPES)}")
    suffix = ".json" if pool_type == "process" else ".yaml"
    return load_template(TEMPLATES / f"{pool_type}-{role}{suffix}")


async def ensure_pool(
    client: PrefectClient, name: str, pool_type: str, template: dict, concurrency_limit: int | None, dry_run: bool
) -> Change:
    description = f"Lightbox {POOLS[name].upper()} pool"
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        if not dry_run:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=pool_type,
                    base_job_template=template,
                    concurrency_limit=concurrency_limit,
                    description=description,
                )
            )
        return Change("work pool", name, "skipped" if dry_run else "created")
    if pool.type != pool_type:
        raise ValueError(
            f"work pool {name!r} exists with type {pool.type!r}, not {pool_type!r}: "
            f"delete it (prefect work-pool delete {name}) or pass --pool-type {pool.type}"
        )
    wanted = dict(base_job_template=template, concurrency_limit=concurrency_limit, description=description)
    current = dict(
        base_job_template=pool.base_job_template, concurrency_limit=pool.concurrency_limit, description=pool.description
    )
    if current == wanted:
        return Change("work pool", name, "unchanged")
    if not dry_run:
        await client.update_work_pool(name, WorkPoolUpdate(**wanted))
    return Change("work pool", name, "skipped" if dry_run else "updated")


async def ensure_queue(
    client: PrefectClient, pool: str, name: str, priority: int, description: str, limit: int | None, dry_run: bool
) -> Change:
    label = f"{pool}/{name}"
    try:
        queue = await client.read_work_queue_by_name(name, work_pool_name=pool)
    except ObjectNotFound:
        if not dry_run:
            await client.create_work_queue(
                name, description=description, priority=priority, work_pool_name=pool, concurrency_limit=limit
            )
        return Change("work queue", label, "skipped" if dry_run else "created")
    if (queue.priority, queue.description, queue.concurrency_limit) == (priority, description, limit):
        return Change("work queue", label, "unchanged")
    if not dry_run:
        await client.update_work_queue(queue.id, priority=priority, description=description, concurrency_limit=limit)
    return Change("work queue", label, "skipped" if dry_run else "updated")


async def remove_limit(client: PrefectClient, name: str, dry_run: bool) -> Change | None:
    """Delete a global concurrency limit this bootstrap no longer wants; None if absent."""
    try:
        await client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    if not dry_run:
        await client.delete_global_concurrency_limit_by_name(name)
    return Change("concurrency limit", name, "skipped" if dry_run else "removed")


def _comparable(automation: Any) -> dict:
    """An automation's definition without the ids and timestamps the server adds."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    data = automation.model_dump(mode="json", include=set(AutomationCore.model_fields))
    data["trigger"]["expect"] = sorted(data["trigger"]["expect"])
    data["trigger"]["after"] = sorted(data["trigger"]["after"])
    return strip(data)


async def ensure_automation(client: PrefectClient, wanted: AutomationCore, dry_run: bool) -> Change:
    """One automation per name: created, or replaced in place when its definition drifted."""
    found = await client.read_automations_by_name(wanted.name)
    if found and _comparable(found[0]) == _comparable(wanted):
        return Change("automation", wanted.name, "unchanged")
    if not dry_run:
        if found:
            await client.update_automation(found[0].id, wanted)
        else:
            await client.create_automation(wanted)
    return Change("automation", wanted.name, "skipped" if dry_run else ("updated" if found else "created"))


async def ensure_alerts(client: PrefectClient, env: dict[str, str], dry_run: bool) -> list[Change]:
    """The alert block and the automations that notify through it (none without a URL)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = alert_block(env)
    if block is None:
        return []
    changes = [await ensure_block_type(client, CustomWebhookNotificationBlock, dry_run)]
    changes.append(await ensure_block(client, block, ALERT_BLOCK, dry_run))
    try:
        document = await client.read_block_document_by_name(
            ALERT_BLOCK, block.get_block_type_slug(), include_secrets=False
        )
    except ObjectNotFound:  # --dry-run before the first run: nothing to point the actions at
        return changes + [Change("automation", a.name, "skipped") for a in desired_automations(uuid4())]
    for automation in desired_automations(document.id):
        changes.append(await ensure_automation(client, automation, dry_run))
    return changes


async def ensure_variable(client: PrefectClient, name: str, value: str, dry_run: bool) -> Change:
    current = await client.read_variable_by_name(name)
    if current is not None and current.value == value:
        return Change("variable", name, "unchanged")
    if not dry_run:
        if current is None:
            await client.create_variable(VariableCreate(name=name, value=value, tags=["lightbox"]))
        else:
            await client.update_variable(VariableUpdate(name=name, value=value, tags=["lightbox"]))
    return Change("variable", name, "skipped" if dry_run else ("created" if current is None else "updated"))


async def ensure_block_type(client: PrefectClient, cls: type[Block], dry_run: bool) -> Change:
    """Register a block type and its schema unless the server has this exact schema."""
    name = cls.get_block_type_slug()
    try:
        await client.read_block_schema_by_checksum(cls._calculate_schema_checksum())
        return Change("block type", name, "unchanged")
    except ObjectNotFound:
        pass
    if not dry_run:
        await cls.aregister_type_and_schema(client=client)
    return Change("block type", name, "skipped" if dry_run else "registered")


def _plain(block: Block) -> Any:
    """A block's field values with secrets revealed, for comparison only (never output);
    without the document ids and names a loaded block carries (nested blocks too)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.startswith("_")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(block.model_dump(mode="json", context={"include_secrets": True}))


async def ensure_block(client: PrefectClient, block: Block, name: str, dry_run: bool) -> Change:
    slug = block.get_block_type_slug()
    label = f"{slug}/{name}"
    try:
        await client.read_block_document_by_name(name, slug, include_secrets=False)
    except ObjectNotFound:
        current = None
    else:
        current = await type(block).aload(name, client=client)
    if current is not None and _plain(current) == _plain(block):
        return Change("block", label, "unchanged")
    if not dry_run:
        await block.asave(name, overwrite=True, client=client)
    if current is None:
        return Change("block", label, "skipped" if dry_run else "created")
    return Change("block", label, "skipped" if dry_run else "updated")


async def ensure_catalog_schema(database: Any, dry_run: bool) -> Change:
    """Migrate the catalog database to the newest revision when it is behind."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from catalog.db import alembic_config, get_engine

    url = database.get_url()
    label = redacted(url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        with get_engine(url).connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise RuntimeError(f"catalog database {label} does not answer: {scrub_url(cause, url)}") from exc
    if current == head:
        return Change("catalog schema", label, "unchanged")
    if not dry_run:
        await asyncio.to_thread(database.migrate)
    return Change("catalog schema", label, "skipped" if dry_run else ("created" if current is None else "updated"))


async def bootstrap(args: argparse.Namespace, env: dict[str, str]) -> list[Change]:
    """Every object, in order; raises ValueError/RuntimeError with a one-line reason."""
    blocks = desired_blocks(args, env)  # bad configuration fails before anything is written
    changes: list[Change] = []
    async with get_client() as client:
        unhealthy = await client.api_healthcheck()
        if unhealthy is not None:
            raise RuntimeError(f"the Prefect API at {client.api_url} does not answer: {unhealthy}")
        for pool, role in POOLS.items():
            template = template_for(args.pool_type, role)
            slots = args.gpu_slots if role == "gpu" else args.cpu_runs
            changes.append(await ensure_pool(client, pool, args.pool_type, template, slots, args.dry_run))
            pool_planned = args.dry_run and changes[-1].action == "skipped"
            limits = queue_limits(args.cpu_runs)
            for queue, (priority, description) in QUEUES.items():
                if pool_planned:
                    changes.append(Change("work queue", f"{pool}/{queue}", "skipped"))
                    continue
                limit = limits.get((role, queue))
                changes.append(await ensure_queue(client, pool, queue, priority, description, limit, args.dry_run))
        removed = await remove_limit(client, OLD_GPU_LIMIT, args.dry_run)
        changes += [removed] if removed else []
        for name, value in stack_variables(args).items():
            changes.append(await ensure_variable(client, name, value, args.dry_run))
        for cls in block_types():
            changes.append(await ensure_block_type(client, cls, args.dry_run))
        for block, name in blocks:
            changes.append(await ensure_block(client, block, name, args.dry_run))
        changes.append(await ensure_automation(client, zombie_automation(args.zombie_after), args.dry_run))
        changes += await ensure_alerts(client, env, args.dry_run)
    changes.append(await ensure_catalog_schema(blocks[0][0], args.dry_run))
    return changes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infra.bootstrap", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pool-type",
        choices=POOL_TYPES,
        default="process",
        help="work pool type and job templates (default: process, one machine)",
    )
    p.add_argument("--gpu-slots", type=int, default=1, help="GPU flow runs at once: the GPU pool's concurrency limit")
    p.add_argument(
        "--cpu-runs",
        type=int,
        default=DEFAULT_CPU_RUNS,
        help=f"CPU flow runs at once: the CPU pool's concurrency limit (>= {MIN_CPU_RUNS}; default "
        f"{DEFAULT_CPU_RUNS}): nightly and backfill take one each at most, standard what is left but "
        f"{URGENT_HEADROOM}, which only urgent runs can take",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".lightbox"),
        help="default home of the SQLite catalog and the exports folder",
    )
    p.add_argument(
        "--model-dir", type=Path, default=Path(".lightbox/models"), help="weights for the CPU pool (ModelStore 'cpu')"
    )
    p.add_argument("--gpu-model-dir", type=Path, help="weights for the GPU pool (default: --model-dir)")
    p.add_argument(
        "--gpu-device",
        default="cpu",
        help="device of ModelStore 'gpu': cuda on a GPU host (default cpu: one CPU machine)",
    )
    p.add_argument("--gpu-segmenter", default="u2netp")
    p.add_argument("--gpu-upscaler", default="auto")
    p.add_argument(
        "--inbox", type=Path, help="folder the nightly batch reads (variable lightbox_inbox; default DATA_DIR/inbox)"
    )
    p.add_argument("--export-dir", type=Path, help="LocalFolderDestination 'exports' (default DATA_DIR/exports)")
    p.add_argument(
        "--zombie-after",
        type=int,
        default=ZOMBIE_AFTER_S,
        help=f"seconds without a heartbeat before a flow run is marked Crashed (default {ZOMBIE_AFTER_S})",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    return p


def scrub(text: str, env: dict[str, str]) -> str:
    """``text`` with the catalog URL's password and every secret variable's value masked."""
    database_url = env.get("LIGHTBOX_DATABASE_URL", "")
    if database_url:
        text = scrub_url(text, database_url)
    for name in SECRET_VARIABLES:
        if len(env.get(name) or "") >= 4:  # a 1-3 character "secret" would mask ordinary words
            text = text.replace(env[name], "***")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        sys.stderr.write("bootstrap: PREFECT_API_URL is not set: point it at the Prefect server\n")
        return 2
    if args.gpu_slots < 1:
        sys.stderr.write(f"bootstrap: --gpu-slots must be >= 1, got {args.gpu_slots}\n")
        return 2
    if args.cpu_runs < MIN_CPU_RUNS:
        sys.stderr.write(
            f"bootstrap: --cpu-runs must be >= {MIN_CPU_RUNS} (nightly, backfill and standard runs must leave "
            f"{URGENT_HEADROOM} slot for urgent ones), got {args.cpu_runs}\n"
        )
        return 2
    env = dict(os.environ)
    try:
        changes = asyncio.run(bootstrap(args, env))
    except (ValueError, RuntimeError) as exc:
        sys.stderr.write(f"bootstrap: {scrub(str(exc), env)}\n")
        return 2
    for change in changes:
        sys.stdout.write(change.line() + "\n")
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    sys.stdout.write("bootstrap: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
