"""Annual self-assessment of algorithmic trading models (report type ``self-assessment``).

MiFID II RTS 6 (Delegated Regulation 2017/589) Art. 9 and Annex I: once a year the firm
assesses its algorithmic trading systems, their governance, limits and kill functionality,
monitoring and controls, and remedies what it finds; the risk management function writes it,
compliance is informed, internal audit reviews it and senior management approves it.

The subject is a **period** (the year assessed, UTC days inclusive). Every figure is computed
here from the database and the audit log up to the checkpoint; where the system holds no
record of something the article asks for (kill switch tests, stress tests, the approval chain)
the data says so plainly rather than leaving a gap or inventing one.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate

from audit.models import Event
from governance.models import Deployment, Finding, MonitoringAlert, MonitoringSample, PolicySet
from governance.reports.context import BuildContext
from governance.reports.envelope import iso
from governance.roles import Role
from models_registry.models import Model, RiskAssessment

# RTS 6 Art. 9 is annual: requested without a period, the report covers the last 365 UTC days
# ending today (report_services.report_request, through the registry's default_period_days).
DEFAULT_PERIOD_DAYS = 365
SAFETY_ACTIONS = ("kill_switch.engaged", "kill_switch.lifted", "deployment.rolled_back")
VALIDATION_ACTIONS = ("model_version.validate", "model_version.reject")
# The roles that hold a step of RTS 6 Annex I's approval chain, in its order.
CHAIN = (
    ("risk", "Author: risk management function", Role.RISK_MANAGER),
    ("compliance", "Informed: compliance function", Role.COMPLIANCE_OFFICER),
    ("audit", "Reviewed: internal audit", Role.INTERNAL_AUDITOR),
    ("management", "Approved: senior management", None),
)
ROLES = (
    Role.MODEL_OWNER,
    Role.MODEL_DEVELOPER,
    Role.VALIDATOR,
    Role.RISK_MANAGER,
    Role.COMPLIANCE_OFFICER,
    Role.INTERNAL_AUDITOR,
    Role.ADMINISTRATOR,
    Role.TRADING_SYSTEM,
)


def _duration(delta: dt.timedelta | None) -> str | None:
    if delta is None:
        return None
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "timestamp": iso(event.timestamp),
        "actor": event.actor_label,
        "system_actor": event.actor_id is None,
        "action": event.action,
        "object": event.object_repr or f"{event.object_type}:{event.object_id}",
        "reason": event.reason,
        # Said by whoever pulled it (kill_switch_engage(drill=True)), recorded in the event.
        "drill": event.action == "kill_switch.engaged" and bool((event.after or {}).get("kill_drill")),
    }


def _events(start: dt.datetime, end: dt.datetime, up_to: int, condition: Q) -> list[Event]:
    return list(
        Event.objects.filter(condition, timestamp__gte=start, timestamp__lt=end, seq__lte=up_to).order_by("seq")
    )


def _alert_row(alert: MonitoringAlert) -> dict[str, Any]:
    acted = alert.acknowledged_at or alert.resolved_at
    false_alarm = alert.status == MonitoringAlert.Status.RESOLVED and alert.false_alarm
    return {
        "id": alert.pk,
        "model": alert.model.name,
        "version": alert.version.version,
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "status": alert.status,
        "raised_at": iso(alert.raised_at),
        "automatic_actions": [
            f"{item.get('action')}: {item.get('status')}" for item in alert.action_results if item.get("action")
        ],
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
        "resolved_by": alert.resolved_by.get_username() if alert.resolved_by_id else None,
        "resolution": alert.resolution,
        "time_to_action": _duration(acted - alert.raised_at) if acted else None,
        "time_to_action_seconds": (acted - alert.raised_at).total_seconds() if acted else None,
        "time_to_resolution": _duration(alert.resolved_at - alert.raised_at) if alert.resolved_at else None,
        "false_alarm": false_alarm,
    }


def _loss_limit_breaches(deployments: list[Deployment], start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Days (UTC) of the period on which a deployment lost more than its maximum daily loss."""
    limits = {d.pk: d for d in deployments if d.max_daily_loss is not None}
    if not limits:
        return []
    rows = (
        MonitoringSample.objects.filter(deployment_id__in=list(limits), at__gte=start, at__lt=end)
        .annotate(day=TruncDate("at", tzinfo=dt.UTC))
        .values("deployment_id", "day")
        .annotate(pnl=Sum("pnl"))
        .order_by("day", "deployment_id")
    )
    breaches = []
    for row in rows:
        deployment = limits[row["deployment_id"]]
        if row["pnl"] is not None and -row["pnl"] > deployment.max_daily_loss:
            breaches.append(
                {
                    "model": deployment.model.name,
                    "version": deployment.version.version,
                    "deployment_id": deployment.pk,
                    "phase": deployment.phase,
                    "day": row["day"].isoformat(),
                    "pnl": str(row["pnl"]),
                    "max_daily_loss": str(deployment.max_daily_loss),
                    "currency": deployment.currency,
                }
            )
    return breaches


