"""Review: the policy that decides which rendered SKUs wait for a person, the form that
person answers in the Prefect UI, and what each answer does to the catalog.

Policies (the batch flow's ``review_policy``):

- ``auto``: approve what passed QC, reject what still failed after the automatic retries
  (the failing checks are the reason); nobody waits.
- ``hold-failures``: approve what passed QC; what failed QC waits for a person.
- ``hold-all``: everything rendered waits for a person.

A SKU a reviewer sends back for another render always comes back to the hold. Every
decision, a policy's or a person's, is stored with its reviewer, time, note and round.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from prefect import task
from prefect.input import RunInput
from pydantic import Field, WithJsonSchema, create_model

from catalog import repository as repo
from catalog.db import session_scope
from catalog.models import Sku
from catalog.states import SkuState
from tasks.bookkeeping import DB_RETRIES, REPLAYED
from tasks.records import Record, RenderParams
from tasks.results import ReviewItem, ShardItem, SkuOutcome

ReviewPolicy = Literal["auto", "hold-failures", "hold-all"]
AUTO_REVIEWER = "policy:auto"
Change = Literal[
    "shadow softer", "shadow stronger", "product larger", "product smaller", "new background", "cleaner edges"
]
CHANGES: tuple[str, ...] = Change.__args__
# Words a note may use for each change (lower case, matched as whole phrases).
PHRASES: dict[str, tuple[str, ...]] = {
    "shadow softer": (
        "shadow softer",
        "softer shadow",
        "lighter shadow",
        "shadow lighter",
        "less shadow",
        "weaker shadow",
    ),
    "shadow stronger": ("shadow stronger", "stronger shadow", "darker shadow", "shadow darker", "more shadow"),
    "product larger": (
        "product larger",
        "larger product",
        "product bigger",
        "bigger product",
        "product bigger",
        "zoom in",
    ),
    "product smaller": ("product smaller", "smaller product", "zoom out", "more margin"),
    "new background": ("new background", "different background", "another background", "new scene", "different scene"),
    "cleaner edges": ("cleaner edges", "clean edges", "edges cleaner", "halo", "fringe"),
}
# What each change a reviewer can ask for does to the last render's parameters
# (RenderParams.adjusted: the same language the automatic retries use).
CHANGE_PLANS: dict[str, dict] = {
    "shadow softer": {"shadow_strength": "*0.6"},
    "shadow stronger": {"shadow_strength": "*1.5"},
    "product larger": {"fill": "+0.05"},
    "product smaller": {"fill": "-0.05"},
    "new background": {"seed": "+1"},  # a new scene for lifestyle templates; studio backdrops are fixed
    "cleaner edges": {"refine_strength": "+1", "decontaminate": True},
}


class ReviewHold(Record):
    """One review round: its number and every SKU of the batch waiting for a person."""

    round: int
    held: list[ReviewItem]


class ReviewVerdict(Record):
    """What a reviewer's answer leaves to do: SKUs to render again, and the parts of the
    answer that could not be applied (those SKUs stay held), for the next form."""

    rerender: list[ShardItem] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ReviewInput(RunInput):
    """The review form. The UI renders it when the batch run is suspended; the API takes
    the same fields: ``resume_flow_run(id, run_input={...})``."""

    reviewer: str = Field(
        title="Reviewer",
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="Your name or e-mail; stored with every decision",
    )
    approve_all: bool = Field(
        False, title="Approve all", description="Approve every held SKU not listed under reject or re-render"
    )
    approve: list[str] = Field(default_factory=list, title="Approve", description="SKUs to approve")
    reject: list[str] = Field(default_factory=list, title="Reject", description="SKUs to reject")
    reject_note: str = Field(
        "", title="Reject note", max_length=2000, description="Why they are rejected (stored with each rejection)"
    )
    rerender: list[str] = Field(default_factory=list, title="Re-render", description="SKUs to render again")
    rerender_changes: list[Change] = Field(
        default_factory=list, title="Re-render changes", description="What the new render changes"
    )
    rerender_note: str = Field(
        "",
        title="Re-render note",
        max_length=2000,
        description='May name the changes too, e.g. "shadow softer, product larger"',
    )


def review_form(hold: ReviewHold, description: str) -> type[ReviewInput]:
    """The form for one round: the SKU lists offer exactly the held SKUs."""
    skus = [item.job.sku for item in hold.held]
    # an enum even for one SKU (pydantic writes a one-value Literal as "const", which the UI
    # shows as free text instead of a choice)
    held = Annotated[Literal[tuple(skus)], WithJsonSchema({"type": "string", "enum": skus})]
    lists = {
        name: (list[held], Field(default_factory=list, title=field.title, description=field.description))
        for name, field in ReviewInput.model_fields.items()
        if name in ("approve", "reject", "rerender")
    }
    form = create_model("ReviewInput", __base__=ReviewInput, **lists)
    form._description = description
    return form


def policy_decision(outcome: SkuOutcome, policy: ReviewPolicy) -> str | None:
    """ "approve", "reject" or None (the SKU waits for a person)."""
    if policy not in ("auto", "hold-failures", "hold-all"):
        raise ValueError(f"unknown review policy {policy!r} (auto, hold-failures, hold-all)")
    if outcome.status not in ("passed", "qc_failed"):
        raise ValueError(f"SKU row {outcome.sku_id} was not rendered ({outcome.status})")
    if policy == "hold-all":
        return None
    if outcome.status == "passed":
        return "approve"
    return "reject" if policy == "auto" else None


@task(name="enter_review", **DB_RETRIES, **REPLAYED)
def enter_review(
    database_url: str, batch_id: str, items: list[ReviewItem], policy: ReviewPolicy, hold: int
) -> ReviewHold:
    """Open the batch's next review round: decide the just-rendered ``items`` by the policy,
    keep each one's result for later, and return every SKU of the batch now waiting.

    ``hold``: the how-many-th hold of this flow run (the same call in a later hold is a new
    step, not a replay)."""
    with session_scope(database_url) as s:
        if not items and not repo.skus_in_states(s, batch_id, [SkuState.held]):
            return ReviewHold(round=repo.find_batch(s, batch_id).review_round, held=[])
        round_ = repo.open_review_round(s, batch_id)
        skus = repo.skus_by_id(s, (item.job.sku_id for item in items))  # one query, one insert: batched
        decisions = []
        for item in items:
            sku, outcome = skus[item.job.sku_id], item.outcome
            sku.review_item = item.model_dump(mode="json")
            decision = policy_decision(outcome, policy)
            if decision is None:
                repo.move_sku(sku, SkuState.held)
                continue
            note = None if decision == "approve" else f"failed QC after {outcome.attempts} attempts"
            decisions.append(dict(sku_id=sku.id, decision=decision, reviewer=AUTO_REVIEWER, note=note))
            if decision == "approve":
                repo.move_sku(sku, SkuState.approved)
            else:
                repo.move_sku(sku, SkuState.rejected, outcome.reason)
        repo.record_reviews(s, decisions, round_)
        held = [ReviewItem.model_validate(row.review_item) for row in repo.skus_in_states(s, batch_id, [SkuState.held])]
    return ReviewHold(round=round_, held=held)


@task(name="approved_items", **DB_RETRIES, **REPLAYED)
def approved_items(database_url: str, batch_id: str) -> list[ReviewItem]:
    """Every approved, not yet exported SKU of the batch, as it entered review."""
    with session_scope(database_url) as s:
        return [
            ReviewItem.model_validate(row.review_item) for row in repo.skus_in_states(s, batch_id, [SkuState.approved])
        ]


def parse_changes(note: str) -> list[str]:
    """The changes a free-text note names, e.g. "Shadow softer; product larger please"."""
    text = " ".join(re.findall(r"[a-z]+", note.lower()))
    return [
        change for change, phrases in PHRASES.items() if any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)
    ]


def rerender_params(outcome: SkuOutcome, changes: list[str]) -> RenderParams:
    """The next render's parameters: the last render's, with the reviewer's changes."""
    last = outcome.renders[0].params if outcome.renders else RenderParams()
    plan = {key: change for name in changes for key, change in CHANGE_PLANS[name].items()}
    return last.model_copy(update={"attempt": outcome.attempts}).adjusted(plan)


