"""Anomaly rules on live monitoring data: evaluate, raise alerts, act (docs/monitoring.md,
"Anomaly rules and alerts").

``monitoring_evaluate`` reads a deployment's samples, runs the detectors
(``governance.detectors``) with the parameters in force (``params.monitoring`` of the active
policy set, merged with the deployment's ``monitoring_parameters``), and evaluates the policy
set at the trigger ``monitoring`` with the detections in ``input.monitoring``; the decision is
stored and audited like every other. Each rule that fires (deny or warn) and has no unresolved
alert on the deployment raises a ``MonitoringAlert`` (event ``monitoring.alert_raised``), and
its ``actions`` are carried out through the existing services as the system actor
``system:monitoring``, in the same transaction: ``revalidate`` requests a full risk assessment,
``suspend`` pulls the kill switch, ``rollback`` returns to the rollback target; ``alert``
e-mails the model's owner and the compliance officers once the transaction commits. What each
action did (or why it could not be done) is kept on the alert (``action_results``, event
``monitoring.alert_actions``): a refusal is never silent.

A rule's detectors restart after its alert is resolved: they read only the samples after the
resolved alert's window, so a rule that fired once is not raised again for the same data.

Entry points: the Celery task run after each ingested batch (``on_ingest``, registered in
``monitoring_services.after_ingest_hooks``), the beat task ``governance.evaluate_monitoring``
over every live deployment, and the acknowledge/resolve services used by the admin and the API.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Min
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, SystemActor, record_event
from audit.snapshot import snapshot
from governance import detectors, notifications, selectors
from governance.errors import Conflict, DomainError, NotPermitted
from governance.models import Deployment, MonitoringAlert, MonitoringSample, PolicyDecision
from governance.policy import store as policy_store
from governance.policy.engine import CompiledPolicySet

logger = logging.getLogger(__name__)

MONITORING = SystemActor("monitoring")
TRIGGER = "monitoring"
FIRING = ("deny", "warn")
# The order in which a rule's actions are carried out: the model is stopped before it is
# rolled back, so a rollback that is refused leaves it stopped.
ACTION_ORDER = ("revalidate", "suspend", "rollback", "alert")
DETECTORS = ("accuracy_drop", "losing_trades", "trade_count", "drawdown", "daily_loss", "feature_drift")

# The parameters a deployment may override, by section: name -> (kind, check). Kinds:
# "fraction" (0 < x < 1), "positive" (> 0), "count" (integer >= 1), "choice", "money"
# (a positive decimal string), "phase_fractions" (phase -> fraction).
_KINDS: dict[str, dict[str, str]] = {
    "accuracy": {
        "baseline": "fraction",
        "method": "choice:cusum,page_hinkley",
        "shift": "fraction",
        "cusum_threshold": "positive",
        "page_hinkley_threshold": "positive",
        "min_samples": "count",
    },
    "losing_trades": {
        "baseline_loss_rate": "fraction",
        "default_loss_rate": "fraction",
        "max_probability": "fraction",
        "max_streak_probability": "fraction",
        "window": "count",
    },
    "trade_count": {"window": "count", "threshold": "positive"},
    "drawdown": {"limit_fraction_by_phase": "phase_fractions", "default_limit_fraction": "fraction"},
    "daily_loss": {"max_daily_loss": "money"},
    "drift": {
        "psi_threshold": "positive",
        "bins": "count",
        "reference_samples": "count",
        "window": "count",
        "min_samples": "count",
    },
}


# Parameters ------------------------------------------------------------------------------------


def _check_value(kind: str, value: Any) -> str | None:
    """The reason ``value`` is not of ``kind``, or None."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "fraction":
        return None if is_number and 0 < value < 1 else "must be a number between 0 and 1 (exclusive)"
    if kind == "positive":
        return None if is_number and value > 0 else "must be a positive number"
    if kind == "count":
        return (
            None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "must be an integer >= 1"
        )
    if kind.startswith("choice:"):
        choices = kind.removeprefix("choice:").split(",")
        return None if value in choices else f"must be one of {', '.join(choices)}"
    if kind == "money":
        try:
            amount = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            amount = None
        ok = amount is not None and amount.is_finite() and amount > 0
        return None if ok else 'must be a positive decimal amount as a string, e.g. "50000.00"'
    if kind == "phase_fractions":
        if not isinstance(value, Mapping) or not value:
            return "must map phase names to fractions"
        bad = [str(phase) for phase, fraction in value.items() if _check_value("fraction", fraction) is not None]
        return f"fractions between 0 and 1 (exclusive) are needed for {', '.join(bad)}" if bad else None
    raise AssertionError(kind)


