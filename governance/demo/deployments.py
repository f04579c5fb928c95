"""The demo's phased deployment, live monitoring and automatic rollback (issue 8).

Alice retrains her logistic NVDA model (1.1.0); it is validated and approved like 1.0.0,
deployed in the shadow phase with 1.0.0 as its rollback target, fed ten days of simulated
live data (``governance.live_simulation``: the real artifact's own predictions on real NVDA
rows), promoted to the pilot phase by a sign-off, and fed again with an accuracy drop
injected from the fifth pilot day. The anomaly rules detect it, suspend the model and roll it
back to 1.0.0, all as system actors, every step an audit event. Written against the same
services as the API, the admin and ``manage.py simulate_live``.

The demo compresses weeks into a minute: the shadow phase's replayed days are dated on the
business days before the pilot's, and the pilot's end today, so both lie before the moment
the deployment was made. The shadow phase's minimum duration (two weeks) has therefore not
run when it is promoted: the policies make that an escalated exception (DEPLOY-DURATION-02),
approved by a risk manager and a compliance officer, as a firm would for an early promotion.

Idempotent: once the model has a deployment, a rerun changes nothing and describes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from sklearn.base import clone
from skops import io as sio

from audit.models import Event
from audit.services import SystemActor
from governance import live_simulation, selectors, services
from governance.demo import catalogue, market
from governance.models import Deployment, MonitoringAlert, SignOffRequest
from models_registry import services as registry
from models_registry.models import ModelVersion

MODEL = "nvda-direction-logistic"
TARGET_VERSION = "1.0.0"
NEW_VERSION = "1.1.0"
NEW_C = 0.5
SHADOW_DAYS = 10
PILOT_DAYS = 15
DROP_DAY = 5
# Seeds whose clean days raise no alert (the rules' false-alarm rate is about 0.3% of days);
# one per phase, so the pilot does not replay the shadow phase's draws.
SHADOW_SEED = 11
PILOT_SEED = 12
SIMULATOR = SystemActor("simulate_live")
ROLLBACK_PLAN = (
    "Roll back to 1.0.0 (approved, same features and limits) with the rollback action; if that "
    "fails, engage the kill switch and the desk unwinds the NVDA positions within the day."
)
EVIDENCE = [
    {"title": "Independent validation report", "reference": "VAL-2026-041 (vera, validation split 2009-2011)"},
    {"title": "Shadow-phase monitoring", "reference": "10 trading days, no alert (demo)"},
]


@dataclass
class Story:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)


def _train_new_version() -> tuple[bytes, float]:
    """1.1.0: the same features and estimator with stronger regularisation; its accuracy on
    the validation split (2009-2011) is the baseline the accuracy rule watches."""
    spec = next(s for s in catalogue.MODELS if s.name == MODEL)
    estimator = clone(spec.estimator).set_params(model__C=NEW_C)
    features = market.build_features(market.load_prices(spec.ticker))
    train = market.features_for_split(features, market.SPLITS[0])
    validation = market.features_for_split(features, market.SPLITS[1])
    estimator.fit(train[market.FEATURES], train[spec.target])
    baseline = float(np.mean(estimator.predict(validation[market.FEATURES]) == validation[spec.target]))
    return sio.dumps(estimator), round(baseline, 4)


def _new_version(users: dict[str, AbstractBaseUser], story: Story) -> tuple[ModelVersion, float]:
    current = ModelVersion.objects.select_related("model").get(model__name=MODEL, version=TARGET_VERSION)
    artifact, baseline = _train_new_version()
    version = ModelVersion.objects.filter(model=current.model, version=NEW_VERSION).first()
    if version is None:
        version = registry.model_version_create(
            actor=users["alice"],
            model=current.model,
            version=NEW_VERSION,
            artifact=artifact,
            hyperparameters={"C": NEW_C, "max_iter": 1000},
            code_repository=current.code_repository,
            code_commit="8b41e0c2d9aa",
            training_dataset=current.training_dataset,
            validation_dataset=current.validation_dataset,
            test_dataset=current.test_dataset,
            feature_pipeline=current.feature_pipeline,
            target=current.target,
            reason=f"Retrained with stronger regularisation (C={NEW_C}).",
        )
        story.say(f"alice registered {MODEL} {NEW_VERSION} (C={NEW_C}); validation accuracy {baseline:.4f}")
    for status in ("in_development", "submitted_for_validation", "validated"):
        if version.status in ("draft", *_before(status)):
            who = catalogue.STEP_ACTOR[status]
            actor = users["alice"] if who == "owner" else users[who]
            version = registry.model_version_transition(
                actor=actor, version=version, to_status=status, reason=catalogue.STEP_REASON[status]
            )
    if version.status == "validated":
        request = services.signoff_submit(
            actor=users["alice"],
            version=version,
            to_status="approved",
            justification="Retrained 1.0.0 with stronger regularisation; validated by vera on 2009-2011.",
            evidence=EVIDENCE[:1],
        )
        for approver, comment in (
            ("max", "Same features and limits as 1.0.0; fine for a phased deployment."),
            ("carl", "Approved as an exception without risk-assessment metrics (as 1.0.0); monitored from shadow."),
        ):
            request = services.signoff_respond(
                actor=users[approver], request=request, verdict="approve", comment=comment
            )
        story.say(f"{MODEL} {NEW_VERSION} approved for use by max and carl (sign-off {request.pk}: {request.status})")
        version.refresh_from_db()
    return version, baseline


def _before(status: str) -> tuple[str, ...]:
    path = ("in_development", "submitted_for_validation", "validated")
    return path[: path.index(status)]


def _deploy(
    users: dict[str, AbstractBaseUser], version: ModelVersion, target: ModelVersion, *, phase: str, **limits: object
) -> SignOffRequest:
    request = services.signoff_submit(
        actor=users["alice"],
        version=version,
        to_status="deployed",
        justification=limits.pop("justification"),  # type: ignore[arg-type]
        evidence=EVIDENCE if phase != "shadow" else EVIDENCE[:1],
        deployment={
            "phase": phase,
            "instruments": ["NVDA"],
            "currency": "USD",
            "rollback_target": {"version_id": target.pk, "label": target.version},
            "rollback_plan": ROLLBACK_PLAN,
            **limits,
        },
    )
    for approver in ("max", "carl"):
        if request.status != SignOffRequest.Status.PENDING:
            break
        request = services.signoff_respond(
            actor=users[approver], request=request, verdict="approve", comment=f"Limits for {phase} agreed."
        )
    return request


def _feed(
    deployment: Deployment, story: Story, *, days: int, seed: int, until: dt.datetime, inject: str | None = None
) -> None:
    injections = [live_simulation.parse_injection(inject, days=days)] if inject else []
    plan = live_simulation.plan(deployment, days=days, injections=injections, seed=seed, until=until)
    story.say(
        f"  simulate_live: {days} days x {len(plan.draws[0].rows)} decisions of {deployment.version.version} "
        f"({deployment.phase}), real NVDA rows {plan.pool.dates[0]} to {plan.pool.dates[-1]}"
        + (f", injected {injections[0]}" if injections else "")
    )
    for day in plan.feed(actor=SIMULATOR, wait=60.0):
        pnl = sum((s["pnl"] for s in day.samples), Decimal(0))
        story.say(
            f"    day {day.draw.day:>2} {day.day}: accuracy {day.draw.accuracy:.3f}, P&L {pnl:+,.2f} USD"
            + (" (injected)" if day.draw.injections else "")
        )
        for alert in day.alerts:
            done = ", ".join(
                f"{r.get('action')}: {r.get('status')}" for r in alert.action_results if isinstance(r, dict)
            )
            story.say(f"    ALERT {alert.rule_id} ({alert.severity}): {alert.message}")
            story.say(f"      actions taken by system:monitoring: {done or 'none'}")
        if day.stopped:
            story.say(f"    feeding stopped after day {day.draw.day}: {day.stopped}")


def run(users: dict[str, AbstractBaseUser]) -> list[str]:
    story = Story()
    model_deployments = Deployment.objects.filter(model__name=MODEL)
    if not model_deployments.exists():
        _scenario(users, story)
    else:
        story.say(f"(already deployed by an earlier run: {model_deployments.count()} deployments of {MODEL})")
    _describe(story)
    return story.lines


def _scenario(users: dict[str, AbstractBaseUser], story: Story) -> None:
    target = ModelVersion.objects.get(model__name=MODEL, version=TARGET_VERSION)
    if target.status != "approved":
        story.say(f"{MODEL} {TARGET_VERSION} is {target.status}, not approved: no rollback target, no deployment")
        return
    version, baseline = _new_version(users, story)
    if version.status != "approved":
        story.say(f"{MODEL} {NEW_VERSION} is {version.status}: not deployed")
        return
    request = _deploy(
        users,
        version,
        target,
        phase="shadow",
        capital_limit="2000000.00",
        max_daily_loss="100000.00",
        monitoring_parameters={"accuracy": {"baseline": baseline}},
        justification="Shadow (paper) phase: 10 trading days against the validation baseline.",
    )
    story.say(f"shadow deployment of {NEW_VERSION} approved by max (sign-off {request.pk}: {request.status})")
    deployment = Deployment.objects.get(model=version.model, status=Deployment.Status.ACTIVE)
    now = timezone.now()
    # The shadow days end before the pilot's: room for the pilot's days up to today.
    shadow_until = now - dt.timedelta(days=(PILOT_DAYS + 4) * 7 // 5 + 2)
    _feed(deployment, story, days=SHADOW_DAYS, seed=SHADOW_SEED, until=shadow_until)
    request = _deploy(
        users,
        version,
        target,
        phase="pilot",
        capital_limit="4000000.00",
        max_daily_loss="80000.00",
        monitoring_parameters={"accuracy": {"baseline": baseline}},
        justification="Shadow phase clean over 10 trading days; pilot with USD 4m on NVDA.",
    )
    escalated = [
        f"{r['id']} ({r['outcome']})"
        for r in request.reasons
        if r.get("outcome") not in ("pass", "not_applicable") and r.get("id") != "DEPLOY-APPROVE-01"
    ]
    story.say(
        f"promotion to pilot: sign-off {request.pk} {request.status}"
        + (f"; rules that asked for more: {', '.join(escalated)}" if escalated else "")
    )
    deployment.refresh_from_db()
    if request.status != SignOffRequest.Status.APPROVED:
        for item in request.reasons:
            if item.get("outcome") == "deny":
                story.say(f"  {item['id']}: {item['message']}")
        return
    _pilot_cap(users, deployment, story)
    _feed(deployment, story, days=PILOT_DAYS, seed=PILOT_SEED, until=now, inject=f"accuracy_drop@{DROP_DAY}")


def _pilot_cap(users: dict[str, AbstractBaseUser], deployment: Deployment, story: Story) -> None:
    """Carl (compliance) caps the pilot's positions at half of what the signal implies: a
    post-model adjustment on 1.1.0 for the pilot's first 30 days (PRA SS1/23 Principle 5)."""
    start = deployment.phase_started_at
    adjustment = registry.adjustment_create(
        actor=users["carl"],
        version=deployment.version,
        adjustment=f"cap: NVDA position at most 50% of the size the signal implies (pilot limit USD "
        f"{deployment.capital_limit:,.0f} unchanged)",
        description="Orders from the model's long/flat signal are sized at half the model's size for the pilot phase.",
        reason="Conservative overlay while live evidence is gathered: the pilot was promoted before the shadow "
        "phase's minimum duration (DEPLOY-DURATION-02 exception).",
        effective_from=start,
        effective_until=start + dt.timedelta(days=30),
    )
    story.say(f"post-model adjustment {adjustment.pk} by carl on {deployment.version}: {adjustment.adjustment}")


