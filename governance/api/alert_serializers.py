"""Shapes of the monitoring-alerts API: an alert as read, and the text its actions take."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.signoff_serializers import NamedChoiceField
from governance.models import MonitoringAlert


class MonitoringAlertSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    phase = serializers.CharField(source="deployment.phase", read_only=True)
    status = NamedChoiceField(
        enum_name="MonitoringAlertStatusEnum", choices=MonitoringAlert.Status.choices, read_only=True
    )
    severity = NamedChoiceField(
        enum_name="MonitoringAlertSeverityEnum", choices=MonitoringAlert.Severity.choices, read_only=True
    )
    actions = serializers.ListField(child=serializers.CharField(), read_only=True)
    action_results = serializers.ListField(child=serializers.DictField(), read_only=True)
    detection = serializers.DictField(read_only=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", read_only=True, allow_null=True, default=None
    )
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = MonitoringAlert
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "version_label",
            "deployment",
            "phase",
            "rule_id",
            "severity",
            "status",
            "message",
            "actions",
            "action_results",
            "detection",
            "window_from",
            "window_to",
            "raised_at",
            "policy_decision",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "resolution",
            "false_alarm",
        ]
        read_only_fields = fields


class AlertAcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class AlertResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(
        max_length=5000,
        help_text="What was found and what was done (required).",
        error_messages={"required": "a resolution (what was found and done) is required"},
    )
    false_alarm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The rule fired without a real problem (counted per rule by the annual self-assessment).",
    )
