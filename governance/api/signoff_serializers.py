"""Input and output shapes of the sign-off, findings and policy API. They check types and
required fields and shape the answers; the services decide everything else."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance import selectors
from governance.api.fields import JSONObjectField
from governance.models import Finding, PolicyDecision, PolicySet, SignOffRequest, SignOffResponse
from models_registry.choices import LifecycleStatus

User = get_user_model()


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose enum is its own named schema component (``enum_name``): several
    components have a ``status`` with different values, which drf-spectacular's automatic
    enum names cannot tell apart (governance.api.schema.NamedChoiceFieldExtension)."""

    def __init__(self, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(**kwargs)


def _status_field(choices: Any, enum_name: str, **kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(enum_name=enum_name, choices=choices.choices, **kwargs)


# --- Shapes named in the schema ---------------------------------------------------------


class EvidenceItemSerializer(serializers.Serializer):
    title = serializers.CharField(help_text="What the document is (e.g. 'Validation report').")
    reference = serializers.CharField(help_text="Where it is: a document id, report name or link.")


class DeploymentProposalSerializer(serializers.Serializer):
    phase = serializers.CharField(help_text="Proposed deployment phase, e.g. phase_1.")
    capital_limit = serializers.CharField(help_text="Capital limit as a decimal string.")
    instruments = serializers.ListField(child=serializers.CharField(), required=False)
    rollback_plan = serializers.CharField()


class ReasonSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The rule's id.")
    outcome = serializers.CharField(help_text="deny, require_approval or warn.")
    message = serializers.CharField()
    references = serializers.ListField(child=serializers.CharField())


class RequiredApprovalSerializer(serializers.Serializer):
    rule = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()
    approved_by = serializers.ListField(child=serializers.CharField())
    satisfied = serializers.BooleanField()


@extend_schema_field(EvidenceItemSerializer(many=True))
class EvidenceField(serializers.ListField):
    """A list of objects; the service checks each item's keys and says which item is wrong."""

    child = serializers.DictField()


@extend_schema_field(DeploymentProposalSerializer)
class DeploymentField(JSONObjectField):
    pass


# Stored JSON answered as stored (no key dropped), documented with its shape.


@extend_schema_field(EvidenceItemSerializer(many=True))
class _EvidenceOut(serializers.ReadOnlyField):
    pass


@extend_schema_field(DeploymentProposalSerializer(allow_null=True))
class _DeploymentOut(serializers.ReadOnlyField):
    pass


@extend_schema_field(ReasonSerializer(many=True))
class _ReasonsOut(serializers.ReadOnlyField):
    pass


@extend_schema_field(RequiredApprovalSerializer(many=True))
class _ApprovalsOut(serializers.ReadOnlyField):
    pass


# --- Sign-off requests ------------------------------------------------------------------


class SignOffResponseSerializer(serializers.ModelSerializer):
    approver = serializers.CharField(source="approver_label", read_only=True)

    class Meta:
        model = SignOffResponse
        fields = ["id", "round", "approver", "roles", "verdict", "comment", "decided_at"]
        read_only_fields = fields


class SignOffRequestOutputSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    transition = serializers.CharField(read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    evidence = _EvidenceOut()
    deployment = _DeploymentOut()
    required_approvals = _ApprovalsOut()
    reasons = _ReasonsOut()
    status = _status_field(SignOffRequest.Status, "SignOffStatusEnum", read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)
    version_changed = serializers.SerializerMethodField(
        help_text="The version's artifact, code, parameters or datasets changed since submission."
    )

    class Meta:
        model = SignOffRequest
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "from_status",
            "to_status",
            "transition",
            "status",
            "round",
            "requested_by",
            "justification",
            "evidence",
            "deployment",
            "required_approvals",
            "reasons",
            "latest_decision",
            "submitted_at",
            "due_at",
            "expires_at",
            "closed_at",
            "updated_at",
            "is_overdue",
            "version_changed",
        ]
        read_only_fields = fields

    def get_version_changed(self, obj: SignOffRequest) -> bool:
        return selectors.version_fingerprint(obj.version) != obj.version_fingerprint


class SignOffRequestDetailSerializer(SignOffRequestOutputSerializer):
    responses = SignOffResponseSerializer(many=True, read_only=True, help_text="Every round's responses, oldest first.")

    class Meta(SignOffRequestOutputSerializer.Meta):
        fields = [*SignOffRequestOutputSerializer.Meta.fields, "responses"]
        read_only_fields = fields


class SignOffSubmitSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Id of a version you can see (404 otherwise).")
    to_status = serializers.ChoiceField(choices=LifecycleStatus.choices)
    justification = serializers.CharField()
    evidence = EvidenceField()
    deployment = DeploymentField(
        required=False, allow_null=True, default=None, help_text="Only for a move to deployed: the proposal."
    )


class SignOffAmendSerializer(serializers.Serializer):
    justification = serializers.CharField()
    evidence = EvidenceField()
    deployment = DeploymentField(required=False, allow_null=True, default=None)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(help_text="Why: recorded with the response and sent to the requester.")


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField()


# --- Findings ---------------------------------------------------------------------------


class FindingOutputSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    remediation_owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    raised_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    closed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    status = _status_field(Finding.Status, "FindingStatusEnum", read_only=True)
    is_overdue = serializers.BooleanField(read_only=True, help_text="Not closed and past its due date.")

    class Meta:
        model = Finding
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "title",
            "description",
            "severity",
            "status",
            "remediation_owner",
            "due_date",
            "is_overdue",
            "raised_by",
            "raised_at",
            "resolution",
            "closed_at",
            "closed_by",
            "updated_at",
        ]
        read_only_fields = fields


_USERS = User.objects.filter(is_active=True)


class FindingRaiseSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="Id of a version you can see (404 otherwise).")
    severity = serializers.ChoiceField(choices=Finding.Severity.choices)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField()
    remediation_owner = serializers.SlugRelatedField(slug_field="username", queryset=_USERS)
    due_date = serializers.DateField()


