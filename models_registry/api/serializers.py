"""Input and output shapes of the inventory API. They validate and shape; services decide."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.api.fields import JSONObjectField
from governance.api.signoff_serializers import NamedChoiceField
from governance.models import Desk
from models_registry import features
from models_registry.choices import (
    Classification,
    LifecycleStatus,
    ModelType,
    Purpose,
    RiskTier,
    SourceKind,
)
from models_registry.models import (
    AdjustmentStatus,
    AssessmentKind,
    AssessmentStatus,
    Dataset,
    Model,
    ModelVersion,
    PostModelAdjustment,
    RiskAssessment,
)

User = get_user_model()


class ModelOutputSerializer(serializers.ModelSerializer):
    desk = serializers.SlugRelatedField(slug_field="code", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    complexity = serializers.CharField(read_only=True)
    computed_tier = serializers.IntegerField(read_only=True)
    tier_rationale = serializers.CharField(read_only=True)
    lifecycle_status = serializers.CharField(read_only=True)
    materiality = serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)
    upstream_models = serializers.SerializerMethodField(
        help_text="Names of the models whose outputs feed this one (those the caller may see)."
    )

    class Meta:
        model = Model
        fields = [
            "id",
            "name",
            "purpose",
            "desk",
            "owner",
            "description",
            "objectives",
            "success_criteria",
            "constraints",
            "model_type",
            "complexity",
            "materiality",
            "risk_tier",
            "computed_tier",
            "risk_tier_override",
            "risk_tier_override_justification",
            "tier_rationale",
            "is_vendor_model",
            "vendor_name",
            "upstream_models",
            "outputs_and_users",
            "restrictions_on_use",
            "lifecycle_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_upstream_models(self, obj: Model) -> list[str]:
        # Prefetched by the view through the caller's scope (``visible_upstream``): a model the
        # caller may not see is not named.
        visible = getattr(obj, "visible_upstream", None)
        if visible is None:
            request = self.context.get("request")
            user = getattr(request, "user", None)
            if user is None:
                return []
            from models_registry.selectors import model_list

            visible = list(model_list(user=user).filter(downstream_links__model=obj).order_by("name"))
        return [m.name for m in visible]


class ModelUpdateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    desk = serializers.SlugRelatedField(slug_field="code", queryset=Desk.objects.all())
    owner = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True))
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    materiality = serializers.DecimalField(max_digits=20, decimal_places=2, min_value=0)
    description = serializers.CharField(required=False, allow_blank=True)
    objectives = serializers.CharField(required=False, allow_blank=True)
    success_criteria = serializers.CharField(required=False, allow_blank=True)
    constraints = serializers.CharField(required=False, allow_blank=True)
    risk_tier_override = serializers.ChoiceField(choices=RiskTier.choices, required=False, allow_null=True)
    risk_tier_override_justification = serializers.CharField(required=False, allow_blank=True)
    is_vendor_model = serializers.BooleanField(required=False)
    vendor_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    upstream_models = serializers.SlugRelatedField(
        slug_field="name",
        many=True,
        required=False,
        queryset=Model.objects.none(),  # the caller's models: set by the view (restrict_related)
        help_text="Names of the models whose outputs feed this one.",
    )
    outputs_and_users = serializers.CharField(required=False, allow_blank=True)
    restrictions_on_use = serializers.CharField(required=False, allow_blank=True)


class ModelCreateSerializer(ModelUpdateSerializer):
    name = serializers.CharField(max_length=200)
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False
    )


class DatasetOutputSerializer(serializers.ModelSerializer):
    desk = serializers.SlugRelatedField(slug_field="code", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "description",
            "source_kind",
            "collection_policy",
            "storage_location",
            "classification",
            "desk",
            "owner",
            "content_sha256",
            "size_bytes",
            "time_column",
            "schema",
            "row_count",
            "time_start",
            "time_end",
            "rules",
            "validation_status",
            "validation_result",
            "validated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DatasetUpdateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True)
    source_kind = serializers.ChoiceField(choices=SourceKind.choices)
    collection_policy = serializers.CharField()
    storage_location = serializers.CharField(max_length=500)
    classification = serializers.ChoiceField(choices=Classification.choices)
    desk = serializers.SlugRelatedField(slug_field="code", queryset=Desk.objects.all(), required=False, allow_null=True)
    owner = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.filter(is_active=True))
    rules = JSONObjectField(required=False)


class DatasetCreateSerializer(DatasetUpdateSerializer):
    name = serializers.CharField(max_length=200)
    file = serializers.FileField()
    time_column = serializers.CharField(max_length=100, required=False, allow_blank=True, default="Date")
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True), required=False
    )


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    allowed_transitions = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "status",
            "status_changed_at",
            "allowed_transitions",
            "artifact_sha256",
            "artifact_size",
            "artifact_format",
            "estimator_class",
            "n_features",
            "feature_names",
            "framework",
            "hyperparameters",
            "code_repository",
            "code_commit",
            "training_dataset",
            "validation_dataset",
            "test_dataset",
            "feature_pipeline",
            "target",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_allowed_transitions(self, obj: ModelVersion) -> list[str]:
        from models_registry.selectors import allowed_transitions

        return allowed_transitions(version=obj)


class ModelVersionUpdateSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    framework = serializers.CharField(max_length=100, required=False)
    hyperparameters = JSONObjectField(required=False)
    code_repository = serializers.URLField(max_length=500, required=False, allow_blank=True)
    code_commit = serializers.RegexField(r"^[0-9a-f]{7,40}$", required=False, allow_blank=True)
    training_dataset = serializers.PrimaryKeyRelatedField(
        queryset=Dataset.objects.all(), required=False, allow_null=True
    )
    validation_dataset = serializers.PrimaryKeyRelatedField(
        queryset=Dataset.objects.all(), required=False, allow_null=True
    )
    test_dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all(), required=False, allow_null=True)
    feature_pipeline = serializers.ChoiceField(choices=features.PIPELINE_CHOICES, required=False)
    target = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ModelVersionCreateSerializer(ModelVersionUpdateSerializer):
    model = serializers.PrimaryKeyRelatedField(queryset=Model.objects.all())
    version = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$", max_length=50)
    artifact = serializers.FileField()


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=LifecycleStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


# --- Risk assessments --------------------------------------------------------------------

_RATINGS = [value for value, _ in RiskAssessment._meta.get_field("rating").choices]


class RatingRuleSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="The rule's id; null in the one entry of an unrated one.")
    outcome = serializers.CharField(help_text="deny (red), warn or require_approval (amber), or not_rated.")
    message = serializers.CharField(allow_null=True)
    references = serializers.ListField(child=serializers.CharField())


class AssessmentFindingSerializer(serializers.Serializer):
    """A finding the assessment raised (only those on versions the caller may see)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    due_date = serializers.DateField()
    is_overdue = serializers.BooleanField(help_text="Not closed and past its due date.")


