"""What bootstrap saves, built from its flags and the environment: the blocks and the
variables prefect.yaml names. Secrets come from the environment only."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING
from uuid import UUID

from prefect.blocks.core import Block

from catalog.states import COMPLETED_WITH_REJECTIONS, HELD_FOR_REVIEW

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore


def stack_variables(args: argparse.Namespace) -> dict[str, str]:
    """Prefect variables prefect.yaml reads at deploy time (``{{ prefect.variables.* }}``)."""
    data_dir = args.data_dir.resolve()
    inbox = (args.inbox or data_dir / "inbox").resolve()
    if not args.dry_run:
        inbox.mkdir(parents=True, exist_ok=True)
    return {"lightbox_data_dir": str(data_dir), "lightbox_inbox": str(inbox)}


def block_types() -> list[type[Block]]:
    from blocks.catalog_db import CatalogDatabase
    from blocks.destinations import LocalFolderDestination, S3Destination
    from blocks.model_store import ModelStore
    from blocks.shopify import ShopifyStore

    return [CatalogDatabase, ModelStore, LocalFolderDestination, S3Destination, ShopifyStore]


def _secret(env: dict[str, str], name: str, needed_for: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ValueError(f"{needed_for} needs ${name} (secrets come from the environment only)")
    return value


def desired_blocks(args: argparse.Namespace, env: dict[str, str]) -> list[tuple[Block, str]]:
    """The blocks the deployments in prefect.yaml name, built from flags and the environment."""
    from prefect_aws import AwsCredentials, S3Bucket

    from blocks.catalog_db import CatalogDatabase
    from blocks.destinations import LocalFolderDestination, S3Destination
    from blocks.model_store import ModelStore
    from blocks.shopify import ShopifyStore

    data_dir = args.data_dir.resolve()
    database_url = env.get("LIGHTBOX_DATABASE_URL")
    if not database_url:
        if not args.dry_run:
            data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{data_dir / 'catalog.db'}"
    blocks: list[tuple[Block, str]] = [
        (CatalogDatabase(url=database_url), "catalog"),
        (ModelStore(model_dir=args.model_dir.resolve()), "cpu"),
        (
            ModelStore(
                model_dir=(args.gpu_model_dir or args.model_dir).resolve(),
                segmenter=args.gpu_segmenter,
                upscaler=args.gpu_upscaler,
                device=args.gpu_device,
            ),
            "gpu",
        ),
        (LocalFolderDestination(base_path=(args.export_dir or data_dir / "exports").resolve()), "exports"),
    ]
    if env.get("LIGHTBOX_S3_BUCKET"):
        client_parameters = (
            {"endpoint_url": env["LIGHTBOX_S3_ENDPOINT_URL"]} if env.get("LIGHTBOX_S3_ENDPOINT_URL") else {}
        )
        credentials = AwsCredentials(
            aws_access_key_id=_secret(env, "AWS_ACCESS_KEY_ID", "the S3 destination"),
            aws_secret_access_key=_secret(env, "AWS_SECRET_ACCESS_KEY", "the S3 destination"),
            region_name=env.get("AWS_REGION") or "us-east-1",
            aws_client_parameters=client_parameters,
        )
        bucket = S3Bucket(bucket_name=env["LIGHTBOX_S3_BUCKET"], credentials=credentials)
        blocks.append((S3Destination(bucket=bucket, prefix=env.get("LIGHTBOX_S3_PREFIX", "")), "assets"))
    if env.get("LIGHTBOX_SHOPIFY_SHOP"):
        fields = dict(
            shop_domain=env["LIGHTBOX_SHOPIFY_SHOP"],
            access_token=_secret(env, "LIGHTBOX_SHOPIFY_ACCESS_TOKEN", "the Shopify store"),
            webhook_secret=_secret(env, "LIGHTBOX_SHOPIFY_WEBHOOK_SECRET", "the Shopify store"),
        )
        if env.get("LIGHTBOX_SHOPIFY_API_URL"):
            fields["admin_api_url"] = env["LIGHTBOX_SHOPIFY_API_URL"]
        if env.get("LIGHTBOX_SHOPIFY_API_VERSION"):
            fields["api_version"] = env["LIGHTBOX_SHOPIFY_API_VERSION"]
        blocks.append((ShopifyStore(**fields), "store"))
    return blocks


# --- alerts: a notification block and the automations that use it -----------------------

ALERT_BLOCK = "lightbox-alerts"
ALERT_URL_ENV = "LIGHTBOX_ALERT_WEBHOOK_URL"  # may carry a token: a secret, never printed
BATCH_FLOW = "catalog-batch"
NOTIFICATION_BODY = (
    "Flow run {{ flow.name }}/{{ flow_run.name }} is {{ flow_run.state.name }}.\n"
    "{{ flow_run.state.message }}\n"
    "Flow run: {{ flow_run|ui_url }}"
)


def alert_block(env: dict[str, str]) -> Block | None:
    """Prefect's generic webhook notification block, POSTing ``{"subject", "body"}`` as JSON
    to ``$LIGHTBOX_ALERT_WEBHOOK_URL``. The URL is kept among the block's secrets (shown as
    ``{{alertUrl}}``), so neither the UI nor an API read shows it. None when unset."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url = env.get(ALERT_URL_ENV, "")
    if not url:
        return None
    return CustomWebhookNotificationBlock(
        name="Lightbox alerts",
        url="{{alertUrl}}",
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        secrets={"alertUrl": url},
    )