class FindingUpdateSerializer(serializers.Serializer):
    status = _status_field(Finding.Status, "FindingStatusEnum")
    due_date = serializers.DateField()
    resolution = serializers.CharField(allow_blank=True)
    remediation_owner = serializers.SlugRelatedField(slug_field="username", queryset=_USERS)
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Needed to close or reopen a finding."
    )


# --- Policy sets and decisions ----------------------------------------------------------


class PolicyFileSerializer(serializers.Serializer):
    directory = serializers.CharField()
    name = serializers.CharField()
    sha256 = serializers.CharField()


class PolicyFileWithTextSerializer(PolicyFileSerializer):
    text = serializers.CharField()


class PolicySetOutputSerializer(serializers.ModelSerializer):
    files = PolicyFileSerializer(many=True, read_only=True)
    activated_by = serializers.CharField(source="activated_by_label", read_only=True)

    class Meta:
        model = PolicySet
        fields = ["id", "content_hash", "is_active", "rule_ids", "files", "created_at", "activated_at", "activated_by"]
        read_only_fields = fields


class PolicySetDetailSerializer(PolicySetOutputSerializer):
    files = PolicyFileWithTextSerializer(many=True, read_only=True)


class PolicyRuleResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField(required=False)
    effect = serializers.CharField(required=False)
    outcome = serializers.CharField()
    message = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    references = serializers.ListField(child=serializers.CharField(), required=False)
    error = serializers.CharField(allow_null=True, required=False)
    approval = serializers.JSONField(allow_null=True, required=False, help_text="The approval requirement, if any.")


@extend_schema_field(PolicyRuleResultSerializer(many=True))
class _ResultsOut(serializers.ReadOnlyField):
    pass


class PolicyDecisionOutputSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    required_approvals = _ApprovalsOut()
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = PolicyDecision
        fields = [
            "id",
            "trigger",
            "model",
            "version",
            "outcome",
            "policy_set",
            "policy_set_hash",
            "reasons",
            "required_approvals",
            "decided_at",
            "actor",
        ]
        read_only_fields = fields

    @extend_schema_field(ReasonSerializer(many=True))
    def get_reasons(self, obj: PolicyDecision) -> list[dict[str, Any]]:
        return obj.reasons()


class PolicyDecisionDetailSerializer(PolicyDecisionOutputSerializer):
    results = _ResultsOut()
    input_document = JSONObjectField(read_only=True)

    class Meta(PolicyDecisionOutputSerializer.Meta):
        fields = [
            *PolicyDecisionOutputSerializer.Meta.fields,
            "results",
            "input_document",
            "input_sha256",
            "schema_version",
        ]
        read_only_fields = fields
