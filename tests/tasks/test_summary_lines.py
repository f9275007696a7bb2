"""The batch summary artifact names at most SUMMARY_LINES SKUs that need a look and counts
the rest (an artifact's event carries its text, and Prefect drops events over 1.5 MB)."""

from tasks.report import SUMMARY_LINES, _needing_a_look


def _entry(i: int, status: str) -> dict:
    return {
        "sku": f"SKU-{i}",
        "state": "rejected" if status == "red" else "exported",
        "status": status,
        "reason": "qc: part of the product missing" if status == "red" else None,
        "qc": {},
        "consistency_flags": [],
    }


def test_every_sku_needing_a_look_is_named_in_a_small_batch():
    text = _needing_a_look({"skus": [_entry(0, "green"), _entry(1, "red"), _entry(2, "green")]})
    assert text == "- `SKU-1` — rejected: qc: part of the product missing"


def test_a_large_batch_names_the_first_ones_and_counts_the_rest():
    skus = [_entry(i, "red" if i % 2 else "green") for i in range(2 * SUMMARY_LINES + 100)]
    lines = _needing_a_look({"skus": skus}).splitlines()
    assert len(lines) == SUMMARY_LINES + 1
    assert lines[0].startswith("- `SKU-1` ")
    assert lines[-1] == "- … and 50 more in report.html"