def clean_monitoring_parameters(value: Any) -> dict[str, Any]:
    """A deployment's overrides of the anomaly rules' parameters, checked: known sections and
    names, values of the right kind. ``ValidationError`` on the ``monitoring_parameters`` field
    lists every problem (``monitoring_parameters.accuracy.shift: must be ...``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            {"monitoring_parameters": ["monitoring_parameters: must be an object {section: {name: value}}"]}
        )
    problems: list[str] = []
    cleaned: dict[str, Any] = {}
    for section, items in value.items():
        known = _KINDS.get(section)
        if known is None:
            problems.append(f"{section}: unknown section; sections are {', '.join(_KINDS)}")
            continue
        if not isinstance(items, Mapping):
            problems.append(f"{section}: must be an object of parameters")
            continue
        for name, item in items.items():
            kind = known.get(name)
            if kind is None:
                problems.append(f"{section}.{name}: unknown parameter; {section} has {', '.join(known)}")
                continue
            reason = _check_value(kind, item)
            if reason:
                problems.append(f"{section}.{name}: {reason}")
            else:
                cleaned.setdefault(section, {})[name] = copy.deepcopy(item)
    accuracy = {**cleaned.get("accuracy", {})}
    if "baseline" in accuracy and "shift" in accuracy and accuracy["shift"] >= accuracy["baseline"]:
        problems.append("accuracy.shift: must be below accuracy.baseline")
    if problems:
        raise ValidationError({"monitoring_parameters": [f"monitoring_parameters.{problem}" for problem in problems]})
    return cleaned


def effective_parameters(policy_set: CompiledPolicySet, deployment: Deployment) -> dict[str, Any]:
    """The set's ``monitoring`` parameters with the deployment's overrides merged over them."""
    merged = copy.deepcopy(policy_set.parameters.get("monitoring") or {})
    for section, items in (deployment.monitoring_parameters or {}).items():
        merged.setdefault(section, {})
        for name, value in items.items():
            if isinstance(value, Mapping) and isinstance(merged[section].get(name), Mapping):
                merged[section][name] = {**merged[section][name], **value}
            else:
                merged[section][name] = value
    return merged


def _param(parameters: Mapping[str, Any], section: str, name: str) -> Any:
    try:
        return parameters[section][name]
    except (KeyError, TypeError):
        raise Conflict(
            f"the policy set in force has no parameter monitoring.{section}.{name}: the anomaly rules cannot run"
        ) from None


# The monitoring section (reads only) --------------------------------------------------------------


def _aware(value: np.datetime64) -> dt.datetime:
    return value.astype("datetime64[us]").astype(dt.datetime).replace(tzinfo=dt.UTC)


def _short(value: Any) -> Any:
    """Floats to 6 significant digits, for documents and messages people read."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _short(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_short(item) for item in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _short(float(value))
    return value


def _not_computed(reason: str, samples: int = 0) -> dict[str, Any]:
    return {
        "computed": False,
        "breached": False,
        "statistic": None,
        "threshold": None,
        "at": None,
        "window_from": None,
        "window_to": None,
        "samples": samples,
        "reason": reason,
        "detail": {},
    }


def _section(found: detectors.Detection, times: np.ndarray) -> dict[str, Any]:
    """A detection as the document's section: ``times`` are the observations' times, in order."""
    return {
        "computed": True,
        "breached": found.breached,
        "statistic": _short(found.as_dict()["statistic"]),
        "threshold": _short(found.threshold),
        "at": _aware(times[found.at_index]) if found.at_index is not None else None,
        "window_from": _aware(times[0]) if times.size else None,
        "window_to": _aware(times[-1]) if times.size else None,
        "samples": int(times.size),
        "reason": "",
        "detail": _short(found.detail),
    }


def _latest_full_assessment_metrics(deployment: Deployment) -> dict[str, Any]:
    from models_registry.models import RiskAssessment

    row = (
        RiskAssessment.objects.filter(version_id=deployment.version_id, status="succeeded", kind="full")
        .order_by("-finished_at", "-pk")
        .values_list("metrics", flat=True)
        .first()
    )
    return row or {}