class AssessmentOutputSerializer(serializers.ModelSerializer):
    """An assessment in a list: what it is, where it is, and its rating."""

    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    kind = NamedChoiceField(enum_name="AssessmentKindEnum", choices=AssessmentKind.choices, read_only=True)
    status = NamedChoiceField(enum_name="AssessmentStatusEnum", choices=AssessmentStatus.choices, read_only=True)
    rating = serializers.ChoiceField(
        choices=_RATINGS,
        allow_null=True,
        read_only=True,
        help_text="Decided by the policies when a full assessment succeeds; null when not rated.",
    )
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)

    class Meta:
        model = RiskAssessment
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "kind",
            "status",
            "progress_percent",
            "current_step",
            "cancel_requested",
            "rating",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class AssessmentDetailSerializer(AssessmentOutputSerializer):
    """One assessment with its inputs, results, rating and the findings it raised."""

    metrics = serializers.JSONField(
        read_only=True, help_text="Flat name -> number (what the policies read); null unless succeeded."
    )
    results = serializers.JSONField(
        read_only=True,
        help_text="Per check, its results; backtest.equity_curve holds the charts' data "
        "(dates, strategy, benchmark; downsampled_from when thinned).",
    )
    overfitting = serializers.JSONField(read_only=True)
    explainability = serializers.JSONField(read_only=True)
    parameters = serializers.JSONField(read_only=True, help_text="Every parameter, defaults filled in.")
    inputs = serializers.JSONField(
        read_only=True, help_text="What the numbers depend on: artifact, datasets and parameters by SHA-256."
    )
    environment = serializers.JSONField(read_only=True, help_text="Library versions of the run.")
    error = serializers.JSONField(read_only=True, help_text="{code, message, detail} when failed; null otherwise.")
    rating_rules = RatingRuleSerializer(many=True, read_only=True, allow_null=True)
    findings = AssessmentFindingSerializer(source="visible_findings", many=True, read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta(AssessmentOutputSerializer.Meta):
        fields = [
            *AssessmentOutputSerializer.Meta.fields,
            "metrics",
            "results",
            "overfitting",
            "explainability",
            "rating_rules",
            "rating_decision",
            "findings",
            "parameters",
            "inputs",
            "inputs_key",
            "environment",
            "random_seed",
            "attempts",
            "celery_task_id",
            "error",
            "duration_seconds",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration_seconds(self, obj: RiskAssessment) -> float | None:
        if obj.started_at is None or obj.finished_at is None:
            return None
        return round((obj.finished_at - obj.started_at).total_seconds(), 3)


class AssessmentRequestSerializer(serializers.Serializer):
    version = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.none(), help_text="Id of a version you can see."
    )
    kind = NamedChoiceField(enum_name="AssessmentKindEnum", choices=AssessmentKind.choices, default=AssessmentKind.FULL)
    parameters = JSONObjectField(
        required=False,
        default=dict,
        help_text="Overrides of the defaults (docs/assessments.md); unknown keys are refused.",
    )


class AssessmentCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AdjustmentOutputSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status = serializers.ChoiceField(
        choices=AdjustmentStatus.choices, read_only=True, help_text="As at the response (derived, never stored)."
    )

    class Meta:
        model = PostModelAdjustment
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "description",
            "reason",
            "adjustment",
            "approved_by",
            "effective_from",
            "effective_until",
            "status",
            "created_by_label",
            "created_at",
            "withdrawn_at",
            "withdrawn_by_label",
            "withdrawal_reason",
        ]
        read_only_fields = fields


class AdjustmentCreateSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Id of a version you can see (404 otherwise).")
    description = serializers.CharField()
    reason = serializers.CharField()
    adjustment = serializers.CharField(max_length=300, help_text="Kind and magnitude.")
    effective_from = serializers.DateTimeField()
    effective_until = serializers.DateTimeField(required=False, allow_null=True, default=None)
    approved_by = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="The compliance officer who approved it; you by default.",
    )


class AdjustmentWithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField()
