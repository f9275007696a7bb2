"""Every docstring example in quality/ runs and is right."""

import doctest
import importlib

import pytest

MODULES = [
    "delta_e",
    "fidelity",
    "edges",
    "shadow",
    "marketplace",
    "exposure",
    "consistency",
    "thresholds",
    "labels",
    "cut",
    "artefacts",
    "defects",
    "market_rules",
    "jpeg_quality",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"quality.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"quality.{name} has no docstring examples"
    assert result.failed == 0
