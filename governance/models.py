"""Organisation: desks and each member's desk."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from guardian.managers import UserObjectPermissionManager
from guardian.models import UserObjectPermissionBase

from audit.governed import GovernedQuerySet
from audit.scope import UnauditedWriteError, in_audited_change


class Desk(models.Model):
    """A trading or risk desk; models and people belong to one."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200, unique=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_desk_models", "Can see the desk's models and their versions"),
            ("change_desk_models", "Can change the desk's models and their versions"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """The desk a person works on (at most one)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    desk = models.ForeignKey(Desk, on_delete=models.PROTECT, related_name="members")

    objects = GovernedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.user} @ {self.desk}"


class DeskGrant(UserObjectPermissionBase):
    """A user's object permission on a whole desk (e.g. to see all of its models)."""

    content_object = models.ForeignKey(Desk, on_delete=models.CASCADE, related_name="grants")

    objects = UserObjectPermissionManager.from_queryset(GovernedQuerySet)()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "desk access grant"

    def __str__(self) -> str:
        return f"{self.user} may {self.permission.codename} on {self.content_object}"


class PolicySet(models.Model):
    """A policy set as activated: its files exactly as read, identified by the SHA-256 of its
    canonical content (``governance.policy.loader``). At most one is active; decisions keep a
    reference to the set they were made with, so every set ever used stays stored."""

    content_hash = models.CharField(max_length=64, unique=True)
    # [{"directory", "name", "sha256", "text"}]: enough to compile the set again, byte for byte.
    files = models.JSONField()
    rule_ids = models.JSONField(default=list)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField()
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by_label = models.CharField(max_length=200)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-activated_at", "-pk"]
        permissions = [("activate_policyset", "Can activate a policy set (compliance officers)")]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="policy_set_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"policy set {self.content_hash[:12]}{' (active)' if self.is_active else ''}"


class PolicyDecision(models.Model):
    """One evaluation of the active policy set: the input document it saw, each rule's
    outcome and message, and the overall outcome. Written once, never changed."""

    class Outcome(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"
        REQUIRE_APPROVAL = "require_approval", "Require approval"

    policy_set = models.ForeignKey(PolicySet, on_delete=models.PROTECT, related_name="decisions")
    policy_set_hash = models.CharField(max_length=64)
    trigger = models.CharField(max_length=100)
    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    # Each applicable rule: id, title, effect, outcome, message, references, error, approval.
    results = models.JSONField()
    # Approval requirements that applied (met or not), for the sign-off workflow.
    required_approvals = models.JSONField(default=list)
    input_document = models.JSONField()
    input_sha256 = models.CharField(max_length=64)
    schema_version = models.PositiveSmallIntegerField()
    decided_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-decided_at", "-pk"]
        indexes = [models.Index(fields=["version", "trigger", "-decided_at"], name="policy_decision_version_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=["allow", "deny", "require_approval"]), name="policy_decision_outcome"
            ),
        ]

    def __str__(self) -> str:
        return f"decision {self.pk}: {self.trigger} on version {self.version_id}: {self.outcome}"

    @property
    def allowed(self) -> bool:
        return self.outcome == self.Outcome.ALLOW

    def reasons(self) -> list[dict[str, object]]:
        """The rules that denied, still need approval, or warned: id, outcome, message, references."""
        return [
            {key: result[key] for key in ("id", "outcome", "message", "references")}
            for result in self.results
            if result["outcome"] in ("deny", "require_approval", "warn")
        ]


class SignOffRequest(models.Model):
    """A model owner's request that a version make a gated transition (approval for use,
    deployment), decided by the approvers the policies name and, at the last approval, by
    the policies again. See docs/signoffs.md."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        BLOCKED = "blocked", "Blocked by policy"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"

    OPEN_STATUSES = (Status.PENDING, Status.CHANGES_REQUESTED)

    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="signoff_requests")
    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.PROTECT, related_name="signoff_requests"
    )
    from_status = models.CharField(max_length=30)
    to_status = models.CharField(max_length=30)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField()
    # [{"title", "reference"}]: documents, reports or links the approvers should read.
    evidence = models.JSONField(default=list)
    # For a deployment: the proposed phase, capital limit (decimal string), instruments and
    # rollback plan, in the shape of the input document's ``deployment`` section.
    deployment = models.JSONField(null=True, blank=True)
    # SHA-256 of what the version was when submitted: approving a version that changed since
    # is refused (governance.selectors.version_fingerprint).
    version_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Incremented when the requester amends the request after changes were requested;
    # approvals of an earlier round no longer count.
    round = models.PositiveSmallIntegerField(default=1)
    # From the latest policy decision: [{rule, roles, count, approved_by, satisfied}].
    required_approvals = models.JSONField(default=list)
    # The rules that blocked the request (or warned): [{id, outcome, message, references}].
    reasons = models.JSONField(default=list)
    latest_decision = models.ForeignKey(
        PolicyDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField()
    # Overdue when still undecided after due_at; expired (closed) after expires_at.
    due_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        verbose_name = "sign-off request"
        ordering = ["-submitted_at", "-pk"]
        indexes = [models.Index(fields=["status", "expires_at"], name="signoff_status_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "to_status"],
                condition=models.Q(status__in=["pending", "changes_requested"]),
                name="signoff_one_open_per_transition",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[
                        *("pending", "changes_requested", "approved", "blocked"),
                        *("rejected", "withdrawn", "expired"),
                    ]
                ),
                name="signoff_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"sign-off {self.pk}: {self.transition} of version {self.version_id} ({self.status})"

    @property
    def transition(self) -> str:
        return f"{self.from_status}->{self.to_status}"

    @property
    def is_promotion(self) -> bool:
        """A deployed version moving to its next deployment phase (no lifecycle change)."""
        return self.from_status == self.to_status == "deployed"

    @property
    def trigger(self) -> str:
        """What the policies are evaluated for: the transition, or ``deployment:<phase>``."""
        if self.is_promotion:
            return f"deployment:{(self.deployment or {}).get('phase')}"
        return self.transition

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class SignOffResponse(models.Model):
    """One approver's answer to a sign-off request, with their comment and the roles they
    held when they gave it. Written once."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        REQUEST_CHANGES = "request_changes", "Request changes"

    request = models.ForeignKey(SignOffRequest, on_delete=models.PROTECT, related_name="responses")
    round = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approver_label = models.CharField(max_length=200)
    roles = models.JSONField(default=list)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    comment = models.TextField()
    decided_at = models.DateTimeField()

    objects = GovernedQuerySet.as_manager()

    class Meta:
        verbose_name = "sign-off response"
        ordering = ["decided_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "round", "approver"], name="signoff_one_response_per_round"),
        ]

    def __str__(self) -> str:
        return f"{self.approver_label}: {self.verdict} on sign-off {self.request_id}"


class Finding(models.Model):
    """A validation finding on a model version: raised by a validator, remediated by its
    owner by a due date, closed only by the validation function. Open high and critical
    findings block approval and deployment (policy FINDINGS-01)."""

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_REMEDIATION = "in_remediation", "In remediation"
        CLOSED = "closed", "Closed"

    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="findings")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="findings")
    title = models.CharField(max_length=200)
    description = models.TextField()
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    remediation_owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    # A person, or null when a risk assessment raised it (``raised_by_label`` says which job).
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    raised_by_label = models.CharField(max_length=200, blank=True)
    assessment = models.ForeignKey(
        "models_registry.RiskAssessment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="findings",
        help_text="The risk assessment that raised the finding automatically, if any.",
    )
    raised_at = models.DateTimeField()
    resolution = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-raised_at", "-pk"]
        permissions = [("close_finding", "Can close a validation finding (the validation function)")]
        indexes = [models.Index(fields=["version", "status"], name="finding_version_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity__in=["low", "medium", "high", "critical"]), name="finding_severity_known"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "in_remediation", "closed"]), name="finding_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(status="closed", closed_at__isnull=False)
                | (~models.Q(status="closed") & models.Q(closed_at__isnull=True)),
                name="finding_closed_at_iff_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"finding {self.pk} ({self.severity}, {self.status}): {self.title}"


class Deployment(models.Model):
    """A model version in use for trading, phase by phase (docs/deployments.md).

    Created when a deployment sign-off completes; promoted to the next phase by a further
    sign-off; stopped at once by the kill switch; replaced by its rollback target in one
    action. At most one live (active or suspended) deployment per model."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended (kill switch)"
        ROLLED_BACK = "rolled_back", "Rolled back"
        ENDED = "ended", "Ended"

    LIVE_STATUSES = (Status.ACTIVE, Status.SUSPENDED)

    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="deployments")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    phase = models.CharField(max_length=50)
    phase_started_at = models.DateTimeField()
    capital_limit = models.DecimalField(max_digits=20, decimal_places=2)
    currency = models.CharField(max_length=3)
    instruments = models.JSONField(default=list)
    max_daily_loss = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    rollback_target = models.ForeignKey(
        "models_registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rollback_plan = models.TextField()
    # Per-model overrides of the anomaly rules' parameters (``monitoring:`` in the policies'
    # parameters.yaml), from the sign-off's proposal; validated by the sign-off service.
    monitoring_parameters = models.JSONField(default=dict, blank=True)
    signoff = models.ForeignKey(SignOffRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The kill switch: engaged by anyone allowed to pull it, lifted only by a compliance officer.
    kill_switch_engaged = models.BooleanField(default=False)
    kill_reason = models.TextField(blank=True)
    killed_at = models.DateTimeField(null=True, blank=True)
    killed_by_label = models.CharField(max_length=200, blank=True)
    # Engaged to test the kill switch (RTS 6 Art. 12; the annual self-assessment counts the
    # tests apart from the real stops), said by whoever pulls it.
    kill_drill = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        permissions = [
            ("engage_killswitch", "Can pull a model's kill switch"),
            ("lift_killswitch", "Can lift a kill switch (compliance officers)"),
            ("rollback_deployment", "Can roll a deployment back to its rollback target"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(status__in=["active", "suspended"]), name="deployment_one_live"
            ),
            models.CheckConstraint(condition=models.Q(capital_limit__gt=0), name="deployment_capital_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "suspended", "rolled_back", "ended"]),
                name="deployment_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"deployment {self.pk}: {self.version_id} {self.phase} ({self.status})"


# Monitoring (docs/monitoring.md) ---------------------------------------------------------


class MonitoringBatch(models.Model):
    """One batch of live samples pushed by the trading infrastructure for a deployed model.

    The batch is the unit of audit: its ``monitoring.batch_ingested`` event carries the
    SHA-256 of the canonical JSON (RFC 8785) of its validated samples, which binds the rows
    of ``MonitoringSample`` stored with it. ``batch_id`` is chosen by the client and makes a
    retry harmless: the same id with the same content is answered with the stored batch."""

    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="monitoring_batches")
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="monitoring_batches")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    batch_id = models.CharField(max_length=100)
    content_sha256 = models.CharField(max_length=64)
    sample_count = models.PositiveIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    # Sums over the batch, kept so a list of batches needs no aggregate over the samples.
    trade_count_total = models.BigIntegerField(default=0)
    pnl_total = models.DecimalField(max_digits=24, decimal_places=2, default=0)
    received_at = models.DateTimeField()
    received_by_label = models.CharField(max_length=200)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "monitoring batches"
        permissions = [("ingest_monitoring", "Can push live monitoring samples")]
        indexes = [models.Index(fields=["deployment", "-received_at"], name="monitoring_batch_dep_idx")]
        constraints = [
            models.UniqueConstraint(fields=["model", "batch_id"], name="monitoring_batch_id_unique"),
            models.CheckConstraint(condition=models.Q(sample_count__gt=0), name="monitoring_batch_not_empty"),
            models.CheckConstraint(
                condition=models.Q(first_at__lte=models.F("last_at")), name="monitoring_batch_range"
            ),
            models.CheckConstraint(condition=~models.Q(batch_id=""), name="monitoring_batch_id_present"),
            models.CheckConstraint(condition=models.Q(trade_count_total__gte=0), name="monitoring_batch_trades"),
        ]

    def __str__(self) -> str:
        return f"monitoring batch {self.batch_id} of model {self.model_id} ({self.sample_count} samples)"


class MonitoringSampleQuerySet(models.QuerySet):
    """Samples are written only by the ingest service, in bulk, inside its audited change.

    They are deliberately *not* governed row by row: a governed model needs an audit event
    per written row, and a batch of thousands of samples would make thousands of events.
    The batch's single event carries the hash of the samples' canonical content, which
    binds them instead (anyone can recompute it from the rows and compare). So the guard
    here only keeps them append-only through the service: writes outside an audited change
    are refused, and rows are never updated."""

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if not in_audited_change():
            raise UnauditedWriteError("bulk_create() on governance.MonitoringSample is refused: use monitoring_ingest")
        return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        raise UnauditedWriteError("monitoring samples are append-only: update() is refused")

    def bulk_update(self, objs: Any, *args: Any, **kwargs: Any) -> int:
        raise UnauditedWriteError("monitoring samples are append-only: bulk_update() is refused")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise UnauditedWriteError("monitoring samples are append-only: delete() is refused")


class MonitoringSample(models.Model):
    """One live observation of a deployed model: when, on what, what it predicted (class and
    probability), what happened, how many trades and their P&L (per trade or per period), and
    optionally its input features (for drift). A time series per deployment."""

    class PnlKind(models.TextChoices):
        TRADE = "trade", "Per trade"
        PERIOD = "period", "Per period"

    batch = models.ForeignKey(MonitoringBatch, on_delete=models.PROTECT, related_name="samples")
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="+")
    # Denormalised from the batch so the time-series indexes need no join.
    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    instrument = models.CharField(max_length=50, blank=True)
    predicted = models.IntegerField(null=True, blank=True)
    probability = models.FloatField(null=True, blank=True)
    outcome = models.IntegerField(null=True, blank=True)
    trade_count = models.IntegerField(default=0)
    pnl = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    pnl_kind = models.CharField(max_length=10, choices=PnlKind.choices, default=PnlKind.TRADE)
    features = models.JSONField(default=dict, blank=True)

    objects = MonitoringSampleQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["deployment", "at"], name="monitoring_sample_dep_at"),
            models.Index(fields=["model", "at"], name="monitoring_sample_model_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(probability__isnull=True) | models.Q(probability__gte=0, probability__lte=1),
                name="monitoring_sample_probability",
            ),
            models.CheckConstraint(condition=models.Q(trade_count__gte=0), name="monitoring_sample_trades"),
            models.CheckConstraint(
                condition=models.Q(pnl_kind__in=["trade", "period"]), name="monitoring_sample_pnl_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"sample {self.pk} of deployment {self.deployment_id} at {self.at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Rows arrive only in bulk from the ingest service; a single save is a mistake.
        raise UnauditedWriteError("monitoring samples are written only by monitoring_ingest (in bulk)")

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise UnauditedWriteError("monitoring samples are append-only: delete() is refused")


class MonitoringAlert(models.Model):
    """An anomaly rule (a ``monitoring`` policy rule) fired on a deployment's live data.

    Raised by ``governance.anomaly_services.monitoring_evaluate`` with the detection that made
    the rule fire and the policy decision that judged it; the rule's actions (alert,
    revalidate, suspend, rollback) are carried out in the same transaction and their outcomes
    kept in ``action_results``. At most one unresolved alert per deployment and rule: a rule
    that keeps firing does not raise it again until the alert is resolved. Compliance
    officers and risk managers acknowledge and resolve alerts (docs/monitoring.md)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Severity(models.TextChoices):
        MEDIUM = "medium", "Medium (alert)"
        HIGH = "high", "High (revalidation)"
        CRITICAL = "critical", "Critical (suspension or rollback)"

    UNRESOLVED_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED)
    ACTIONS = ("alert", "revalidate", "suspend", "rollback")

    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="alerts")
    model = models.ForeignKey("models_registry.Model", on_delete=models.PROTECT, related_name="monitoring_alerts")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    rule_id = models.CharField(max_length=100)
    actions = models.JSONField(default=list)
    action_results = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.TextField()
    detection = models.JSONField(default=dict)
    window_from = models.DateTimeField(null=True, blank=True)
    window_to = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    raised_at = models.DateTimeField()
    policy_decision = models.ForeignKey(PolicyDecision, on_delete=models.PROTECT, related_name="+")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    # Said by whoever resolves it: the rule fired without a real problem (the self-assessment
    # reports the rules' false alarms).
    false_alarm = models.BooleanField(default=False)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-raised_at", "-pk"]
        permissions = [
            ("acknowledge_monitoringalert", "Can acknowledge a monitoring alert"),
            ("resolve_monitoringalert", "Can resolve a monitoring alert"),
        ]
        indexes = [models.Index(fields=["model", "status"], name="monitoring_alert_model_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "rule_id"],
                condition=models.Q(status__in=["open", "acknowledged"]),
                name="monitoring_alert_one_unresolved",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "acknowledged", "resolved"]), name="monitoring_alert_status"
            ),
            models.CheckConstraint(
                condition=models.Q(severity__in=["medium", "high", "critical"]), name="monitoring_alert_severity"
            ),
            models.CheckConstraint(
                condition=models.Q(status="resolved", resolved_at__isnull=False)
                | (~models.Q(status="resolved") & models.Q(resolved_at__isnull=True)),
                name="monitoring_alert_resolved_at_iff_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk} {self.rule_id} on deployment {self.deployment_id} ({self.status})"


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImmutableReportError(Exception):
    """An issued report (or a report under retention or legal hold) cannot be changed or removed."""


class Report(models.Model):
    """A regulator-ready PDF report (docs/reports.md): requested, generated by a Celery job,
    then issued immutably.

    The PDF is stored content-addressed (``reports/<sha256>.pdf``, decision 0004) and its
    SHA-256 is recorded by the ``report.issued`` event written in the same transaction as
    the row's last change. Once succeeded only the legal-hold fields may change
    (``report_legal_hold_set`` / ``_release``); ``save()`` refuses anything else, and
    ``delete()`` refuses while the report is retained or on hold.
    """

    # Fields a succeeded report may still change: the hold is about the record, not its content.
    HOLD_FIELDS = frozenset({"legal_hold", "legal_hold_reason", "legal_hold_by", "legal_hold_at"})

    report_type = models.CharField(max_length=64)
    model = models.ForeignKey(
        "models_registry.Model", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    version = models.ForeignKey(
        "models_registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    period_from = models.DateField(null=True, blank=True)
    period_to = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=ReportStatus.choices, default=ReportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="reports/", max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    data_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the embedded report-data.json.")
    signed = models.BooleanField(default=False)
    signer_fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the signing certificate.")
    checkpoint = models.ForeignKey(
        "audit.Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retention_class = models.CharField(max_length=50)
    retain_until = models.DateTimeField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.TextField(blank=True)
    legal_hold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    legal_hold_at = models.DateTimeField(null=True, blank=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [
            ("request_report", "Can request a report"),
            ("hold_report", "Can put a report on legal hold and release it"),
        ]
        indexes = [models.Index(fields=["model", "-requested_at"], name="report_model_requested")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed"]), name="report_status"
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="report_progress_percent"),
            # An issued report always has its file, hash, checkpoint and retention date.
            models.CheckConstraint(
                condition=~models.Q(status="succeeded")
                | (
                    ~models.Q(sha256="")
                    & ~models.Q(file="")
                    & models.Q(checkpoint__isnull=False, retain_until__isnull=False, finished_at__isnull=False)
                ),
                name="report_succeeded_is_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(period_from__isnull=True)
                | models.Q(period_to__isnull=True)
                | models.Q(period_from__lte=models.F("period_to")),
                name="report_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(legal_hold=False) | ~models.Q(legal_hold_reason=""),
                name="report_legal_hold_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} {self.report_type} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Read from the database, not from this instance: a stale copy must not reopen an issued report.
        stored = None if self._state.adding else Report._base_manager.filter(pk=self.pk).values().first()
        if stored is not None and stored["status"] == ReportStatus.SUCCEEDED:
            changed = {
                f.name
                for f in self._meta.concrete_fields
                if stored[f.attname] != f.get_prep_value(getattr(self, f.attname))
            } - self.HOLD_FIELDS
            if changed:
                raise ImmutableReportError(
                    f"report {self.pk} is issued and immutable: {', '.join(sorted(changed))} cannot change"
                )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        from django.utils import timezone

        if self.legal_hold:
            raise ImmutableReportError(f"report {self.pk} is on legal hold: it cannot be removed")
        if self.retain_until is not None and self.retain_until > timezone.now():
            raise ImmutableReportError(
                f"report {self.pk} is retained until {self.retain_until:%Y-%m-%d} ({self.retention_class}): "
                "it cannot be removed"
            )
        return super().delete(*args, **kwargs)
