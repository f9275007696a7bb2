import pytest

from catalog.states import (
    SKU_TERMINAL,
    SKU_TRANSITIONS,
    BatchState,
    IllegalTransition,
    SkuState,
    check_batch_transition,
    check_sku_transition,
)


def test_happy_path_batch_lifecycle():
    order = ["created", "validating", "processing", "qc", "review_hold", "exporting", "done"]
    for current, new in zip(order, order[1:], strict=False):
        assert check_batch_transition(current, new) == BatchState(new)


@pytest.mark.parametrize(
    "current,new", [("created", "done"), ("done", "processing"), ("failed", "created"), ("qc", "exporting")]
)
def test_illegal_batch_transitions_raise(current, new):
    with pytest.raises(IllegalTransition, match=f"{current}.*{new}"):
        check_batch_transition(current, new)


def test_sku_paths_and_terminals():
    path = [
        "pending",
        "validated",
        "rendering",
        "rendered",
        "qc_failed",
        "rendering",
        "rendered",
        "qc_passed",
        "approved",
        "exported",
    ]
    for current, new in zip(path, path[1:], strict=False):
        check_sku_transition(current, new)
    for terminal in SKU_TERMINAL:
        assert SKU_TRANSITIONS[terminal] == frozenset()
    for state in set(SkuState) - SKU_TERMINAL:
        assert SkuState.failed in SKU_TRANSITIONS[state]


def test_illegal_sku_transition_names_the_sku():
    with pytest.raises(IllegalTransition, match="MUG-1.*exported.*rendering"):
        check_sku_transition("exported", "rendering", sku="MUG-1")
    with pytest.raises(IllegalTransition):
        check_sku_transition("pending", "exported")
