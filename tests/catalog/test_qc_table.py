"""The QC table artifact (catalog.report.qc_table): the checks that did not pass, worst
SKUs first, and small enough for Prefect's 1.5 MB event cap at any batch size."""

import json

from catalog.report import qc_table

BUDGET = 1_000_000  # what tasks/report.py passes (tasks.artifacts.ARTIFACT_BYTES)

CHECKS = [f"family{i // 6}.check_{i}" for i in range(40)]  # about as many as the gate runs


def _entry(i: int, status: str, fails=(), warns=(), profiles=("amazon-main", "shopify", "transparent")):
    checks = [
        {"name": n, "status": "fail" if n in fails else "warn" if n in warns else "pass", "value": 0.123456}
        for n in CHECKS
    ]
    state = {"red": "rejected", "amber": "exported", "green": "exported"}[status]
    return {
        "sku": f"SKU-{i:05d}",
        "state": state,
        "status": status,
        "reason": f"qc: {', '.join(fails)}" if fails else None,
        "consistency_flags": [],
        "qc": {p: {"status": "fail" if fails else "pass", "checks": checks} for p in profiles},
    }


def test_rows_name_the_checks_that_did_not_pass_worst_first():
    report = {
        "skus": [
            _entry(0, "green"),
            _entry(1, "amber", warns=(CHECKS[3],)),
            _entry(2, "red", fails=(CHECKS[0], CHECKS[7]), warns=(CHECKS[3],)),
            _entry(3, "green", profiles=("amazon-main",)),
            _entry(4, "red", fails=(CHECKS[9],)),
        ]
    }
    rows, left_out = qc_table(report, BUDGET)
    assert left_out == 0
    assert [r["sku"] for r in rows] == ["SKU-00002", "SKU-00004", "SKU-00001", "SKU-00000", "SKU-00003"]
    assert rows[0]["amazon-main"] == f"fail: {CHECKS[0]}, {CHECKS[7]}; warn: {CHECKS[3]}"
    assert rows[0]["why"] == f"qc: {CHECKS[0]}, {CHECKS[7]}"
    assert rows[2]["shopify"] == f"warn: {CHECKS[3]}"
    assert rows[3]["transparent"] == "pass"
    assert rows[4]["shopify"] == "not rendered"
    assert set(rows[4]) == {"sku", "state", "status", "why", "amazon-main", "shopify", "transparent"}


def test_a_large_batch_fits_the_event_cap_and_keeps_its_worst_skus():
    # (a table of every check's status per profile measured 1.63 MB at 400 SKUs)
    skus = [
        _entry(i, "red" if i % 10 == 0 else "green", fails=(CHECKS[i % 40],) if i % 10 == 0 else ())
        for i in range(20_000)
    ]
    report = {"skus": skus}
    rows, left_out = qc_table(report, BUDGET)
    assert len(json.dumps(rows)) <= BUDGET
    assert left_out == len(skus) - len(rows) > 0
    reds = sum(1 for e in skus if e["status"] == "red")
    assert [r["status"] for r in rows[:reds]] == ["red"] * reds  # every red SKU listed before any green
    assert rows[-1]["status"] == "green"

    small = {"skus": skus[:400]}
    assert qc_table(small, BUDGET)[1] == 0  # a 400-SKU batch is listed whole


def test_report_json_is_the_report_with_one_line_per_sku():
    from datetime import datetime

    from catalog.report import report_json

    skus = [_entry(i, ("red", "amber", "green")[i % 3], fails=CHECKS[:2]) for i in range(5)]
    report = {"name": 'tricky "skus": []', "created_at": datetime(2026, 12, 4), "skus": skus}
    text = report_json(report).decode("utf-8")
    assert json.loads(text) == {**report, "created_at": "2026-12-04 00:00:00"}
    lines = text.splitlines()
    assert [line.strip().rstrip(",") for line in lines if "SKU-" in line] == [json.dumps(s) for s in skus]
    assert json.loads(report_json({"name": "empty", "skus": []})) == {"name": "empty", "skus": []}