def _accuracy(series: Mapping[str, Any], parameters: Mapping[str, Any], deployment: Deployment) -> dict[str, Any]:
    p = parameters["accuracy"]
    known = ~np.isnan(series["predicted"]) & ~np.isnan(series["outcome"])
    count = int(known.sum())
    if count < _param(parameters, "accuracy", "min_samples"):
        return _not_computed(f"{count} predictions with a known outcome, fewer than {p['min_samples']}", count)
    baseline = p.get("baseline")
    source = "parameters"
    if baseline is None:
        baseline = _latest_full_assessment_metrics(deployment).get("accuracy")
        source = "latest full risk assessment"
    if not isinstance(baseline, int | float) or not 0 < baseline < 1:
        return _not_computed("no validation accuracy: no succeeded full risk assessment and no baseline set", count)
    shift = _param(parameters, "accuracy", "shift")
    if shift >= baseline:
        return _not_computed(f"the shift {shift} is not below the baseline {baseline}", count)
    method = _param(parameters, "accuracy", "method")
    threshold = _param(parameters, "accuracy", "cusum_threshold" if method == "cusum" else "page_hinkley_threshold")
    correct = series["predicted"][known] == series["outcome"][known]
    found = detectors.accuracy_drop(correct, baseline=baseline, shift=shift, threshold=threshold, method=method)
    section = _section(found, series["at"][known])
    section["detail"]["baseline_source"] = source
    return section


def _losing(series: Mapping[str, Any], parameters: Mapping[str, Any], deployment: Deployment) -> dict[str, Any]:
    has_pnl = ~np.isnan(series["pnl"])
    basis = "trade"
    mask = has_pnl & (series["pnl_kind"] == "trade")
    if not mask.any():
        basis, mask = "period", has_pnl  # only period P&L reported: a losing period counts as a losing trade
    if not mask.any():
        return _not_computed("no samples with a P&L")
    rate = _param(parameters, "losing_trades", "baseline_loss_rate")
    source = "parameters"
    if rate is None:
        hit_rate = _latest_full_assessment_metrics(deployment).get("hit_rate")
        if isinstance(hit_rate, int | float) and 0 < hit_rate < 1:
            rate, source = 1 - hit_rate, "1 - hit rate of the latest full risk assessment"
        else:
            rate, source = _param(parameters, "losing_trades", "default_loss_rate"), "default_loss_rate"
    found = detectors.losing_trades(
        series["pnl"][mask],
        baseline_loss_rate=rate,
        max_probability=_param(parameters, "losing_trades", "max_probability"),
        # Optional: sets (and overrides) written before the streak had a limit of its own.
        max_streak_probability=parameters["losing_trades"].get("max_streak_probability"),
        window=_param(parameters, "losing_trades", "window"),
    )
    section = _section(found, series["at"][mask])
    section["detail"].update(basis=basis, baseline_source=source)
    return section


