"""Organisation: desks and each member's desk."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.managers import UserObjectPermissionManager
from guardian.models import UserObjectPermissionBase

from audit.governed import GovernedQuerySet


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
