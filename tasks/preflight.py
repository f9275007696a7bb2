"""Checks before a batch starts, so a misconfigured run stops with one clear line instead
of failing every SKU the same way. Plain functions: the CLI calls them before Prefect."""

from __future__ import annotations

from catalog.db import migrate
from imaging.templates import get_template
from imaging.weights import weight_path
from tasks.common import profiles_for
from tasks.records import RunSettings
from tasks.render import template_library
from tasks.workdir import work_store


def preflight(settings: RunSettings, template: str, profiles: list[str]) -> None:
    """Raise ValueError / WeightsMissing / DatabaseUnavailable naming what is wrong."""
    get_template(template, template_library(settings.templates_dir))
    known = profiles_for(settings)
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise ValueError(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    weight_path(settings.model_dir, settings.segmenter)
    if settings.work_store:
        work_store(settings)  # the block exists and is an S3 destination
    migrate(settings.database_url)
