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


# --- run_verdict: the final state a batch run reports (issue 13) -------------------------


def test_run_verdict_names_what_happened():
    from catalog.states import run_verdict

    assert run_verdict({"exported": 5, "rejected": 0, "failed": 0}, 0.2) == run_verdict({"exported": 5}, 0.2)
    done = run_verdict({"exported": 5, "rejected": 0, "failed": 0}, 0.2)
    assert (done.kind, done.name, done.message) == ("completed", "Completed", "5 SKUs: 5 exported")
    rejected = run_verdict({"exported": 8, "rejected": 1, "failed": 1}, 0.2)
    assert (rejected.kind, rejected.name) == ("completed", "Completed with rejections")
    assert rejected.message == "10 SKUs: 8 exported, 1 rejected, 1 failed"
    at_share = run_verdict({"exported": 4, "failed": 1}, 0.2)  # 20 % is not more than 20 %
    assert at_share.kind == "completed"
    failed = run_verdict({"exported": 3, "failed": 2}, 0.2)
    assert (failed.kind, failed.name) == ("failed", "Failed")
    assert "40 % failed, more than the 20 % allowed" in failed.message
    assert run_verdict({"exported": 9, "failed": 1}, 0.0).kind == "failed"
    assert run_verdict({"failed": 3}, 1.0).name == "Completed with rejections"


def test_held_skus_are_judged_later_not_failed():
    from catalog.states import HELD_FOR_REVIEW, run_verdict

    held = run_verdict({"exported": 0, "failed": 4, "held": 1}, 0.2)
    assert (held.kind, held.name) == ("completed", HELD_FOR_REVIEW) and "1 wait for review" in held.message


def test_empty_batch_and_bad_share():
    from catalog.states import run_verdict

    assert run_verdict({}, 0.2).name == "Completed"
    with pytest.raises(ValueError, match="between 0 and 1"):
        run_verdict({"exported": 1}, 1.5)


def test_a_failed_batch_carries_its_report_through_pickling():
    """The Failed state's data is persisted (pickled) with the run's result: the message
    and the report survive, and a direct call raises it with the report at hand."""
    import pickle

    from catalog.states import BatchFailed

    failure = pickle.loads(pickle.dumps(BatchFailed("10 SKUs: 3 failed", {"counts": {"failed": 3}})))
    assert str(failure) == "10 SKUs: 3 failed" and failure.report == {"counts": {"failed": 3}}