@task(name="record_review_answer", **DB_RETRIES, **REPLAYED)
def record_review_answer(database_url: str, hold: ReviewHold, answer: dict) -> ReviewVerdict:
    """Apply a reviewer's answer to the held SKUs: approve, reject with the note, or send
    back with changes. A SKU the answer leaves undecided, or decides in two ways, or sends
    back without a change stays held; the verdict's notes say why."""
    form = ReviewInput.model_validate(answer)
    reviewer = form.reviewer.strip()
    by_sku = {item.job.sku: item for item in hold.held}
    asked = {"approve": set(form.approve), "reject": set(form.reject), "rerender": set(form.rerender)}
    notes = [f"{sku!r} is not waiting for review" for sku in sorted(set().union(*asked.values()) - set(by_sku))]
    twice = {sku for sku in by_sku if sum(sku in listed for listed in asked.values()) > 1}
    notes += [f"{sku!r} was listed under more than one decision; it stays held" for sku in sorted(twice)]
    changes = sorted(set(form.rerender_changes) | set(parse_changes(form.rerender_note)))
    rerender = asked["rerender"] & set(by_sku) - twice
    if rerender and not changes:
        notes.append(
            f"re-render of {', '.join(sorted(rerender))} needs a change ({', '.join(CHANGES)}); they stay held"
        )
        rerender = set()
    reject = asked["reject"] & set(by_sku) - twice
    approve = asked["approve"] & set(by_sku) - twice
    if form.approve_all:
        approve |= set(by_sku) - twice - set().union(*asked.values())
    rerender_note = "; ".join(filter(None, [form.rerender_note.strip(), "changes: " + ", ".join(changes)]))
    items: list[ShardItem] = []
    with session_scope(database_url) as s:
        for sku, item in by_sku.items():
            sku_id = item.job.sku_id
            if sku in approve:
                repo.record_review(s, sku_id, decision="approve", reviewer=reviewer, note=None, round=hold.round)
                _move(s, sku_id, SkuState.approved)
            elif sku in reject:
                note = form.reject_note.strip() or None
                repo.record_review(s, sku_id, decision="reject", reviewer=reviewer, note=note, round=hold.round)
                _move(s, sku_id, SkuState.rejected, f"review: rejected by {reviewer}" + (f": {note}" if note else ""))
            elif sku in rerender:
                repo.record_review(
                    s, sku_id, decision="rerender", reviewer=reviewer, note=rerender_note, round=hold.round
                )
                items.append(ShardItem(job=item.job, source=item.source, params=rerender_params(item.outcome, changes)))
    return ReviewVerdict(rerender=items, notes=notes)


def _move(session, sku_id: int, state: SkuState, reason: str | None = None) -> None:
    """The state change a decision makes; already made (a replayed answer) is fine."""
    if session.get(Sku, sku_id).state != state.value:
        repo.set_sku_state(session, sku_id, state, reason)
