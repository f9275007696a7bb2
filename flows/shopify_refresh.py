"""shopify-refresh: a product changed in Shopify -> its image is (re)shot.

    plan (now, or the next off-peak window; which queue) -> fetch the product's image ->
    one-SKU manifest -> the catalog-batch lifecycle for it

Started by the deployment trigger on ``lightbox.shopify.product.updated`` (prefect.yaml),
whose parameters come from the event the webhook receiver emits. The SKU carries the
product id, so a ``lightbox-shopify-store`` block among ``destinations`` puts the new image
back on the product. A run that its plan puts
later, or on another work queue, hands itself over: it schedules a run of its own
deployment for that time and queue (``planned=True``) and ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Failed

from catalog.states import BatchFailed
from flows.catalog_batch import catalog_batch
from tasks.records import DestinationSpec, RunSettings
from tasks.refresh import (
    OffPeak,
    RefreshPlan,
    fetch_product_image,
    plan_refresh,
    product_folder,
    write_refresh_manifest,
)
from tasks.settings import load_settings

SLACK = timedelta(seconds=60)  # a plan this close to now runs now


@flow(name="shopify-refresh", flow_run_name="shopify-{product_id}", log_prints=False)
def shopify_refresh(
    shop: str,
    product_id: str,
    image_urls: list[str],
    settings: RunSettings,
    out_dir: str,
    updated_at: str | None = None,
    webhook_id: str | None = None,
    urgent: bool = False,
    planned: bool = False,
    offpeak: OffPeak = OffPeak(),  # noqa: B008 (a frozen record: Prefect shows it as the parameter's default)
    large_batch_threshold: int = 50,
    burst_minutes: int = 60,
    template: str = "white_studio",
    profiles: list[str] = ("shopify",),
    render_deployment: str | None = None,
    destinations: list[DestinationSpec] | None = None,
    max_image_bytes: int = 20 * 2**20,
    allow_private_urls: bool = False,
) -> dict:
    logger = get_run_logger()
    logger.info("product %s of %s (webhook %s, updated %s)", product_id, shop, webhook_id, updated_at)
    # the batch (a subflow, its parameters stored) gets the block names and loads them itself
    named, settings = settings, load_settings(settings)
    if not planned:
        plan = plan_refresh(settings.database_url, shop, urgent, offpeak, large_batch_threshold, burst_minutes)
        logger.info("plan: %s", plan.reason)
        moved = _hand_over(plan)
        if moved is not None:
            return moved

    folder = product_folder(settings.data_dir, shop, product_id)
    image = fetch_product_image(image_urls, str(folder), max_image_bytes, allow_private_urls)
    sku = f"{shop.removesuffix('.myshopify.com')}-{product_id}"
    manifest = write_refresh_manifest(image, sku, product_id)
    batch = catalog_batch(
        manifest=manifest,
        out_dir=out_dir,
        settings=named,
        name=f"shopify-{product_id}",
        template=template,
        profiles=list(profiles),
        render_deployment=render_deployment,
        destinations=destinations,
        return_state=True,
    )
    report = batch.result(raise_on_failure=False)
    if isinstance(report, BatchFailed):  # it ran, and too many of its SKUs failed
        report = report.report
    elif isinstance(report, BaseException):  # the batch could not run
        raise report
    logger.info("product %s: %s (%s)", product_id, batch.name, batch.message)
    summary = {"status": "done", "sku": sku, "batch_id": report["batch_id"], "counts": report["counts"]}
    if batch.is_failed():  # the SKU failed: so does the refresh, with the batch's reason
        return Failed(data=BatchFailed(batch.message, {**summary, "status": "failed"}), message=batch.message)
    return summary


def _hand_over(plan: RefreshPlan) -> dict | None:
    """Schedule this run again for the plan's time and queue, unless it is this run's."""
    logger = get_run_logger()
    deployment = runtime.deployment.name
    if deployment is None:
        logger.warning(
            "not started from a deployment, so it cannot move to %s at %s: runs now", plan.queue, plan.when.isoformat()
        )
        return None
    with get_client(sync_client=True) as client:
        queue = client.read_flow_run(runtime.flow_run.id).work_queue_name
    later = plan.when > datetime.now(UTC) + SLACK
    if not later and plan.queue == queue:
        return None
    parameters = {**runtime.flow_run.parameters, "planned": True}
    run = run_deployment(
        f"{runtime.flow_run.flow_name}/{deployment}",
        parameters=parameters,
        scheduled_time=plan.when,
        work_queue_name=plan.queue,
        timeout=0,
        as_subflow=False,
        idempotency_key=f"{runtime.flow_run.id}-handover",
    )
    logger.info("handed over to flow run %s on queue %s at %s", run.name, plan.queue, plan.when.isoformat())
    return {
        "status": "deferred" if later else "moved",
        "flow_run": run.name,
        "queue": plan.queue,
        "when": plan.when.isoformat(),
    }
