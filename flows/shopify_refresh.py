"""shopify-refresh: a product changed in Shopify -> its image is (re)shot.

    plan (now, or the next off-peak window; which queue) -> fetch the product's image ->
    one-SKU manifest -> the catalog-batch lifecycle for it

Started by the deployment trigger on ``lightbox.shopify.product.updated`` (prefect.yaml),
whose parameters come from the event the webhook receiver emits. The SKU carries the
product id, so a ``lightbox-shopify-store`` block among ``destinations`` puts the new image
back on the product. A run that its plan puts on another work queue (urgent) hands itself
over: it schedules a run of its own deployment for that queue (``planned=True``) and ends.

A bulk edit's refreshes, which the plan defers to the off-peak window, are not N one-SKU
runs at the window's start: each is recorded for its shop (``pending_refreshes``, newest
version per product) and makes sure ONE run of ``shopify-refresh-batch`` exists for that
shop and window (``run_deployment`` with an idempotency key of shop and window, so every
deferred refresh of the burst finds the same run). That run, ``shopify_refresh_batch``,
takes every product waiting for its shop, fetches their images, and runs them as one
``catalog_batch``; each product's SKU ends exported, rejected or failed with its reason,
which is recorded on its pending row too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger, runtime
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Completed, Failed

from catalog.states import BatchFailed
from flows.catalog_batch import catalog_batch
from tasks.records import DestinationSpec, RunSettings
from tasks.refresh import (
    BatchRow,
    OffPeak,
    RefreshPlan,
    defer_refresh,
    fetch_product_image,
    finish_deferred,
    plan_refresh,
    product_folder,
    refresh_sku,
    shop_folder,
    take_deferred,
    write_batch_manifest,
    write_refresh_manifest,
)
from tasks.settings import load_settings

SLACK = timedelta(seconds=60)  # a plan this close to now runs now
BATCH_DEPLOYMENT = "shopify-refresh-batch/offpeak"
# what the off-peak batch takes over from the refresh runs that scheduled it
BATCH_PARAMETERS = (
    "settings",
    "out_dir",
    "template",
    "profiles",
    "render_deployment",
    "destinations",
    "max_image_bytes",
    "allow_private_urls",
)


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
    batch_deployment: str = BATCH_DEPLOYMENT,
) -> dict:
    logger = get_run_logger()
    logger.info("product %s of %s (webhook %s, updated %s)", product_id, shop, webhook_id, updated_at)
    # the batch (a subflow, its parameters stored) gets the block names and loads them itself
    named, settings = settings, load_settings(settings)
    if not planned:
        plan = plan_refresh(settings.database_url, shop, urgent, offpeak, large_batch_threshold, burst_minutes)
        logger.info("plan: %s", plan.reason)
        if _deferred(plan) and runtime.deployment.name is not None:
            recorded = defer_refresh(
                settings.database_url, shop, product_id, image_urls, updated_at, webhook_id, plan.when
            )
            if recorded != "taken":  # else the window's batch already took the product: refresh it now
                return _join_shop_batch(plan, shop, product_id, recorded, batch_deployment)
            logger.warning("product %s: the off-peak batch of %s already took it, so it runs now", product_id, shop)
        else:
            moved = _hand_over(plan)
            if moved is not None:
                return moved

    folder = product_folder(settings.data_dir, shop, product_id)
    image = fetch_product_image(image_urls, str(folder), max_image_bytes, allow_private_urls)
    sku = refresh_sku(shop, product_id)
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


def _deferred(plan: RefreshPlan) -> bool:
    """The plan waits for a later off-peak window (a bulk edit's burst)."""
    return plan.queue == "standard" and plan.when > datetime.now(UTC) + SLACK


def _join_shop_batch(plan: RefreshPlan, shop: str, product_id: str, recorded: str, deployment: str) -> dict:
    """Make sure the one off-peak batch run of ``shop`` for the window ``plan.when`` exists:
    created by the first deferred refresh of the burst, found by every other one (the
    idempotency key is the shop and the window, so the server holds one run for them)."""
    logger = get_run_logger()
    given = runtime.flow_run.parameters  # what this run was started with (defaults are the batch's too)
    parameters = {name: given[name] for name in BATCH_PARAMETERS if name in given}
    when = plan.when.astimezone(UTC)
    run = run_deployment(
        deployment,
        parameters={"shop": shop, "window_start": when.isoformat(), **parameters},
        scheduled_time=when,
        work_queue_name=plan.queue,
        timeout=0,
        as_subflow=False,
        idempotency_key=f"shopify-offpeak:{shop}:{when.isoformat()}",
    )
    logger.info(
        "product %s %s for the off-peak batch of %s: flow run %s at %s",
        product_id,
        "waits" if recorded == "recorded" else "already waits (a newer version)",
        shop,
        run.name,
        when.isoformat(),
    )
    return {"status": "deferred", "flow_run": run.name, "queue": plan.queue, "when": when.isoformat()}


def offpeak_run_name() -> str:
    """``flow_run_name`` of shopify-refresh-batch: ``shopify-<shop name>-offpeak-<YYYY-MM-DD>``."""
    params = runtime.flow_run.parameters
    shop = str(params.get("shop", "shop")).removesuffix(".myshopify.com")
    when = params.get("window_start")
    when = datetime.fromisoformat(when) if isinstance(when, str) else when
    return f"shopify-{shop}-offpeak-{(when or datetime.now(UTC)).astimezone(UTC):%Y-%m-%d}"


@flow(name="shopify-refresh-batch", flow_run_name=offpeak_run_name, log_prints=False)
def shopify_refresh_batch(
    shop: str,
    window_start: datetime,
    settings: RunSettings,
    out_dir: str,
    template: str = "white_studio",
    profiles: list[str] = ("shopify",),
    render_deployment: str | None = None,
    destinations: list[DestinationSpec] | None = None,
    max_image_bytes: int = 20 * 2**20,
    allow_private_urls: bool = False,
) -> dict:
    """The off-peak batch of one shop: every product its deferred refreshes recorded for
    this window (or an earlier one whose batch never ran), newest version each, as one
    ``catalog_batch``. A product whose image cannot be fetched is a failed SKU of the batch;
    its pending row holds the fetch's reason."""
    logger = get_run_logger()
    named, settings = settings, load_settings(settings)
    run_id = str(runtime.flow_run.id)
    products = take_deferred(settings.database_url, shop, window_start, run_id)
    logger.info("%d products of %s waited for the off-peak window of %s", len(products), shop, window_start)
    if not products:
        return {"status": "empty", "shop": shop, "products": 0}

    fetches = [
        fetch_product_image.with_options(task_run_name=f"fetch-{p.product_id}").submit(
            p.image_urls,
            str(product_folder(settings.data_dir, shop, p.product_id)),
            max_image_bytes,
            allow_private_urls,
        )
        for p in products
    ]
    rows, not_fetched = [], {}
    for product, fetched in zip(products, fetches, strict=True):
        fetched.wait()
        state = fetched.state
        sku = refresh_sku(shop, product.product_id)
        if state.is_completed():
            rows.append(BatchRow(sku=sku, product_id=product.product_id, image=state.result()))
        else:
            reason = f"image not fetched: {state.message or state.name}"
            not_fetched[product.product_id] = reason
            rows.append(BatchRow(sku=sku, product_id=product.product_id, problem=reason))
    manifest = write_batch_manifest(rows, str(shop_folder(settings.data_dir, shop)))
    name = f"shopify-{shop.removesuffix('.myshopify.com')}-offpeak"
    batch = catalog_batch(
        manifest=manifest,
        out_dir=out_dir,
        settings=named,
        name=name,
        template=template,
        profiles=list(profiles),
        render_deployment=render_deployment,
        destinations=destinations,
        return_state=True,
    )
    report = batch.result(raise_on_failure=False)
    if isinstance(report, BatchFailed):  # it ran, and too many of its SKUs failed
        report = report.report
    elif isinstance(report, BaseException):  # the batch could not run: the products stay taken
        raise report
    states = {s["sku"]: (s["state"], s.get("reason")) for s in report["skus"]}
    outcomes = {}
    for row in rows:
        state, reason = states.get(row.sku, ("failed", "not in the batch's report"))
        outcomes[row.product_id] = (state, not_fetched.get(row.product_id) or reason)
    finish_deferred(settings.database_url, run_id, outcomes)
    summary = {
        "status": "done",
        "shop": shop,
        "batch_id": report["batch_id"],
        "products": len(products),
        "counts": report["counts"],
        "not_fetched": not_fetched,
    }
    logger.info("off-peak batch of %s: %s (%s)", shop, batch.name, batch.message)
    if batch.is_failed():
        return Failed(data=BatchFailed(batch.message, {**summary, "status": "failed"}), message=batch.message)
    return Completed(data=summary, name=batch.name, message=batch.message)


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
