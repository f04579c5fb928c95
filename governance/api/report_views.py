"""Reports API (docs/reports.md): thin adapters over governance.report_services and
governance.selectors.report_list. A report outside the caller's sight is a 404, whether or not
it exists; a regulator sees only issued reports on models an engagement shares with them now."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from governance import report_services, selectors
from governance.api import report_serializers as s
from governance.models import Report

_NOT_FOUND = OpenApiResponse(description="No such report, or outside what the caller may see.")
_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused and nothing stored: 400 names the field (unknown type, missing or unexpected subject, "
    "bad or reversed period, unknown retention class); 403 a missing permission (governance.request_report, or "
    "audit.view_event for the audit trail); 404 a subject the caller cannot see; 503 the job queue is down.",
)


@extend_schema_view(
    list=extend_schema(summary="List reports", description="Reports the caller may see, latest first."),
    retrieve=extend_schema(summary="A report's status", responses={200: s.ReportSerializer, 404: _NOT_FOUND}),
    create=extend_schema(
        summary="Request a report",
        description="Queues the report's generation job (a Celery task) and answers 202 with its status; poll "
        "`/api/reports/{id}` for progress. An audit event (`report.requested`).",
        request=s.ReportRequestSerializer,
        responses={202: s.ReportSerializer, 400: _REFUSED, 403: _REFUSED, 404: _REFUSED, 503: _REFUSED},
    ),
)
class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ReportSerializer
    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        return selectors.report_list(user=self.request.user)

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = s.ReportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        report = report_services.report_request(
            actor=request.user,
            report_type=values["report_type"],
            model_id=values.get("model"),
            version_id=values.get("version"),
            period_from=values.get("period_from"),
            period_to=values.get("period_to"),
            retention_class=values.get("retention_class") or None,
        )
        report = selectors.report_list(user=request.user).get(pk=report.pk)
        body = s.ReportSerializer(report, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/reports/{report.pk}"})

    @extend_schema(
        summary="Download the PDF",
        description="The issued PDF/A-3b file, checked against its recorded SHA-256 before it is served (409 if "
        "the report is not issued or the stored file was altered).",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: _NOT_FOUND, 409: _REFUSED},
    )
    @action(detail=True, methods=["get"], url_path="download")
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        report = self.get_object()
        content = report_services.report_file(report=report)
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="report-{report.pk}-{report.report_type}.pdf"'
        response["X-Content-SHA256"] = report.sha256
        return response
