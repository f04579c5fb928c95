"""Input and output shapes of the inventory API. They validate and shape; services decide."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from governance.api.fields import JSONObjectField
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
from models_registry.models import Dataset, Model, ModelVersion

User = get_user_model()


class ModelOutputSerializer(serializers.ModelSerializer):
    desk = serializers.SlugRelatedField(slug_field="code", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    complexity = serializers.CharField(read_only=True)
    computed_tier = serializers.IntegerField(read_only=True)
    tier_rationale = serializers.CharField(read_only=True)
    lifecycle_status = serializers.CharField(read_only=True)
    materiality = serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)

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
            "lifecycle_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


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
