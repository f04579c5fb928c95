"""Shapes of the deployments API: the deployment as read, the trading permission (for the
schema only: the permission view returns the selector's dict as it is) and the reason that
every kill-switch and rollback action needs."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.signoff_serializers import NamedChoiceField
from governance.models import Deployment


class TradingPermissionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="Whether the model may trade now.")
    version = serializers.CharField(allow_null=True, help_text="The live deployment's version label (null: none).")
    phase = serializers.CharField(allow_null=True, help_text="The live deployment's phase (null: none).")
    capital_limit = serializers.CharField(allow_null=True, help_text="Capital limit as a decimal string (null: none).")
    currency = serializers.CharField(allow_null=True, help_text="Currency of the capital limit (null: none).")
    instruments = serializers.ListField(child=serializers.CharField(), help_text="Instruments it may trade.")
    reason = serializers.CharField(
        help_text="Why: 'deployed in phase <phase>', 'kill switch engaged: <reason>', "
        "'deployment suspended (version <status>)' or 'not deployed'."
    )


class DeploymentOutputSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    status = NamedChoiceField(enum_name="DeploymentStatusEnum", choices=Deployment.Status.choices, read_only=True)
    capital_limit = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True)
    max_daily_loss = serializers.DecimalField(max_digits=20, decimal_places=2, read_only=True, allow_null=True)
    instruments = serializers.ListField(child=serializers.CharField(), read_only=True)
    rollback_target_label = serializers.CharField(
        source="rollback_target.version", read_only=True, allow_null=True, default=None
    )
    killed_by = serializers.CharField(source="killed_by_label", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "status",
            "phase",
            "phase_started_at",
            "capital_limit",
            "currency",
            "instruments",
            "max_daily_loss",
            "rollback_target",
            "rollback_target_label",
            "rollback_plan",
            "signoff",
            "kill_switch_engaged",
            "kill_reason",
            "kill_drill",
            "killed_at",
            "killed_by",
            "started_at",
            "ended_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeploymentActionResultSerializer(serializers.Serializer):
    deployment = DeploymentOutputSerializer(help_text="The model's deployment after the action.")
    permission = TradingPermissionSerializer(help_text="The trading permission after the action.")


class DeploymentReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why: recorded with the audit event.")


class KillSwitchEngageSerializer(DeploymentReasonSerializer):
    drill = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Pulled to test the kill switch (RTS 6 Art. 12): the model stops all the same; the annual "
        "self-assessment counts tests apart from real stops.",
    )
