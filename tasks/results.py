"""Collecting mapped task runs: which SKUs succeeded, which failed and why, which were cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from quality.defects import attempt_badness, defect_of, describe_failures
from tasks.records import QcInfo, Record, RenderInfo, RenderParams, SkuJob, SourceInfo


@dataclass(frozen=True)
class Resolved:
    ok: bool
    value: Any = None
    error: BaseException | None = None
    cached: bool = False


def resolve(futures) -> list[Resolved]:
    """Wait for mapped futures; never raises for a failed run (its exception is kept)."""
    out = []
    for future in futures:
        future.wait()
        state = future.state
        if state.is_completed():
            out.append(Resolved(True, state.result(), cached=state.name == "Cached"))
        else:
            error = state.result(raise_on_failure=False)
            if not isinstance(error, BaseException):
                error = RuntimeError(state.message or state.name)
            out.append(Resolved(False, error=error))
    return out


class ShardItem(Record):
    job: SkuJob
    source: SourceInfo
    params: RenderParams | None = None  # a reviewer's re-render starts here; None: the template's


class SkuOutcome(Record):
    """How one SKU left the render shard."""

    sku_id: int
    status: str  # passed | qc_failed | failed
    reason: str | None = None
    attempts: int = 0
    confidence: float | None = None
    mask_path: str | None = None  # the product mask on the source grid (exported as mask.png)
    mask_sha256: str | None = None  # of the stored mask's bytes, which export ships as they are
    renders: list[RenderInfo] = Field(default_factory=list)
    qcs: list[QcInfo] = Field(default_factory=list)
    failing: list[str] = Field(default_factory=list)
    model_versions: dict = Field(default_factory=dict)
    timings: dict = Field(default_factory=dict)  # stage -> seconds, or "cached"

    @classmethod
    def failed(cls, sku_id: int, why: str) -> SkuOutcome:
        return cls(sku_id=sku_id, status="failed", reason=why)

    @classmethod
    def graded(
        cls,
        sku_id: int,
        params: RenderParams,
        confidence: float,
        mask_path: str,
        renders: list[RenderInfo],
        qcs: list[QcInfo],
        model_versions: dict,
        timings: dict,
        mask_sha256: str | None = None,
    ) -> SkuOutcome:
        """A rendered attempt: passed, or qc_failed with the failing checks named."""
        failing = [f"{q.profile}:{name}" for q in qcs if q.status == "fail" for name in q.failing]
        details = {
            f"{q.profile}:{ch['name']}": ch["reason"]
            for q in qcs
            for ch in q.checks  # specific statements
            if ch.get("status") == "fail" and ch.get("reason", "") not in ("", defect_of(ch["name"]).name)
        }
        return cls(
            sku_id=sku_id,
            status="qc_failed" if failing else "passed",
            attempts=params.attempt,
            confidence=confidence,
            mask_path=mask_path,
            mask_sha256=mask_sha256,
            renders=renders,
            qcs=qcs,
            failing=failing,
            model_versions=model_versions,
            timings=timings,
            reason=("qc: " + describe_failures(failing, details)) if failing else None,
        )

    def files(self) -> list[str]:
        """The stored files this outcome points at (the mask and the encoded exports)."""
        return [p for p in (self.mask_path, *(q.encoded_path for q in self.qcs)) if p]

    def badness(self) -> tuple:
        """Order of preference between attempts (lower is better): passed before QC
        failures before errors; among QC failures, fewer and milder failing checks."""
        rank = {"passed": 0, "qc_failed": 1}.get(self.status, 2)
        return (rank, *attempt_badness(ch for q in self.qcs for ch in q.checks))


def best_attempt(before: SkuOutcome | None, after: SkuOutcome) -> SkuOutcome:
    """The better of two attempts of one SKU, never a worse one (ties go to the later).
    ``after`` carries the timings summed over all attempts, and the count of attempts."""
    if before is None or after.badness() <= before.badness():
        return after
    return before.model_copy(update={"timings": after.timings, "attempts": after.attempts})


def add_timings(before: dict, after: dict) -> dict:
    """Per-stage seconds summed over attempts; "cached" + n seconds = n seconds."""
    total = {}
    for stage in {**before, **after}:
        values = [v for v in (before.get(stage), after.get(stage)) if v is not None]
        numbers = [v for v in values if isinstance(v, (int, float))]
        total[stage] = round(sum(numbers), 4) if numbers else values[0]
    return total


class ReviewItem(Record):
    """A rendered SKU as it enters review: what the form shows and export ships."""

    job: SkuJob
    source: SourceInfo
    outcome: SkuOutcome
