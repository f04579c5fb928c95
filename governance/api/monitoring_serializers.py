"""Shapes of the monitoring API. The request serializers describe the body in the OpenAPI
schema only: the ingest service validates the samples itself (in plain Python, far faster
than a serializer field per value for thousands of samples), with the same rules."""

from __future__ import annotations

from rest_framework import serializers

from governance.models import MonitoringBatch


class MonitoringSampleSchema(serializers.Serializer):
    at = serializers.CharField(help_text="ISO 8601 timestamp with its UTC offset ('Z' or '+01:00'); stored in UTC.")
    instrument = serializers.CharField(required=False, allow_blank=True, max_length=50)
    predicted = serializers.IntegerField(required=False, allow_null=True, help_text="The predicted class label.")
    probability = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1, help_text="The predicted probability, in [0, 1]."
    )
    outcome = serializers.IntegerField(required=False, allow_null=True, help_text="The realised class label.")
    trade_count = serializers.IntegerField(required=False, min_value=0, default=0)
    pnl = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="P&L in the deployment's currency: a decimal string ('-120.50') or a JSON number, at most 2 places.",
    )
    pnl_kind = serializers.ChoiceField(choices=["trade", "period"], required=False, default="trade")
    currency = serializers.CharField(
        required=False, help_text="Optional; if given, must be the deployment's currency (not stored)."
    )
    features = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Feature name -> number (for drift)."
    )


class MonitoringIngestSchema(serializers.Serializer):
    batch_id = serializers.RegexField(
        r"^[A-Za-z0-9._:-]{1,100}$", help_text="Chosen by the sender; unique per model; a retry reuses it."
    )
    samples = MonitoringSampleSchema(
        many=True, help_text="1 to GOVERNANCE_MONITORING_MAX_BATCH samples, in time order."
    )


class IngestResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "replayed"])
    batch_id = serializers.CharField()
    model = serializers.IntegerField()
    deployment = serializers.IntegerField()
    version = serializers.IntegerField()
    sample_count = serializers.IntegerField()
    first_at = serializers.DateTimeField()
    last_at = serializers.DateTimeField()
    trade_count_total = serializers.IntegerField()
    pnl_total = serializers.CharField(help_text="Sum of the batch's P&L, a decimal string.")
    content_sha256 = serializers.CharField(help_text="SHA-256 of the RFC 8785 canonical JSON of the samples.")
    received_at = serializers.DateTimeField()
    received_by = serializers.CharField()


class MonitoringBatchSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    version_label = serializers.CharField(source="version.version", read_only=True)
    pnl_total = serializers.DecimalField(max_digits=24, decimal_places=2, read_only=True)
    received_by = serializers.CharField(source="received_by_label", read_only=True)

    class Meta:
        model = MonitoringBatch
        fields = [
            "id",
            "batch_id",
            "model",
            "model_name",
            "deployment",
            "version",
            "version_label",
            "sample_count",
            "first_at",
            "last_at",
            "trade_count_total",
            "pnl_total",
            "content_sha256",
            "received_at",
            "received_by",
        ]
        read_only_fields = fields
