"""Reports API shapes: the request (validated here only as shapes; the service decides) and the status."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.models import Report


class ReportRequestSerializer(serializers.Serializer):
    report_type = serializers.CharField(help_text="A report type key, e.g. audit-trail.")
    model = serializers.IntegerField(required=False, allow_null=True, help_text="The subject model's id.")
    version = serializers.IntegerField(required=False, allow_null=True, help_text="The subject version's id.")
    period_from = serializers.DateField(required=False, allow_null=True, help_text="First day (UTC), inclusive.")
    period_to = serializers.DateField(required=False, allow_null=True, help_text="Last day (UTC), inclusive.")
    retention_class = serializers.CharField(required=False, allow_blank=True, help_text="Default: the configured one.")


class ReportSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", default=None, read_only=True)
    version_label = serializers.CharField(source="version.version", default=None, read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    checkpoint = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "report_type",
            "model",
            "model_name",
            "version",
            "version_label",
            "period_from",
            "period_to",
            "status",
            "progress",
            "step",
            "error",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "sha256",
            "size",
            "page_count",
            "data_sha256",
            "signed",
            "signer_fingerprint",
            "checkpoint",
            "retention_class",
            "retain_until",
            "legal_hold",
            "legal_hold_reason",
            "download",
        ]
        read_only_fields = fields

    def get_checkpoint(self, report: Report) -> dict[str, Any] | None:
        if report.checkpoint is None:
            return None
        return {
            "id": report.checkpoint.pk,
            "tree_size": report.checkpoint.tree_size,
            "root_hash": report.checkpoint.root_hash,
            "key_id": report.checkpoint.key_id,
        }

    def get_download(self, report: Report) -> str | None:
        if report.status != "succeeded":
            return None
        request = self.context.get("request")
        path = f"/api/reports/{report.pk}/download"
        return request.build_absolute_uri(path) if request is not None else path
