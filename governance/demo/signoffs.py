"""The demo's policies and sign-offs: the compliance officer puts the shipped policy set in
force, then three sign-off requests show the workflow's outcomes (approved, blocked by a rule,
rejected by an approver). Written against the same services as the API and admin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from governance import services
from governance.models import Finding, PolicySet, SignOffRequest
from models_registry.models import ModelVersion

DEMO_VERSION = "1.0.0"
EVIDENCE = {
    "nvda-direction-logistic": [
        {"title": "Independent validation report", "reference": "VAL-2026-031 (vera, held-out 2012-2014)"},
        {"title": "Backtest with costs", "reference": "BT-NVDA-LOGIT-07"},
    ],
    "orcl-regime-tree": [
        {"title": "Independent validation report", "reference": "VAL-2026-032 (vera)"},
        {"title": "Regime-flag hit rate study", "reference": "RISK-ORCL-2026-04"},
    ],
    "nvda-next-day-return-linear": [
        {"title": "Independent validation report", "reference": "VAL-2026-033 (vera)"},
    ],
}


@dataclass
class Outcome:
    model: str
    status: str
    details: list[str]


def activate_policies(users: dict[str, AbstractBaseUser], notes: list[str]) -> PolicySet:
    """Carl (compliance) puts the shipped set in force; re-running changes nothing."""
    policy_set, changed = services.policy_set_activate(
        actor=users["carl"], reason="Firm-wide model policies (demo): shipped default set."
    )
    if changed:
        notes.append(f"policy set {policy_set.content_hash[:12]} activated by carl ({len(policy_set.rule_ids)} rules)")
    return policy_set


def _version(model_name: str) -> ModelVersion:
    return ModelVersion.objects.select_related("model").get(model__name=model_name, version=DEMO_VERSION)


def _existing(version: ModelVersion) -> SignOffRequest | None:
    return SignOffRequest.objects.filter(version=version, to_status="approved").order_by("-pk").first()


def _submit(version: ModelVersion, owner: AbstractBaseUser, justification: str) -> SignOffRequest:
    return services.signoff_submit(
        actor=owner,
        version=version,
        to_status="approved",
        justification=justification,
        evidence=EVIDENCE[version.model.name],
    )


def _approved(users: dict[str, AbstractBaseUser]) -> SignOffRequest:
    """Alice asks to approve her logistic model for use; Max (risk) and Carl (compliance) approve."""
    version = _version("nvda-direction-logistic")
    request = _existing(version)
    if request is None:
        request = _submit(
            version,
            users["alice"],
            "Validated by vera on held-out 2012-2014 data; accuracy and precision above the desk's thresholds.",
        )
        request = services.signoff_respond(
            actor=users["max"],
            request=request,
            verdict="approve",
            comment="Capital at risk within the desk's limits; drawdown profile acceptable.",
        )
        request = services.signoff_respond(
            actor=users["carl"],
            request=request,
            verdict="approve",
            comment="Approved as an exception without risk-assessment metrics (tier 3); revisit at the first run.",
        )
    return request


def _blocked(users: dict[str, AbstractBaseUser]) -> SignOffRequest:
    """Bob asks to approve his regime tree; after Max approves, Vera raises a high-severity
    finding, so at Carl's approval the policies deny it (FINDINGS-01) and the request is blocked."""
    version = _version("orcl-regime-tree")
    request = _existing(version)
    if request is None:
        request = _submit(version, users["bob"], "Validated; advisory regime flag for the execution desk's limits.")
        request = services.signoff_respond(
            actor=users["max"], request=request, verdict="approve", comment="Advisory use only; fine for risk."
        )
    if not Finding.objects.filter(version=version).exists():
        services.finding_raise(
            actor=users["vera"],
            version=version,
            severity="high",
            title="Regime labels computed with the same day's close",
            description=(
                "The down-day label and the 20-day volatility both use the close of the day being predicted: "
                "look-ahead that inflates recall on the test period."
            ),
            remediation_owner=users["bob"],
            due_date=timezone.now().date() + dt.timedelta(days=21),
        )
    if request.status == SignOffRequest.Status.PENDING:
        request = services.signoff_respond(
            actor=users["carl"], request=request, verdict="approve", comment="Compliance has no objection."
        )
    return request


def _rejected(users: dict[str, AbstractBaseUser]) -> SignOffRequest:
    """Alice asks to approve her linear return model; Max rejects it."""
    version = _version("nvda-next-day-return-linear")
    request = _existing(version)
    if request is None:
        request = _submit(version, users["alice"], "Validated; small directional overlay within USD 2m.")
        request = services.signoff_respond(
            actor=users["max"],
            request=request,
            verdict="reject",
            comment=(
                "Directional accuracy is barely above 50% on 2012-2014 and no cost-adjusted Sharpe ratio is "
                "evidenced: not fit for use as proposed."
            ),
        )
    return request


def run(users: dict[str, AbstractBaseUser]) -> list[Outcome]:
    outcomes = []
    for scenario in (_approved, _blocked, _rejected):
        request = scenario(users)
        details: list[str] = []
        for item in request.reasons:
            if item["outcome"] == "deny":
                details.append(f"{item['id']}: {item['message']} [{'; '.join(item['references'])}]")
        last = request.responses.order_by("-decided_at", "-pk").first()
        if request.status == SignOffRequest.Status.REJECTED and last is not None:
            details.append(f"{last.approver_label}: {last.comment}")
        if request.status == SignOffRequest.Status.APPROVED:
            approvers = request.responses.filter(round=request.round, verdict="approve")
            details.append("approved by " + ", ".join(r.approver_label for r in approvers))
        outcomes.append(Outcome(model=request.model.name, status=request.status, details=details))
    return outcomes


def describe(outcomes: list[Outcome]) -> list[str]:
    lines: list[Any] = []
    for outcome in outcomes:
        lines.append(f"  {outcome.model:<30} {outcome.status}")
        lines.extend(f"      {detail}" for detail in outcome.details)
    return lines
