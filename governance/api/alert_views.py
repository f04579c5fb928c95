"""Monitoring alerts API: the alerts of a model (anomaly rules that fired) and the acknowledge
and resolve actions. Thin adapters over governance.selectors and governance.anomaly_services;
scoped like deployments (a model the caller cannot see is 404); status codes come from the one
exception handler."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import anomaly_services, selectors
from governance.api import alert_serializers as s
from governance.api.deployment_views import _visible_model_id
from governance.models import MonitoringAlert

_MODEL = OpenApiParameter(
    "model",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The model's id, or its name (digits are read as an id first).",
)
_STATUS = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    many=True,
    enum=MonitoringAlert.Status.values,
    description="Only alerts in these statuses (repeatable).",
)
_NOT_FOUND = OpenApiResponse(description="No such model or alert, or outside what the caller may see.")
_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused and nothing changed: 400 names the field (a resolution is required); 403 a missing "
    "permission (acknowledge_monitoringalert, resolve_monitoringalert); 409 an alert not open (acknowledge) or "
    "already resolved.",
)


class _CanViewAlerts(BasePermission):
    message = "needs permission governance.view_monitoringalert"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("governance.view_monitoringalert"))


def _visible_alert(request: Request, model: str, alert_id: int) -> MonitoringAlert:
    model_id = _visible_model_id(request, model)
    alert = selectors.monitoring_alert_list(user=request.user, model_id=model_id).filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"no alert {alert_id} of model {model!r} that you can see")
    return alert


@extend_schema_view(
    get=extend_schema(
        summary="Monitoring alerts of a model",
        description="The anomaly rules that fired on the model's deployments (docs/monitoring.md), open ones "
        "first, then acknowledged, then resolved, each latest first. Needs governance.view_monitoringalert.",
        parameters=[_MODEL, _STATUS],
        responses={200: s.MonitoringAlertSerializer(many=True), 403: _REFUSED, 404: _NOT_FOUND},
    )
)
class MonitoringAlertListView(generics.ListAPIView):
    serializer_class = s.MonitoringAlertSerializer
    permission_classes = [IsAuthenticated, _CanViewAlerts]
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return MonitoringAlert.objects.none()
        model_id = _visible_model_id(self.request, self.kwargs["model"])
        qs = selectors.monitoring_alert_list(user=self.request.user, model_id=model_id)
        statuses = self.request.query_params.getlist("status")
        unknown = sorted(set(statuses) - set(MonitoringAlert.Status.values))
        if unknown:
            raise ValidationError(
                {"status": [f"unknown status {', '.join(unknown)}; statuses are {', '.join(MonitoringAlert.Status)}"]}
            )
        return qs.filter(status__in=statuses) if statuses else qs


class _AlertActionView(APIView):
    permission_classes = [IsAuthenticated, _CanViewAlerts]
    input_serializer: Any = None

    def act(self, request: Request, alert: MonitoringAlert, data: dict[str, Any]) -> MonitoringAlert:
        raise NotImplementedError

    def post(self, request: Request, model: str, alert_id: int) -> Response:
        alert = _visible_alert(request, model, alert_id)
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = self.act(request, alert, data.validated_data)
        return Response(s.MonitoringAlertSerializer(alert).data)


def _action_schema(summary: str, description: str, request: Any) -> Any:
    return extend_schema_view(
        post=extend_schema(
            summary=summary,
            description=description,
            parameters=[_MODEL],
            request=request,
            responses={200: s.MonitoringAlertSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
        )
    )


@_action_schema(
    "Acknowledge an alert",
    "A risk manager or compliance officer (governance.acknowledge_monitoringalert) takes an open alert in hand, "
    "with an optional comment. Audited (`monitoring.alert_acknowledged`).",
    s.AlertAcknowledgeSerializer,
)
class MonitoringAlertAcknowledgeView(_AlertActionView):
    input_serializer = s.AlertAcknowledgeSerializer

    def act(self, request: Request, alert: MonitoringAlert, data: dict[str, Any]) -> MonitoringAlert:
        return anomaly_services.monitoring_alert_acknowledge(actor=request.user, alert=alert, comment=data["comment"])


@_action_schema(
    "Resolve an alert",
    "A risk manager or compliance officer (governance.resolve_monitoringalert) closes an open or acknowledged "
    "alert with its resolution; the rule's detectors then restart after the alert's window. Audited "
    "(`monitoring.alert_resolved`).",
    s.AlertResolveSerializer,
)
class MonitoringAlertResolveView(_AlertActionView):
    input_serializer = s.AlertResolveSerializer

    def act(self, request: Request, alert: MonitoringAlert, data: dict[str, Any]) -> MonitoringAlert:
        return anomaly_services.monitoring_alert_resolve(
            actor=request.user, alert=alert, resolution=data["resolution"], false_alarm=data["false_alarm"]
        )
