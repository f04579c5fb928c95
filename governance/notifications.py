"""E-mail notifications of the sign-off workflow (Django's mail; console backend by default).

Messages are sent after the transaction that caused them commits: a rolled-back step
notifies nobody. A failure to deliver is logged and never undoes the step, which the audit
log already holds; the admin's sign-off list shows the same state to whoever was not told.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from governance.models import SignOffRequest

logger = logging.getLogger(__name__)


def _link(request: SignOffRequest) -> str:
    return settings.GOVERNANCE_BASE_URL + reverse("admin:governance_signoffrequest_change", args=[request.pk])


def _send_after_commit(subject: str, body: str, recipients: Iterable[AbstractBaseUser]) -> list[str]:
    addresses = sorted({user.email for user in recipients if user.email})
    if not addresses:
        return []

    def deliver() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
        except Exception:  # a mail server being down must not break the workflow
            logger.exception("could not send %r to %s", subject, ", ".join(addresses))

    transaction.on_commit(deliver)
    return addresses


def _describe(request: SignOffRequest) -> str:
    version = request.version
    return f"{version.model.name} {version.version}: {request.from_status} -> {request.to_status}"


def approvers_asked(request: SignOffRequest, approvers: Iterable[AbstractBaseUser]) -> list[str]:
    """Tell the people who may approve that a request waits for them."""
    needed = "\n".join(
        f"  - {item['rule']}: {item['count']} of {', '.join(item['roles'])}"
        + (f" (so far: {', '.join(item['approved_by'])})" if item.get("approved_by") else "")
        for item in request.required_approvals
        if not item.get("satisfied")
    )
    evidence = "\n".join(f"  - {item['title']}: {item['reference']}" for item in request.evidence)
    body = (
        f"{request.requested_by.get_username()} asks for sign-off of {_describe(request)}.\n\n"
        f"Justification:\n{request.justification}\n\nEvidence:\n{evidence}\n\n"
        f"Approvals the policies require:\n{needed}\n\n"
        f"Decide by {request.due_at:%Y-%m-%d %H:%M} UTC (the request expires on "
        f"{request.expires_at:%Y-%m-%d %H:%M} UTC):\n{_link(request)}\n"
    )
    return _send_after_commit(f"[model governance] Sign-off requested: {_describe(request)}", body, approvers)


def requester_told(request: SignOffRequest, what: str, details: str = "") -> list[str]:
    """Tell the requester what became of their request."""
    body = f"Your sign-off request {request.pk} for {_describe(request)} {what}.\n"
    if details:
        body += f"\n{details}\n"
    body += f"\n{_link(request)}\n"
    return _send_after_commit(
        f"[model governance] Sign-off {request.get_status_display().lower()}: {_describe(request)}",
        body,
        [request.requested_by],
    )


def monitoring_alert_raised(alert: Any) -> list[str]:
    """Tell the model's owner and the compliance officers that an anomaly rule fired
    (``governance.anomaly_services``), with what it found and what was done about it."""
    from django.contrib.auth import get_user_model

    from governance.roles import Role

    model = alert.model
    officers = get_user_model().objects.filter(groups__name=Role.COMPLIANCE_OFFICER.value, is_active=True)
    link = settings.GOVERNANCE_BASE_URL + reverse("admin:governance_monitoringalert_change", args=[alert.pk])
    body = (
        f"The anomaly rule {alert.rule_id} fired on {model.name} {alert.version.version} "
        f"(deployment {alert.deployment_id}, phase {alert.deployment.phase}).\n\n{alert.message}\n\n"
        f"Severity: {alert.severity}. Actions: {', '.join(alert.actions)} "
        "(what each did is on the alert's page).\n\n"
        f"Acknowledge and resolve it here:\n{link}\n"
    )
    return _send_after_commit(
        f"[model governance] Monitoring alert {alert.rule_id}: {model.name} {alert.version.version}",
        body,
        [model.owner, *officers],
    )
