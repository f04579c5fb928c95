"""The model inventory: models, their versions, and governed datasets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from guardian.managers import UserObjectPermissionManager
from guardian.models import UserObjectPermissionBase

from audit.governed import GovernedQuerySet
from models_registry import features, tiering
from models_registry.choices import (
    Classification,
    Complexity,
    LifecycleStatus,
    ModelType,
    Purpose,
    RiskTier,
    SourceKind,
    ValidationStatus,
)

version_label_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$",
    "Use letters, digits and . _ + - (starting with a letter or digit), at most 50 characters.",
)
commit_validator = RegexValidator(r"^[0-9a-f]{7,40}$", "A commit is 7 to 40 lowercase hexadecimal characters.")


class ModelQuerySet(GovernedQuerySet):
    def with_lifecycle_status(self) -> ModelQuerySet:
        """Annotate ``lifecycle_status``: the status of the model's latest version (or draft)."""
        latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-created_at", "-pk").values("status")[:1]
        return self.annotate(lifecycle_status=models.functions.Coalesce(Subquery(latest), models.Value("draft")))


class Model(models.Model):
    """A model in the inventory: what it is for, who owns it, how risky it is."""

    name = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    desk = models.ForeignKey("governance.Desk", on_delete=models.PROTECT, related_name="models")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models")
    description = models.TextField(blank=True)
    # Problem definition (the reference article's first step).
    objectives = models.TextField(blank=True)
    success_criteria = models.TextField(blank=True)
    constraints = models.TextField(blank=True)
    model_type = models.CharField(max_length=30, choices=ModelType.choices)
    materiality = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Capital at risk, in the base currency (GOVERNANCE_BASE_CURRENCY).",
    )
    risk_tier = models.PositiveSmallIntegerField(choices=RiskTier.choices, editable=False)
    risk_tier_override = models.PositiveSmallIntegerField(choices=RiskTier.choices, null=True, blank=True)
    risk_tier_override_justification = models.TextField(blank=True)
    # Inventory attributes (SR 11-7 / SR 26-2 inventory; PRA SS1/23 Principle 1).
    is_vendor_model = models.BooleanField(
        default=False, help_text="A third-party (vendor) model, or one built on a vendor's product."
    )
    vendor_name = models.CharField(max_length=200, blank=True, help_text="Required for a vendor model.")
    upstream_models = models.ManyToManyField(
        "self",
        through="ModelDependency",
        through_fields=("model", "upstream"),
        symmetrical=False,
        related_name="downstream_models",
        blank=True,
        help_text="The models whose outputs feed this one.",
    )
    outputs_and_users = models.TextField(
        blank=True, help_text="What the model produces and who or what uses it (desks, systems, other models)."
    )
    restrictions_on_use = models.TextField(
        blank=True, help_text="Uses the model is not approved for, and limits on how its outputs may be used."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("oversee_model", "Can see every model and version (oversight roles)"),
            ("validate_model", "Can validate the model's versions (assigned validator)"),
            ("assign_validator", "Can assign and unassign a model's validators (compliance, administrators)"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(materiality__gte=0), name="model_materiality_non_negative"),
            models.CheckConstraint(condition=Q(risk_tier__in=[1, 2, 3]), name="model_risk_tier_valid"),
            models.CheckConstraint(
                condition=Q(risk_tier_override__isnull=True) | ~Q(risk_tier_override_justification=""),
                name="model_tier_override_needs_justification",
            ),
            models.CheckConstraint(
                condition=Q(is_vendor_model=False) | ~Q(vendor_name=""),
                name="model_vendor_needs_vendor_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The stored tier is always the effective one, so lists can filter and sort by it.
        self.risk_tier = self.risk_tier_override or self.computed_tier
        super().save(*args, **kwargs)

    @property
    def complexity(self) -> Complexity:
        return tiering.complexity_of(self.model_type)

    @property
    def tier_assessment(self) -> tiering.TierAssessment:
        return tiering.assess_tier(model_type=self.model_type, capital_at_risk=Decimal(self.materiality))

    @property
    def computed_tier(self) -> int:
        return self.tier_assessment.tier

    @property
    def tier_rationale(self) -> str:
        computed = self.tier_assessment.rationale
        if self.risk_tier_override is None:
            return computed
        return (
            f"tier {self.risk_tier_override} by override ({self.risk_tier_override_justification}); computed {computed}"
        )


class ModelDependency(models.Model):
    """One edge of the model graph: ``upstream``'s outputs feed ``model``. Written only by the
    model services, which refuse a self-reference and a cycle."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="upstream_links")
    upstream = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="downstream_links")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        verbose_name = "upstream model link"
        constraints = [
            models.UniqueConstraint(fields=["model", "upstream"], name="model_dependency_unique"),
            models.CheckConstraint(condition=~Q(model=models.F("upstream")), name="model_dependency_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.upstream} feeds {self.model}"


class Dataset(models.Model):
    """A governed dataset: where it comes from, who may see it, and whether it passes its rules."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source_kind = models.CharField(max_length=30, choices=SourceKind.choices)
    collection_policy = models.TextField(help_text="How and under which terms the data is collected.")
    storage_location = models.CharField(max_length=500, help_text="Where the governed copy is kept.")
    classification = models.CharField(max_length=20, choices=Classification.choices)
    desk = models.ForeignKey(
        "governance.Desk", null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_datasets")
    file = models.FileField(upload_to="datasets/", max_length=300)
    content_sha256 = models.CharField(max_length=64, editable=False)
    size_bytes = models.BigIntegerField(editable=False)
    time_column = models.CharField(max_length=100, blank=True, default="Date")
    schema = models.JSONField(default=list, editable=False, help_text="Columns and their inferred types.")
    row_count = models.BigIntegerField(editable=False)
    time_start = models.DateTimeField(null=True, blank=True, editable=False)
    time_end = models.DateTimeField(null=True, blank=True, editable=False)
    rules = models.JSONField(default=dict, blank=True, help_text="Declarative cleansing and validation rules.")
    validation_status = models.CharField(
        max_length=20, choices=ValidationStatus.choices, default=ValidationStatus.NOT_VALIDATED, editable=False
    )
    validation_result = models.JSONField(null=True, blank=True, editable=False)
    validated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("oversee_dataset", "Can see every dataset up to confidential (oversight roles)"),
            ("validate_dataset", "Can run a dataset's cleansing and validation rules and store the result"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(row_count__gte=0), name="dataset_row_count_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One trained artifact of a model; the lifecycle applies to versions."""

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=50, validators=[version_label_validator])
    status = models.CharField(max_length=30, choices=LifecycleStatus.choices, default=LifecycleStatus.DRAFT)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    artifact = models.FileField(upload_to="artifacts/", max_length=300)
    artifact_sha256 = models.CharField(max_length=64, editable=False)
    artifact_size = models.BigIntegerField(editable=False)
    artifact_format = models.CharField(max_length=20, default="skops", editable=False)
    estimator_class = models.CharField(max_length=300, editable=False)
    feature_names = models.JSONField(default=list, blank=True, editable=False)
    n_features = models.PositiveIntegerField(null=True, blank=True, editable=False)
    framework = models.CharField(max_length=100, help_text="Library and version, e.g. scikit-learn 1.9.1.")
    hyperparameters = models.JSONField(default=dict, blank=True)
    code_repository = models.URLField(max_length=500, blank=True)
    code_commit = models.CharField(max_length=40, blank=True, validators=[commit_validator])
    training_dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="training_for"
    )
    validation_dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="validation_for"
    )
    test_dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="test_for")
    feature_pipeline = models.CharField(
        max_length=50,
        choices=features.PIPELINE_CHOICES,
        default=features.DEFAULT_PIPELINE,
        help_text="How the datasets become the model's features (models_registry.features).",
    )
    target = models.CharField(
        max_length=100,
        blank=True,
        help_text="What the model predicts: a target of the pipeline, or a column of the dataset for 'columns'.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_versions")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["model__name", "-created_at"]
        permissions = [("transition_modelversion", "Can move a model version through its lifecycle")]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_label_unique"),
            models.CheckConstraint(condition=Q(artifact_size__gte=0), name="version_artifact_size_non_negative"),
            models.CheckConstraint(condition=Q(status__in=LifecycleStatus.values), name="version_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} {self.version}"


class GrantManager(UserObjectPermissionManager.from_queryset(GovernedQuerySet)):  # type: ignore[misc]
    """guardian's manager (assign_perm, remove_perm) over the governed queryset: grants are
    written only by the access services, each with its audit event."""


class ModelGrant(UserObjectPermissionBase):
    """A user's object permission on one model (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="grants")

    objects = GrantManager()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "model access grant"

    def __str__(self) -> str:
        return f"{self.user} may {self.permission.codename} on {self.content_object}"


class DatasetGrant(UserObjectPermissionBase):
    """A user's object permission on one dataset (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="grants")

    objects = GrantManager()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "dataset access grant"

    def __str__(self) -> str:
        return f"{self.user} may {self.permission.codename} on {self.content_object}"


class Engagement(models.Model):
    """What is shared with a regulator or external auditor, and for how long.

    Access follows the engagement: it starts at ``starts_at``, ends at ``ends_at`` or when
    revoked, whichever is first; the selectors check the clock on every read.
    """

    regulator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="engagements")
    authority = models.CharField(max_length=200, help_text="The supervisor or firm, e.g. PRA, BaFin, external auditor.")
    purpose = models.TextField(help_text="Why the material is shared (review, inspection, request reference).")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    shared_models = models.ManyToManyField(Model, through="EngagementModel", related_name="engagements")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="engagement_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.authority}: {self.regulator} until {self.ends_at:%Y-%m-%d}"


