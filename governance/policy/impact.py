"""Impact analysis: what a proposed policy set would decide differently from the set in force.

Every model's latest version is evaluated, under both sets, for each trigger that can come
next for it: the lifecycle transitions allowed from its status and the periodic check
(or only the triggers asked for). An object is a (version, trigger) pair; it is listed when
its overall outcome would change, and separately when only the rules that fire would
change. The input documents are built once per version (``document.version_documents``),
as by a system actor at one moment, so rules that read ``requested_by`` see a requester
that is not a developer. Nothing is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from audit.services import SystemActor
from governance.policy import document as documents
from governance.policy import engine, triggers
from models_registry import lifecycle
from models_registry.models import ModelVersion

_CHUNK = 2000  # versions whose documents are built at a time (bounded memory, few queries)


@dataclass(frozen=True)
class ImpactChange:
    version_id: int
    model: str
    version: str
    status: str
    trigger: str
    before: str
    after: str
    # (rule id, outcome under the active set or "-", outcome under the proposed set or "-")
    rules: tuple[tuple[str, str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "trigger": self.trigger,
            "before": self.before,
            "after": self.after,
            "rules": [{"id": rule, "before": before, "after": after} for rule, before, after in self.rules],
        }


@dataclass
class ImpactReport:
    active_hash: str | None
    proposed_hash: str
    versions: int = 0
    evaluated: int = 0
    changes: list[ImpactChange] = field(default_factory=list)
    rule_changes: list[ImpactChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active_policy_set": self.active_hash,
            "proposed_policy_set": self.proposed_hash,
            "versions": self.versions,
            "evaluated": self.evaluated,
            "outcome_changes": [change.as_dict() for change in self.changes],
            "rule_changes": [change.as_dict() for change in self.rule_changes],
        }


def next_triggers(status: str) -> list[triggers.Trigger]:
    """The triggers that can come next for a version in ``status``."""
    targets = dict.fromkeys(lifecycle.allowed_targets(status))  # distinct, in definition order
    return [triggers.Trigger(kind=triggers.TRANSITION, source=status, target=t) for t in targets] + [
        triggers.Trigger(kind=triggers.PERIODIC)
    ]


def latest_version_ids() -> list[int]:
    """Every model's latest version (by creation time, then id), across the whole inventory."""
    latest: dict[int, int] = {}
    rows = ModelVersion.objects.order_by("model_id", "created_at", "pk").values_list("model_id", "pk")
    for model_id, pk in rows.iterator(chunk_size=5000):
        latest[model_id] = pk  # ordered ascending: the last one seen is the latest
    return sorted(latest.values())


def _reads_trigger(rule: engine.CompiledRule) -> bool:
    return rule.paths is engine.ALL_PATHS or any(path[0] == "trigger" for path in rule.paths)


def _results(
    rules: Sequence[engine.CompiledRule],
    document: Mapping[str, Any],
    variables: engine.Variables,
    decided: dict[str, engine.Pending],
) -> list[engine.RuleResult]:
    """Outcomes of ``rules``, each distinct rule decided once (``decided`` caches by outcome key)."""
    out = []
    for rule in rules:
        pending = decided.get(rule.outcome_key)
        if pending is None:
            pending = decided[rule.outcome_key] = engine.decide(rule, variables)
        out.append(engine.rule_result(engine.Pending(rule, pending.outcome, pending.error), document, None))
    return out


def compare_documents(
    *,
    proposed: engine.CompiledPolicySet,
    active: engine.CompiledPolicySet | None,
    base_documents: Iterable[Mapping[str, Any]],
    at: dt.datetime,
    only: Sequence[triggers.Trigger] | None = None,
    report: ImpactReport | None = None,
) -> ImpactReport:
    """Compare both sets on ready-made (trigger-free) documents. ``active`` None: no set is in
    force, which allows everything.

    Outcomes only (no messages). Per document, the CEL context is built once for every
    trigger and both sets, and a rule that decides alike in both sets (same compiled
    condition, effect and approval) is evaluated once: converting the document into CEL
    values is most of the cost, and most rules do not change between two sets.
    """
    report = report or ImpactReport(
        active_hash=active.content_hash if active else None, proposed_hash=proposed.content_hash
    )
    requested_by = documents.requester(SystemActor("policy_impact"))
    for base in base_documents:
        report.versions += 1
        status = base["lifecycle"]["status"]
        candidates = next_triggers(status)
        if only is not None:
            candidates = [t for t in only if t.kind != triggers.TRANSITION or t.source == status]
        work = []
        for trigger in candidates:
            before_rules = active.rules_for(trigger) if active else ()
            after_rules = proposed.rules_for(trigger)
            if before_rules or after_rules:
                work.append((trigger, before_rules, after_rules))
        if not work:
            continue  # no rule of either set applies: both allow
        every_rule = [rule for _, before_rules, after_rules in work for rule in (*before_rules, *after_rules)]
        shared = not any(_reads_trigger(rule) for rule in every_rule)
        variables = None
        decided: dict[str, engine.Pending] = {}
        for trigger, before_rules, after_rules in work:
            document = documents.with_trigger(base, trigger=trigger, at=at, requested_by=requested_by)
            if variables is None or not shared:
                scope = every_rule if shared else (*before_rules, *after_rules)
                variables = engine.Variables(document, engine.merge_paths(rule.paths for rule in scope))
                decided = {}

            before = _results(before_rules, document, variables, decided)
            after = _results(after_rules, document, variables, decided)
            report.evaluated += 1
            before_outcomes = {result.id: result.outcome for result in before}
            after_outcomes = {result.id: result.outcome for result in after}
            if before_outcomes == after_outcomes:
                continue
            before_overall = engine.overall(before)
            after_overall = engine.overall(after)
            change = ImpactChange(
                version_id=base["version"]["id"],
                model=base["model"]["name"],
                version=base["version"]["label"],
                status=status,
                trigger=trigger.name,
                before=before_overall,
                after=after_overall,
                rules=tuple(
                    (rule_id, before_outcomes.get(rule_id, "-"), after_outcomes.get(rule_id, "-"))
                    for rule_id in sorted(before_outcomes.keys() | after_outcomes.keys())
                    if before_outcomes.get(rule_id) != after_outcomes.get(rule_id)
                ),
            )
            (report.changes if before_overall != after_overall else report.rule_changes).append(change)
    return report


def inventory_impact(
    *,
    proposed: engine.CompiledPolicySet,
    active: engine.CompiledPolicySet | None,
    at: dt.datetime | None = None,
    only: Sequence[triggers.Trigger] | None = None,
) -> ImpactReport:
    """Compare both sets over every model's latest version."""
    at = at or timezone.now()
    report = ImpactReport(active_hash=active.content_hash if active else None, proposed_hash=proposed.content_hash)
    ids = latest_version_ids()
    for start in range(0, len(ids), _CHUNK):
        built = documents.version_documents(ids[start : start + _CHUNK])
        base_documents = (built[pk] for pk in ids[start : start + _CHUNK] if pk in built)
        compare_documents(
            proposed=proposed, active=active, base_documents=base_documents, at=at, only=only, report=report
        )
    return report