def _describe(story: Story) -> None:
    deployments = Deployment.objects.filter(model__name=MODEL).select_related("version").order_by("pk")
    if not deployments:
        return
    story.say("Deployments of " + MODEL + ":")
    for d in deployments:
        story.say(
            f"  {d.pk}: {d.version.version} phase {d.phase}, USD {d.capital_limit:,.2f}, {d.get_status_display()}"
            + (f", kill switch: {d.kill_reason}" if d.kill_switch_engaged else "")
        )
    for alert in MonitoringAlert.objects.filter(model__name=MODEL).order_by("pk"):
        story.say(f"  alert {alert.pk} {alert.rule_id} {alert.status}: actions {', '.join(alert.actions)}")
    model_id = deployments[0].model_id
    selectors.forget_trading_permission(model_id)
    permission = selectors.trading_permission(model_id=model_id)
    story.say(
        f"  trading permission now: {'allowed' if permission['allowed'] else 'NOT allowed'}, version "
        f"{permission['version']}, phase {permission['phase']} ({permission['reason']})"
    )
    ids = [str(d.pk) for d in deployments]
    actions = (
        Event.objects.filter(object_type="governance.deployment", object_id__in=ids)
        .order_by("seq")
        .values_list("seq", "action", "actor_label")
    )
    story.say("  audit events on these deployments: " + "; ".join(f"#{s} {a} by {who}" for s, a, who in actions))