class EngagementModel(models.Model):
    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="scope")
    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="+")

    objects = GovernedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["engagement", "model"], name="engagement_model_unique")]

    def __str__(self) -> str:
        return f"{self.model} in {self.engagement}"


class AssessmentKind(models.TextChoices):
    FULL = "full", "Full (every check)"
    PERFORMANCE = "performance", "Performance metrics"
    BACKTEST = "backtest", "Backtest and robustness"
    OVERFITTING = "overfitting", "Overfitting"
    DATA_QUALITY = "data_quality", "Data quality and drift"
    EXPLAINABILITY = "explainability", "Explainability"


class AssessmentStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# An assessment in one of these states stands for its inputs: a second request with the
# same inputs gets it back instead of a new one (failed and cancelled ones may be retried).
ASSESSMENT_LIVE_STATUSES = (AssessmentStatus.QUEUED, AssessmentStatus.RUNNING, AssessmentStatus.SUCCEEDED)
ASSESSMENT_FINAL_STATUSES = (AssessmentStatus.SUCCEEDED, AssessmentStatus.FAILED, AssessmentStatus.CANCELLED)


class RiskAssessment(models.Model):
    """One run of the risk checks on a model version (issue 7): what went in, what came out.

    ``inputs`` pins everything the numbers depend on (artifact, datasets and parameters by
    SHA-256, feature pipeline and target), ``environment`` the library versions and
    ``random_seed`` the seed, so a rerun gives the same numbers. ``inputs_key`` (SHA-256 of
    the kind and the inputs) is unique among queued, running and succeeded assessments:
    the same request twice, even concurrently, yields one assessment.
    """

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="assessments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="assessments")
    kind = models.CharField(max_length=20, choices=AssessmentKind.choices, default=AssessmentKind.FULL)
    parameters = models.JSONField(default=dict, help_text="Normalised by the service, defaults filled in.")
    inputs = models.JSONField(default=dict, editable=False)
    inputs_key = models.CharField(max_length=64, editable=False, db_index=True)
    status = models.CharField(max_length=20, choices=AssessmentStatus.choices, default=AssessmentStatus.QUEUED)
    progress_percent = models.PositiveSmallIntegerField(default=0)
    current_step = models.CharField(max_length=100, blank=True)
    # Flat name -> number: what the policies read (accuracy, sharpe_ratio, max_drawdown, pbo...).
    metrics = models.JSONField(null=True, blank=True, editable=False)
    # Per check, the checks' JSON-safe results (equity curves for charts, downsampled).
    results = models.JSONField(null=True, blank=True, editable=False)
    overfitting = models.JSONField(null=True, blank=True, editable=False)
    explainability = models.JSONField(null=True, blank=True, editable=False)
    # Decided by the policies (trigger ``assessment``) when a full assessment succeeds; null
    # otherwise: no policy set in force or a partial kind (``rating_rules`` then says which), or
    # not succeeded (``rating_rules`` null too).
    rating = models.CharField(  # noqa: DJ001
        max_length=10,
        null=True,
        blank=True,
        choices=[("green", "Green"), ("amber", "Amber"), ("red", "Red")],
    )
    rating_rules = models.JSONField(null=True, blank=True)
    rating_decision = models.ForeignKey(
        "governance.PolicyDecision",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The policy decision that rated the assessment.",
    )
    environment = models.JSONField(default=dict, editable=False)
    random_seed = models.BigIntegerField(default=0)
    celery_task_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # {code, message, detail} when failed; null otherwise.
    error = models.JSONField(null=True, blank=True, editable=False)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-pk"]
        permissions = [("request_riskassessment", "Can request a risk assessment")]
        indexes = [models.Index(fields=["version", "status"], name="assessment_version_status_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["inputs_key"],
                condition=Q(status__in=[s.value for s in ASSESSMENT_LIVE_STATUSES]),
                name="assessment_live_inputs_unique",
            ),
            models.CheckConstraint(condition=Q(status__in=AssessmentStatus.values), name="assessment_status_known"),
            models.CheckConstraint(condition=Q(kind__in=AssessmentKind.values), name="assessment_kind_known"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100), name="assessment_progress_percent"
            ),
            # No partial result is ever marked succeeded: metrics only with success, an error only with failure.
            models.CheckConstraint(
                condition=Q(status=AssessmentStatus.SUCCEEDED, metrics__isnull=False)
                | (~Q(status=AssessmentStatus.SUCCEEDED) & Q(metrics__isnull=True)),
                name="assessment_metrics_iff_succeeded",
            ),
            models.CheckConstraint(
                condition=Q(status=AssessmentStatus.FAILED, error__isnull=False)
                | (~Q(status=AssessmentStatus.FAILED) & Q(error__isnull=True)),
                name="assessment_error_iff_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"assessment {self.pk} ({self.kind}) of {self.version}: {self.status}"

    @property
    def is_final(self) -> bool:
        return self.status in ASSESSMENT_FINAL_STATUSES


class AdjustmentStatus(models.TextChoices):
    """A post-model adjustment's status, derived from its dates and withdrawal (never stored, so it
    cannot go stale): withdrawn once withdrawn; else expired from ``effective_until``; else active
    from ``effective_from`` (scheduled before)."""

    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PostModelAdjustmentQuerySet(GovernedQuerySet):
    def with_status(self, at: Any = None) -> PostModelAdjustmentQuerySet:
        """Annotate ``status`` as at ``at`` (now by default)."""
        from django.utils import timezone

        at = at or timezone.now()
        return self.annotate(
            status=models.Case(
                models.When(withdrawn_at__isnull=False, withdrawn_at__lte=at, then=models.Value("withdrawn")),
                models.When(effective_until__isnull=False, effective_until__lte=at, then=models.Value("expired")),
                models.When(effective_from__gt=at, then=models.Value("scheduled")),
                default=models.Value("active"),
                output_field=models.CharField(),
            )
        )

    def in_force(self, at: Any = None) -> PostModelAdjustmentQuerySet:
        return self.with_status(at).filter(status=AdjustmentStatus.ACTIVE)


class PostModelAdjustment(models.Model):
    """An adjustment applied to a model version's outputs (an overlay): PRA SS1/23 Principle 5
    (post-model adjustments), SR 11-7 / SR 26-2 (overlays and adjustments). Recorded and withdrawn
    by the compliance function, each with its audit event; never edited or deleted."""

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="post_model_adjustments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="post_model_adjustments")
    description = models.TextField(help_text="What is adjusted and how it is applied.")
    reason = models.TextField(help_text="Why the model's raw output is not used as is.")
    adjustment = models.CharField(
        max_length=300, help_text="Kind and magnitude, e.g. 'cap: position size at most 50% of the signal's'."
    )
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    effective_from = models.DateTimeField()
    effective_until = models.DateTimeField(null=True, blank=True, help_text="Empty: until withdrawn.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by_label = models.CharField(max_length=200, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    objects = PostModelAdjustmentQuerySet.as_manager()

    class Meta:
        ordering = ["-effective_from", "-pk"]
        permissions = [("withdraw_postmodeladjustment", "Can withdraw a post-model adjustment")]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_until__isnull=True) | Q(effective_until__gt=models.F("effective_from")),
                name="adjustment_until_after_from",
            ),
            models.CheckConstraint(
                condition=(Q(withdrawn_at__isnull=True) & Q(withdrawal_reason=""))
                | (Q(withdrawn_at__isnull=False) & ~Q(withdrawal_reason="")),
                name="adjustment_withdrawal_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"adjustment {self.pk} on {self.version}: {self.adjustment}"

    def status_at(self, at: Any) -> str:
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return AdjustmentStatus.WITHDRAWN.value
        if self.effective_until is not None and self.effective_until <= at:
            return AdjustmentStatus.EXPIRED.value
        if self.effective_from > at:
            return AdjustmentStatus.SCHEDULED.value
        return AdjustmentStatus.ACTIVE.value