def _models_in_scope(deployments: list[Deployment]) -> list[dict[str, Any]]:
    by_model: dict[int, list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        by_model[deployment.model_id].append(deployment)
    rows = []
    for model_id, items in sorted(by_model.items(), key=lambda kv: kv[1][0].model.name):
        model = items[0].model
        rows.append(
            {
                "id": model_id,
                "name": model.name,
                "owner": model.owner.get_username(),
                "desk": model.desk.name,
                "risk_tier": model.risk_tier_override or model.risk_tier,
                "materiality": str(model.materiality),
                "deployments": [
                    {
                        "id": d.pk,
                        "version": d.version.version,
                        "phase": d.phase,
                        "status": d.status,
                        "capital_limit": str(d.capital_limit),
                        "currency": d.currency,
                        "max_daily_loss": None if d.max_daily_loss is None else str(d.max_daily_loss),
                        "started_at": iso(d.started_at),
                        "ended_at": iso(d.ended_at),
                    }
                    for d in sorted(items, key=lambda d: (d.started_at, d.pk))
                ],
            }
        )
    return rows


def _roles() -> list[dict[str, Any]]:
    groups = {g.name: g for g in Group.objects.filter(name__in=[str(r) for r in ROLES])}
    rows = []
    for role in ROLES:
        group = groups.get(str(role))
        holders = sorted(u.get_username() for u in group.user_set.filter(is_active=True)) if group is not None else []
        rows.append({"role": str(role), "holders": holders})
    return rows


def build(ctx: BuildContext) -> dict[str, Any]:
    report = ctx.report
    start = dt.datetime.combine(report.period_from, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(report.period_to, dt.time.min, tzinfo=dt.UTC) + dt.timedelta(days=1)
    up_to = ctx.checkpoint.tree_size
    period = {"from": iso(start), "to_exclusive": iso(end), "days": (end - start).days}

    # Scope: every deployment live at some moment of the period.
    deployments = list(
        Deployment.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start), started_at__lt=end)
        .select_related("model", "model__owner", "model__desk", "version")
        .order_by("started_at", "pk")
    )
    scope = _models_in_scope(deployments)
    ctx.progress(30, "alerts, safety actions and limits")

    alerts = [
        _alert_row(a)
        for a in MonitoringAlert.objects.filter(raised_at__gte=start, raised_at__lt=end)
        .select_related("model", "version", "acknowledged_by", "resolved_by")
        .order_by("raised_at", "pk")
    ]
    safety_raw = _events(start, end, up_to, Q(action__in=SAFETY_ACTIONS, object_type="governance.deployment"))
    safety = [_event_row(e) for e in safety_raw]
    safety_by_deployment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event, row in zip(safety_raw, safety, strict=True):
        safety_by_deployment[event.object_id].append(row)
    breaches = _loss_limit_breaches(deployments, start, end)

    # Per model: its alerts and safety actions of the year.
    for row in scope:
        ids = {str(d["id"]) for d in row["deployments"]}
        row["alerts"] = [a for a in alerts if a["model"] == row["name"]]
        row["safety_events"] = sorted(
            (e for pk in ids for e in safety_by_deployment.get(pk, [])), key=lambda e: e["seq"]
        )
        row["loss_limit_breaches"] = [b for b in breaches if b["model"] == row["name"]]
        findings = Finding.objects.filter(model_id=row["id"])
        # Open at the end of the period: raised before it ended, not closed by then.
        row["open_findings"] = (
            findings.filter(raised_at__lt=end).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=end)).count()
        )
        last_validation = (
            Event.objects.filter(
                action="model_version.validate",
                object_type="models_registry.modelversion",
                object_id__in=[str(pk) for pk in Model.objects.get(pk=row["id"]).versions.values_list("pk", flat=True)],
                timestamp__lt=end,
                seq__lte=up_to,
            )
            .order_by("-seq")
            .values_list("timestamp", flat=True)
            .first()
        )
        row["last_validation"] = iso(last_validation)
    ctx.progress(50, "governance, validations and findings")

    sod = []
    for event in _events(start, end, up_to, Q(action="sod.refused")):
        after = event.after or {}
        sod.append({**_event_row(event), "rule": after.get("rule", ""), "attempted": after.get("attempted", "")})
    policy_changes = [
        _event_row(e)
        for e in _events(start, end, up_to, Q(action__in=("policy_set.activated", "policy_set.deactivated")))
    ]
    active_set = PolicySet.objects.filter(is_active=True).defer("files").first()

    acted = [a["time_to_action_seconds"] for a in alerts if a["time_to_action_seconds"] is not None]
    by_rule = Counter(a["rule_id"] for a in alerts)
    effectiveness = {
        "alerts_raised": len(alerts),
        "by_rule": [{"rule_id": rule, "count": count} for rule, count in sorted(by_rule.items())],
        "by_severity": [
            {"severity": sev, "count": count} for sev, count in sorted(Counter(a["severity"] for a in alerts).items())
        ],
        "with_automatic_actions": sum(1 for a in alerts if a["automatic_actions"]),
        "acted_on": len(acted),
        "not_acted_on": len(alerts) - len(acted),
        "resolved": sum(1 for a in alerts if a["status"] == "resolved"),
        "false_alarms": sum(1 for a in alerts if a["false_alarm"]),
        "median_time_to_action": _duration(dt.timedelta(seconds=statistics.median(acted))) if acted else None,
        "max_time_to_action": _duration(dt.timedelta(seconds=max(acted))) if acted else None,
    }

    assessments = [
        {
            "id": a.pk,
            "model": a.model.name,
            "version": a.version.version,
            "kind": a.kind,
            "status": a.status,
            "rating": a.rating or "",
            "finished_at": iso(a.finished_at),
        }
        for a in RiskAssessment.objects.filter(finished_at__gte=start, finished_at__lt=end)
        .select_related("model", "version")
        .order_by("finished_at", "pk")
    ]
    validations = [_event_row(e) for e in _events(start, end, up_to, Q(action__in=VALIDATION_ACTIONS))]

    def finding_row(f: Finding) -> dict[str, Any]:
        return {
            "id": f.pk,
            "model": f.model.name,
            "version": f.version.version,
            "title": f.title,
            "severity": f.severity,
            "status": f.status,
            "raised_at": iso(f.raised_at),
            "due_date": iso(f.due_date),
            "closed_at": iso(f.closed_at),
            "remediation_owner": f.remediation_owner.get_username(),
            "overdue": (f.closed_at is None or f.closed_at >= end) and f.due_date < report.period_to,
        }

    findings = Finding.objects.select_related("model", "version", "remediation_owner")
    raised = [finding_row(f) for f in findings.filter(raised_at__gte=start, raised_at__lt=end).order_by("raised_at")]
    closed = [finding_row(f) for f in findings.filter(closed_at__gte=start, closed_at__lt=end).order_by("closed_at")]
    open_at_end = [
        finding_row(f)
        for f in findings.filter(raised_at__lt=end)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=end))
        .order_by("due_date", "pk")
    ]

    roles = _roles()
    holders = {row["role"]: row["holders"] for row in roles}
    chain = [
        {
            "step": key,
            "title": title,
            "role": str(role) if role else None,
            "holders": holders.get(str(role), []) if role else [],
        }
        for key, title, role in CHAIN
    ]
    engaged = [e for e in safety if e["action"] == "kill_switch.engaged"]
    tests = [e for e in engaged if e["drill"]]
    return {
        "period": period,
        "scope": {
            "models": scope,
            "model_count": len(scope),
            "deployment_count": len(deployments),
            "statement": None if scope else "No model was deployed at any time in the period.",
        },
        "governance": {
            "roles": roles,
            "sod_refusals": sod,
            "policy_changes": policy_changes,
            "active_policy_set": active_set.content_hash if active_set else None,
        },
        "controls": {
            "safety_events": safety,
            "engagements": len(engaged),
            "engagements_by_system": sum(1 for e in engaged if e["system_actor"]),
            "lifts": sum(1 for e in safety if e["action"] == "kill_switch.lifted"),
            "rollbacks": sum(1 for e in safety if e["action"] == "deployment.rolled_back"),
            "kill_switch_tests": tests,
            "kill_switch_test_statement": (
                f"{len(tests)} engagement{'s' if len(tests) != 1 else ''} of the kill switch recorded as a drill "
                "(a test of the switch, said so by whoever pulled it)."
                if tests
                else "No test of the kill switch is recorded in the period: no engagement was recorded as a drill, "
                "so every engagement is counted as a real stop."
            ),
            "stress_test_statement": (
                "No stress test at twice the highest volumes of the previous six months (RTS 6 Art. 10) is "
                "recorded by the system."
            ),
            "loss_limit_breaches": breaches,
            "deployments_with_daily_loss_limit": sum(1 for d in deployments if d.max_daily_loss is not None),
        },
        "effectiveness": {**effectiveness, "alerts": alerts},
        "validations": {"assessments": assessments, "transitions": validations},
        "deficiencies": {
            "raised": raised,
            "closed": closed,
            "open_at_end": open_at_end,
            "overdue_at_end": sum(1 for f in open_at_end if f["overdue"]),
        },
        "approval_chain": {
            "steps": chain,
            "statement": (
                "The system does not record these approvals yet: each step is signed here, on the issued report, "
                "by the role's holder. Role holders are those of the system's roles when the report was "
                "generated; the system has no senior management role, so that line is left blank."
            ),
        },
        "sections": [
            {"id": "scope", "title": "Scope: models deployed in the period"},
            {"id": "review", "title": "Review of each model"},
            {"id": "governance", "title": "Governance and accountability"},
            {"id": "limits", "title": "Limits and kill switch"},
            {"id": "effectiveness", "title": "Effectiveness of monitoring and controls"},
            {"id": "validations", "title": "Validations performed"},
            {"id": "deficiencies", "title": "Deficiencies and remediation"},
            {"id": "approval", "title": "Approval chain"},
        ],
    }
