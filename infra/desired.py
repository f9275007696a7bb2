"""What bootstrap saves, built from its flags and the environment: the blocks and the
variables prefect.yaml names. Secrets come from the environment only."""

from __future__ import annotations

import argparse

from prefect.blocks.core import Block


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