def _days(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct UTC days of ``times`` (in time order) and the index where each day starts."""
    days = times.astype("datetime64[D]")
    distinct, starts = np.unique(days, return_index=True)
    return distinct, starts


def _trades(series: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    if not series["at"].size:
        return _not_computed("no samples")
    distinct, starts = _days(series["at"])
    # Days with samples only: a day without any (a weekend, a holiday) is not a day of zero trades.
    counts = np.add.reduceat(series["trade_count"], starts).astype(float)
    window = _param(parameters, "trade_count", "window")
    if counts.size <= max(window, 3):
        return _not_computed(f"{counts.size} trading days, the trailing window needs more than {window}", counts.size)
    found = detectors.trade_count(counts, window=window, threshold=_param(parameters, "trade_count", "threshold"))
    day_times = distinct.astype("datetime64[us]")
    section = _section(found, day_times)
    section["window_from"], section["window_to"] = _aware(series["at"][0]), _aware(series["at"][-1])
    return section


def _exact_pnl(series: Mapping[str, Any]) -> tuple[list[Decimal], np.ndarray]:
    indexes = [i for i, amount in enumerate(series["pnl_exact"]) if amount is not None]
    return [series["pnl_exact"][i] for i in indexes], series["at"][indexes]


def _drawdown(series: Mapping[str, Any], parameters: Mapping[str, Any], deployment: Deployment) -> dict[str, Any]:
    amounts, times = _exact_pnl(series)
    if not amounts:
        return _not_computed("no samples with a P&L")
    by_phase = _param(parameters, "drawdown", "limit_fraction_by_phase") or {}
    fraction = by_phase.get(deployment.phase, _param(parameters, "drawdown", "default_limit_fraction"))
    found = detectors.drawdown(amounts, capital=deployment.capital_limit, limit_fraction=fraction)
    return _section(found, times)


def _daily_loss(series: Mapping[str, Any], parameters: Mapping[str, Any], deployment: Deployment) -> dict[str, Any]:
    override = _param(parameters, "daily_loss", "max_daily_loss")
    limit = Decimal(override) if override is not None else deployment.max_daily_loss
    if limit is None:
        return _not_computed("the deployment has no maximum daily loss")
    amounts, times = _exact_pnl(series)
    if not amounts:
        return _not_computed("no samples with a P&L")
    distinct, starts = _days(times)
    ends = [*starts[1:], len(amounts)]
    totals = [sum(amounts[start:end], Decimal(0)) for start, end in zip(starts, ends, strict=True)]
    found = detectors.daily_loss(totals, limit=limit)
    section = _section(found, distinct.astype("datetime64[us]"))
    section["window_from"], section["window_to"] = _aware(times[0]), _aware(times[-1])
    section["samples"] = len(amounts)
    return section


def _feature_rows(deployment: Deployment, *, since: dt.datetime | None, parameters: Mapping[str, Any]) -> tuple:
    """The reference (the deployment's first samples with features) and the current samples
    (the latest ones after the reference and ``since``), each a list of (at, features)."""
    with_features = MonitoringSample.objects.filter(deployment_id=deployment.pk).exclude(features={})
    reference = list(
        with_features.order_by("at", "pk").values_list("pk", "at", "features")[
            : _param(parameters, "drift", "reference_samples")
        ]
    )
    if not reference:
        return [], []
    after = with_features.filter(at__gte=reference[-1][1]).exclude(pk__in=[row[0] for row in reference])
    if since is not None:
        after = after.filter(at__gte=since)
    current = list(
        after.order_by("-at", "-pk").values_list("pk", "at", "features")[: _param(parameters, "drift", "window")]
    )
    return reference, current[::-1]


def _columns(rows: list[tuple[int, dt.datetime, dict[str, Any]]]) -> dict[str, np.ndarray]:
    names: dict[str, list[float]] = {}
    for _, _, features in rows:
        for name, value in features.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                names.setdefault(name, []).append(float(value))
    return {name: np.asarray(values) for name, values in names.items()}


def _drift(deployment: Deployment, parameters: Mapping[str, Any], since: dt.datetime | None) -> dict[str, Any]:
    reference, current = _feature_rows(deployment, since=since, parameters=parameters)
    if not reference or not current:
        return _not_computed("no samples with features after the reference samples", len(current))
    found = detectors.feature_drift(
        _columns(reference),
        _columns(current),
        threshold=_param(parameters, "drift", "psi_threshold"),
        bins=_param(parameters, "drift", "bins"),
        min_samples=_param(parameters, "drift", "min_samples"),
    )
    if not found.detail["features"]:
        return _not_computed(
            f"too few samples with features (reference {len(reference)}, current {len(current)}; "
            f"at least {found.detail['min_samples']} each)",
            len(current),
        )
    times = np.array([row[1].astimezone(dt.UTC).replace(tzinfo=None) for row in current], dtype="datetime64[us]")
    section = _section(found, times)
    section["detail"]["reference_from"] = reference[0][1]
    section["detail"]["reference_to"] = reference[-1][1]
    return section


def _restarts(deployment: Deployment) -> dict[str, dt.datetime]:
    """Per detector, the end of the window of its latest resolved alert on this deployment:
    its data is read from after that moment."""
    rows = (
        MonitoringAlert.objects.filter(deployment=deployment, status=MonitoringAlert.Status.RESOLVED)
        .exclude(window_to=None)
        .values("detection", "window_to")
    )
    out: dict[str, dt.datetime] = {}
    for row in rows:
        for name in (row["detection"] or {}).get("detectors", []):
            if name not in out or row["window_to"] > out[name]:
                out[name] = row["window_to"]
    return out


def monitoring_section(*, deployment: Deployment, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The input document's ``monitoring`` section for ``deployment`` (a read: no writes)."""
    restarts = _restarts(deployment)
    cache: dict[Any, dict[str, Any]] = {}

    def series(name: str) -> Mapping[str, Any]:
        since = restarts.get(name)
        start = since + dt.timedelta(microseconds=1) if since is not None else None
        if start not in cache:
            cache[start] = selectors.monitoring_series(deployment=deployment, since=start)
        return cache[start]

    drift_since = restarts.get("feature_drift")
    detections = {
        "accuracy_drop": _accuracy(series("accuracy_drop"), parameters, deployment),
        "losing_trades": _losing(series("losing_trades"), parameters, deployment),
        "trade_count": _trades(series("trade_count"), parameters),
        "drawdown": _drawdown(series("drawdown"), parameters, deployment),
        "daily_loss": _daily_loss(series("daily_loss"), parameters, deployment),
        "feature_drift": _drift(
            deployment, parameters, drift_since + dt.timedelta(microseconds=1) if drift_since else None
        ),
    }
    # The whole history's extent, by one aggregate (the series above may each start later).
    extent = MonitoringSample.objects.filter(deployment_id=deployment.pk).aggregate(
        samples=Count("pk"), first=Min("at"), last=Max("at")
    )
    return {
        "deployment": {
            "id": deployment.pk,
            "phase": deployment.phase,
            "capital_limit": deployment.capital_limit,
            "max_daily_loss": deployment.max_daily_loss,
            "currency": deployment.currency,
            "started_at": deployment.started_at,
        },
        "samples": extent["samples"],
        "window_from": extent["first"],
        "window_to": extent["last"],
        "parameters": _short(copy.deepcopy(dict(parameters))),
        "detections": detections,
    }


# Evaluation ----------------------------------------------------------------------------------------


def _detectors_read(rule: Any) -> list[str]:
    """The detectors a compiled rule reads (``input.monitoring.detections.<name>``)."""
    paths = rule.paths
    if paths is None:
        return list(DETECTORS)
    found = {path[2] for path in paths if len(path) > 2 and path[:2] == ("monitoring", "detections")}
    return [name for name in DETECTORS if name in found]


def _severity(actions: list[str]) -> str:
    if {"suspend", "rollback"} & set(actions):
        return MonitoringAlert.Severity.CRITICAL
    if "revalidate" in actions:
        return MonitoringAlert.Severity.HIGH
    return MonitoringAlert.Severity.MEDIUM


def _still_live(deployment: Deployment) -> Deployment | None:
    return Deployment.objects.filter(pk=deployment.pk, status__in=Deployment.LIVE_STATUSES).first()


def _carry_out(action: str, *, alert: MonitoringAlert, deployment: Deployment) -> dict[str, Any]:
    """One action of a fired rule, through the existing services as ``system:monitoring``.
    A refusal (no rollback target, a version that cannot be assessed...) is returned, not raised."""
    from governance import services
    from models_registry import assessment_services

    reason = f"monitoring alert {alert.pk}: {alert.rule_id}: {alert.message}"[:2000]
    result: dict[str, Any] = {"action": action}
    if action == "alert":
        sent = notifications.monitoring_alert_raised(alert)
        return {**result, "status": "done", "detail": f"e-mail after commit to {', '.join(sent) or 'nobody'}"}
    if action in ("suspend", "rollback") and _still_live(deployment) is None:
        return {**result, "status": "skipped", "detail": f"deployment {deployment.pk} is no longer live"}
    try:
        if action == "revalidate":
            assessment, created = assessment_services.assessment_request(
                actor=MONITORING,
                version=deployment.version,
                kind="full",
                occasion=f"monitoring alert {alert.rule_id} {timezone.now().date().isoformat()}",
            )
            what = "requested" if created else f"already {assessment.status}"
            return {**result, "status": "done", "detail": f"full risk assessment {assessment.pk} {what}"}
        if action == "suspend":
            before = Deployment.objects.get(pk=deployment.pk).kill_switch_engaged
            services.kill_switch_engage(actor=MONITORING, model=deployment.model, reason=reason)
            detail = "the kill switch was already engaged" if before else "kill switch engaged"
            return {**result, "status": "done", "detail": detail}
        if action == "rollback":
            restored = services.deployment_rollback(actor=MONITORING, model=deployment.model, reason=reason)
            return {
                **result,
                "status": "done",
                "detail": f"rolled back to {restored.version.version} (deployment {restored.pk})",
                "restored_deployment": restored.pk,
            }
    except (DomainError, ValidationError) as exc:
        message = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
        logger.warning("monitoring alert %s: %s refused: %s", alert.pk, action, message)
        return {**result, "status": "refused", "detail": message}
    raise AssertionError(action)


def _decision_detection(stored: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """What made the rule fire: the detections it reads, as the decision's document holds them."""
    return {"detectors": names, "detections": {name: stored["detections"][name] for name in names}}


def _window(section: Mapping[str, Any], names: list[str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    starts = [section["detections"][n]["window_from"] for n in names if section["detections"][n]["window_from"]]
    ends = [section["detections"][n]["window_to"] for n in names if section["detections"][n]["window_to"]]
    return (min(starts) if starts else None, max(ends) if ends else None)


@audited_change()
def monitoring_evaluate(*, actor: Actor, deployment: Deployment) -> list[MonitoringAlert]:
    """Evaluate the anomaly rules on ``deployment``'s live data; the alerts raised (see the module docstring).

    One transaction: the policy decision, the alerts and their events, and the actions'
    own audited changes. Raises ``Conflict`` for a deployment that is no longer live and
    ``NoActivePolicySet`` before any policy set was activated.
    """
    from governance import services

    # Locked: the ingest hook and the beat task may evaluate the same deployment at once; the
    # second waits and then sees the first one's alerts (so raises none twice).
    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("model", "version")
        .filter(pk=deployment.pk, status__in=Deployment.LIVE_STATUSES)
        .first()
    )
    if deployment is None:
        raise Conflict("the deployment is no longer live (ended or rolled back): there is nothing to monitor")
    _, compiled = policy_store.require_active_policy_set()
    parameters = effective_parameters(compiled, deployment)
    section = monitoring_section(deployment=deployment, parameters=parameters)
    decision = services.policy_evaluate(
        actor=actor,
        version=deployment.version,
        trigger=TRIGGER,
        monitoring=section,
        reason=f"anomaly rules on deployment {deployment.pk}",
    )
    rules = {rule.id: rule for rule in compiled.rules}
    unresolved = set(
        MonitoringAlert.objects.filter(
            deployment=deployment, status__in=MonitoringAlert.UNRESOLVED_STATUSES
        ).values_list("rule_id", flat=True)
    )
    raised: list[MonitoringAlert] = []
    for result in decision.results:
        if result["outcome"] not in FIRING or result["id"] in unresolved or result["id"] not in rules:
            continue
        rule = rules[result["id"]]
        actions = sorted(rule.spec.actions or ["alert"], key=ACTION_ORDER.index)
        names = _detectors_read(rule)
        window_from, window_to = _window(section, names)
        alert = MonitoringAlert.objects.create(
            deployment=deployment,
            model=deployment.model,
            version=deployment.version,
            rule_id=rule.id,
            actions=actions,
            severity=_severity(actions),
            message=result["message"].strip() or rule.spec.title,
            detection=_decision_detection(decision.input_document["monitoring"], names),
            window_from=window_from,
            window_to=window_to,
            raised_at=timezone.now(),
            policy_decision=decision,
        )
        record_event(
            actor=actor,
            action="monitoring.alert_raised",
            target=alert,
            after=snapshot(alert),
            reason=alert.message,
            policy_set_hash=decision.policy_set_hash,
        )
        results = [_carry_out(action, alert=alert, deployment=deployment) for action in actions]
        alert.action_results = results
        alert.save(update_fields=["action_results"])
        record_event(
            actor=MONITORING,
            action="monitoring.alert_actions",
            target=alert,
            after={"rule": alert.rule_id, "actions": results},
            policy_set_hash=decision.policy_set_hash,
        )
        raised.append(alert)
    return raised


def monitoring_evaluate_live(*, actor: Actor = MONITORING) -> dict[int, list[int]]:
    """Evaluate every live deployment, each in its own transaction; ``{deployment: [alert ids]}``.
    A deployment whose evaluation fails is logged and skipped: the others still run."""
    out: dict[int, list[int]] = {}
    ids = list(
        Deployment.objects.filter(status__in=Deployment.LIVE_STATUSES).order_by("pk").values_list("pk", flat=True)
    )
    for pk in ids:
        deployment = Deployment.objects.filter(pk=pk, status__in=Deployment.LIVE_STATUSES).first()
        if deployment is None:
            continue  # rolled back by an earlier evaluation in this sweep
        try:
            out[pk] = [alert.pk for alert in monitoring_evaluate(actor=actor, deployment=deployment)]
        except Exception:
            logger.exception("monitoring: the evaluation of deployment %s failed", pk)
    return out


def on_ingest(deployment_id: int) -> None:
    """``monitoring_services.after_ingest_hooks``: run after a new batch commits. Enqueues the
    evaluation as a Celery task, so ingest answers without waiting for it (eager: it runs here)."""
    from governance.tasks import evaluate_deployment_monitoring

    evaluate_deployment_monitoring.delay(deployment_id)


# Acknowledging and resolving -----------------------------------------------------------------------


def _check_handler(actor: Actor, alert: MonitoringAlert, permission: str, action: str) -> AbstractBaseUser:
    if not isinstance(actor, AbstractBaseUser):
        raise NotPermitted(f"{action} an alert needs a person, not a system actor")
    if not actor.has_perm(f"governance.{permission}"):
        raise NotPermitted(f"{actor.get_username()} may not {action} monitoring alerts (needs governance.{permission})")
    if not selectors.deployment_list(user=actor).filter(pk=alert.deployment_id).exists():
        raise NotPermitted(f"{actor.get_username()} may not {action} alert {alert.pk} (not in scope)")
    return actor


@audited_change()
def monitoring_alert_acknowledge(*, actor: Actor, alert: MonitoringAlert, comment: str = "") -> MonitoringAlert:
    """A risk manager or compliance officer takes an open alert in hand; it stays unresolved
    (the rule does not raise it again) until resolved."""
    user = _check_handler(actor, alert, "acknowledge_monitoringalert", "acknowledge")
    alert = MonitoringAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != MonitoringAlert.Status.OPEN:
        raise Conflict(f"alert {alert.pk} is {alert.status}: only an open alert is acknowledged")
    before = snapshot(alert)
    alert.status = MonitoringAlert.Status.ACKNOWLEDGED
    alert.acknowledged_by, alert.acknowledged_at = user, timezone.now()
    alert.save()
    record_event(
        actor=user,
        action="monitoring.alert_acknowledged",
        target=alert,
        before=before,
        after=snapshot(alert),
        reason=comment.strip() if isinstance(comment, str) else "",
    )
    return alert


@audited_change()
def monitoring_alert_resolve(
    *, actor: Actor, alert: MonitoringAlert, resolution: str, false_alarm: bool = False
) -> MonitoringAlert:
    """Close an open or acknowledged alert with what was found and done (required), and
    whether it was a false alarm (the rule fired without a real problem; the annual
    self-assessment counts them per rule). The rule's detectors then restart after the
    alert's window."""
    user = _check_handler(actor, alert, "resolve_monitoringalert", "resolve")
    text = resolution.strip() if isinstance(resolution, str) else ""
    if not text:
        raise ValidationError({"resolution": ["a resolution (what was found and done) is required"]})
    if not isinstance(false_alarm, bool):
        raise ValidationError({"false_alarm": ["must be true or false"]})
    alert = MonitoringAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.status == MonitoringAlert.Status.RESOLVED:
        raise Conflict(f"alert {alert.pk} is already resolved")
    before = snapshot(alert)
    alert.status = MonitoringAlert.Status.RESOLVED
    alert.resolved_by, alert.resolved_at, alert.resolution = user, timezone.now(), text
    alert.false_alarm = false_alarm
    alert.save()
    record_event(
        actor=user,
        action="monitoring.alert_resolved",
        target=alert,
        before=before,
        after=snapshot(alert),
        reason=text,
    )
    return alert


def latest_decision(deployment: Deployment) -> PolicyDecision | None:
    """The latest monitoring decision on the deployment's version (for the admin)."""
    return (
        PolicyDecision.objects.filter(version_id=deployment.version_id, trigger=TRIGGER)
        .order_by("-decided_at", "-pk")
        .first()
    )


__all__ = [
    "MONITORING",
    "clean_monitoring_parameters",
    "effective_parameters",
    "latest_decision",
    "monitoring_alert_acknowledge",
    "monitoring_alert_resolve",
    "monitoring_evaluate",
    "monitoring_evaluate_live",
    "monitoring_section",
    "on_ingest",
]