def desired_automations(block_document_id: UUID) -> list[AutomationCore]:
    """Notify through the alert block when a catalog-batch run ends Failed or Crashed, and
    when one waits for review: ``Suspended`` (the hold; Prefect's own name, which its
    workers watch for) or ``Held for review`` (review rounds used up, SKUs still held)."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    def on(states: list[str]) -> EventTrigger:
        return EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": BATCH_FLOW},
            expect={f"prefect.flow-run.{state}" for state in states},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        )

    def notify(subject: str) -> SendNotification:
        return SendNotification(block_document_id=block_document_id, subject=subject, body=NOTIFICATION_BODY)

    return [
        AutomationCore(
            name="lightbox-batch-failed",
            description="A catalog batch ended Failed (could not run, or too many SKUs failed) or Crashed.",
            trigger=on(["Failed", "Crashed"]),
            actions=[notify("Lightbox batch {{ flow_run.name }}: {{ flow_run.state.name }}")],
            tags=["lightbox"],
        ),
        AutomationCore(
            name="lightbox-batch-awaits-review",
            description="A catalog batch holds SKUs for a person (suspended with the form, or held after its rounds).",
            trigger=on(["Suspended", "Held for review"]),
            actions=[notify("Lightbox batch {{ flow_run.name }} waits for review")],
            tags=["lightbox"],
        ),
    ]


ZOMBIE_AUTOMATION = "lightbox-crash-zombie-runs"
# Workers send a heartbeat every 30 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY); a run started
# anywhere else (``lightbox run`` against the stack's server) sends Prefect's default, one
# every 180 s: the window is longer than that, so a live run is never taken for a zombie.
ZOMBIE_AFTER_S = 300
# A run leaves these without a final state and without a process to send heartbeats: held
# for review (Suspended, Paused), handed over to a later window (Scheduled and its kin),
# and the named final states our flows end in (catalog/states.py).
QUIET_STATES = (
    "Completed",
    "Failed",
    "Cancelled",
    "Crashed",
    "Suspended",
    "Paused",
    "Scheduled",
    "AwaitingRetry",
    "AwaitingConcurrencySlot",
    COMPLETED_WITH_REJECTIONS,
    HELD_FOR_REVIEW,
)


def zombie_automation(after_s: int = ZOMBIE_AFTER_S) -> AutomationCore:
    """Prefect's documented zombie detection ("detect zombie flows"): a flow run that sent
    heartbeats and then none for ``after_s`` seconds, without a final state or one of the
    other ``QUIET_STATES``, is marked Crashed. A render shard that crashed is then queued again by its batch
    (flows/dispatch.py); a batch run that crashed records why (its on_crashed hook)."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=f"A flow run that stopped sending heartbeats for {after_s} s is marked Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{name}" for name in QUIET_STATES)},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {after_s} s: its worker or machine is gone (lightbox zombie detection)",
            )
        ],
        tags=["lightbox"],
    )
