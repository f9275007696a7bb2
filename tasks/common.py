"""What every Lightbox task shares: which errors are worth a retry, and cache keys."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from imaging.errors import ImageRejected, ModelInputError, WeightsMissing
from imaging.profiles import ExportProfile, load_profiles

# One model inference at a time per worker process: ONNX Runtime and ncnn each use every
# core, and several at once on a small machine only thrash (measured: ncnn x4 went from
# ~23 s to ~65 s per crop with two concurrent runs on 2 cores).
MODEL_LOCK = threading.Lock()

# Errors about the input or the configuration: retrying cannot help, fail the SKU at once.
PERMANENT = (ImageRejected, ModelInputError, WeightsMissing, ValueError, FileNotFoundError)


def retry_transient(task, task_run, state) -> bool:
    """retry_condition_fn: retry I/O hiccups, not bad input or missing weights."""
    try:
        state.result()
    except PERMANENT:
        return False
    except Exception:
        return True
    return False


def key_from(build: Callable[[dict[str, Any]], str]) -> Callable[[Any, dict[str, Any]], str]:
    """Adapt ``build(parameters) -> key`` to Prefect's ``cache_key_fn(context, parameters)``."""

    def cache_key_fn(_context, parameters: dict[str, Any]) -> str:
        return build(parameters)

    return cache_key_fn


STAGE_NOTE = "lightbox stage: "  # an exception note naming the stage it left (tasks/attempt.py)


def reason(stage: str, exc: BaseException) -> str:
    """One line for report.json and the database: the stage and what went wrong. A stage
    named on the exception itself (``STAGE_NOTE``) wins over ``stage``."""
    notes = [n for n in getattr(exc, "__notes__", ()) if isinstance(n, str) and n.startswith(STAGE_NOTE)]
    stage = notes[-1][len(STAGE_NOTE) :] if notes else stage
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return f"{stage}: {text}"


def profiles_for(settings) -> dict[str, ExportProfile]:
    """Built-in export profiles plus the run's overrides (``RunSettings.profiles``)."""
    return load_profiles(settings.profiles or None)
