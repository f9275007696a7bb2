"""Checks before a batch starts, so a run that cannot succeed stops with one clear line
instead of failing every SKU the same way. Plain functions: the CLI calls them before the
flow (nothing is written: no output folder, no batch).

Each check raises ``ValueError``, ``WeightsMissing`` or ``DatabaseUnavailable`` with a
one-line message that names the fix, cheapest and most local checks first.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from catalog.db import DatabaseUnavailable, migrate, redacted, scrub
from catalog.manifest import load_manifest
from imaging.errors import WeightsMissing
from imaging.segment import SEGMENTERS
from imaging.templates import get_template
from imaging.weights import weight_path
from imaging.weights_check import UPSCALER_WEIGHTS, check_diffusion, needed_diffusion
from tasks.common import profiles_for
from tasks.records import RunSettings
from tasks.render import template_library
from tasks.workdir import work_store

CONNECT_TIMEOUT_S = 5


def preflight(
    settings: RunSettings,
    template: str,
    profiles: list[str],
    *,
    manifest: Path | None = None,
    out_dir: Path | None = None,
    prefect_api_url: str | None = None,
) -> None:
    """Raise naming what is wrong: manifest, templates and their weights, profiles, the
    segmenter's and upscaler's weights, the output folder, the catalog database, the Prefect API (when
    one is configured: ``prefect_api_url``) and the work store."""
    library = template_library(settings.templates_dir)
    names = [template]
    if manifest is not None:
        names += manifest_templates(manifest)
    for name in dict.fromkeys(names):
        if name == template or name in library:  # an unknown row template fails its own SKU
            check_template(settings, get_template(name, library))
    known = profiles_for(settings)
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise ValueError(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if settings.segmenter not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {settings.segmenter!r}; known: {', '.join(sorted(SEGMENTERS))}")
    weight_path(settings.model_dir, SEGMENTERS[settings.segmenter].weight)
    for name in UPSCALER_WEIGHTS.get(settings.upscaler, ()):  # auto: the ncnn model on CPU
        weight_path(settings.model_dir, name)
    if out_dir is not None:
        check_out_dir(Path(out_dir))
    check_database(settings.database_url)
    if prefect_api_url:
        check_prefect_api(prefect_api_url)
    if settings.work_store:
        work_store(settings)  # the block exists and is an S3 destination


def manifest_templates(manifest: Path) -> list[str]:
    """The templates a CSV manifest's rows name (a ZIP is only read when the batch runs)."""
    manifest = Path(manifest)
    if not manifest.exists():
        raise ValueError(f"manifest {manifest} does not exist: pass a CSV (sku,image), a folder of images or a ZIP")
    if manifest.is_dir() or zipfile.is_zipfile(manifest):
        return []
    return [e.template for e in load_manifest(manifest).entries if e.template]


def check_template(settings: RunSettings, template) -> None:
    """A lifestyle template needs its diffusion weights (the first missing one is named)."""
    if template.kind != "lifestyle":
        return
    for key in needed_diffusion(template.controlnet):
        check = check_diffusion(key, settings.diffusion.get(key))
        if check.required and not check.ok:
            raise WeightsMissing(
                f"template {template.name!r} needs SDXL lifestyle weights, diffusion.{key}: {check.problem}; "
                f"pass --diffusion-dir DIR (DIR/inpaint, DIR/controlnet_{template.controlnet}, ...) and see "
                f"`lightbox models check --template {template.name} --diffusion-dir DIR`"
            )


def check_out_dir(out_dir: Path) -> None:
    """The output folder can be made (its nearest existing parent is a writable folder)."""
    probe = out_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"output folder {out_dir}: {probe} is a file, not a folder; pass another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {out_dir} is not writable (no write access to {probe}); pass another --out")
    if probe == out_dir:
        try:
            with tempfile.TemporaryFile(dir=out_dir):
                pass
        except OSError as exc:
            raise ValueError(f"output folder {out_dir} is not writable ({exc.strerror}); pass another --out") from None


def check_database(url: str) -> None:
    """Connect with a short timeout, then migrate."""
    args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=args, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        first = scrub((str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0], url)
        raise DatabaseUnavailable(
            f"catalog database {redacted(url)} is not reachable ({first}); start it or pass another --database-url"
        ) from None
    finally:
        engine.dispose()
    migrate(url)


def check_prefect_api(url: str) -> None:
    """Any HTTP answer from ``<url>/health`` will do; no answer within the timeout will not."""
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=CONNECT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ValueError(
            f"Prefect API {url} is not reachable ({exc.__class__.__name__}): start the server "
            "(`make up`) or unset PREFECT_API_URL to run on a temporary one"
        ) from None
