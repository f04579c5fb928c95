"""The demo's risk assessments: vera (the validator) requests a full assessment of every demo
model's version on the real price data, through Celery (eagerly in-process on the embedded
default; on the worker when CELERY_BROKER_URL is set), waits for them and reports metrics,
findings and rating. Written against the same service as the API (``assessment_request``).

Idempotent: the same inputs give back the assessment that already has them, so a rerun
computes and stores nothing. The checks run with their default parameters (the firm's full
suite): all six take about a minute on two cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from governance.demo import catalogue
from models_registry import services as registry
from models_registry.models import AssessmentKind, ModelVersion, RiskAssessment

DEMO_VERSION = "1.0.0"
REQUESTER = "vera"
POLL_SECONDS = 0.5


@dataclass
class Outcome:
    model: str
    assessment: RiskAssessment
    created: bool
    seconds: float | None  # wall time from request to end, for the ones run now


def run(users: dict[str, AbstractBaseUser], *, parameters: dict[str, Any] | None = None) -> list[Outcome]:
    """Request one full assessment per demo model (as vera) and wait until each has ended."""
    outcomes = []
    for spec in catalogue.MODELS:
        version = ModelVersion.objects.select_related("model").get(model__name=spec.name, version=DEMO_VERSION)
        started = time.monotonic()
        assessment, created = registry.assessment_request(
            actor=users[REQUESTER], version=version, kind=AssessmentKind.FULL, parameters=parameters
        )
        outcomes.append(Outcome(model=spec.name, assessment=assessment, created=created, seconds=None))
        if created and assessment.is_final:  # eager: it ran in the request
            outcomes[-1].seconds = time.monotonic() - started
    _wait(outcomes)
    return outcomes


def _wait(outcomes: list[Outcome]) -> None:
    """Wait for the jobs a worker runs (with a broker); up to the hard time limit of each."""
    started = time.monotonic()
    deadline = started + settings.CELERY_TASK_TIME_LIMIT * max(1, len(outcomes))
    pending = [o for o in outcomes if not o.assessment.is_final]
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        for outcome in list(pending):
            outcome.assessment.refresh_from_db()
            if outcome.assessment.is_final:
                outcome.seconds = time.monotonic() - started
                pending.remove(outcome)


def _metric(value: Any, *, percent: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _headline(metrics: dict[str, Any]) -> str:
    if "accuracy" in metrics:
        fit = f"accuracy {_metric(metrics.get('accuracy'))}"
    else:
        rmse, hits = _metric(metrics.get("rmse")), _metric(metrics.get("directional_accuracy"))
        fit = f"RMSE {rmse}, directional accuracy {hits}"
    return (
        f"{fit}; Sharpe {_metric(metrics.get('sharpe_ratio'))}, max drawdown "
        f"{_metric(metrics.get('max_drawdown'), percent=True)}, PBO {_metric(metrics.get('pbo'))}, "
        f"DSR {_metric(metrics.get('deflated_sharpe_ratio'))}"
    )


def _rating(assessment: RiskAssessment) -> str:
    if assessment.rating:
        rules = [rule["id"] for rule in assessment.rating_rules or [] if rule.get("id")]
        return f"rating {assessment.rating}" + (f" ({', '.join(rules)})" if rules else "")
    reason = next((rule.get("message") for rule in assessment.rating_rules or [] if rule.get("message")), "")
    return "not rated" + (f": {reason}" if reason else "")


def describe(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for outcome in outcomes:
        a = outcome.assessment
        if outcome.created and outcome.seconds is not None:
            how = f"ran in {outcome.seconds:.1f} s"
        elif outcome.created:
            how = "still running"
        else:
            how = "reused: same inputs"
        lines.append(f"  {outcome.model:<30} assessment {a.pk} {a.status} ({how})")
        if a.status == "succeeded":
            lines.append(f"      {_headline(a.metrics or {})}")
            lines.append(f"      {_rating(a)}")
            findings = list(a.findings.order_by("pk").values_list("severity", "title"))
            lines.append(f"      findings raised: {len(findings)}")
            lines.extend(f"        [{severity}] {title}" for severity, title in findings)
        elif a.error:
            lines.append(f"      {a.error.get('code')}: {a.error.get('message')}")
        else:
            lines.append(f"      {a.status} at step {a.current_step!r} ({a.progress_percent}%)")
    return lines
