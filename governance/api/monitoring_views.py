"""Monitoring API: the trading infrastructure pushes batches of live samples; readers list
the batches. Thin adapters over governance.monitoring_services and governance.selectors;
status codes come from the one exception handler."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import monitoring_services, selectors
from governance.api import monitoring_serializers as s
from governance.api.deployment_views import _is_id, _visible_model_id
from models_registry.models import Model

_MODEL = OpenApiParameter(
    "model",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The model's id, or its name (digits are read as an id first).",
)
_ERROR = OpenApiResponse(OpenApiTypes.OBJECT)


def _no_constant(name: str) -> Any:
    raise ParseError(f"JSON parse error - {name} is not a number JSON allows")


class ExactJSONParser(JSONParser):
    """JSON with its decimal numbers read as ``Decimal``, never as binary floats, so a P&L sent
    as a number is kept exactly; NaN and Infinity, which JSON does not have, are refused."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(stream.read().decode(encoding), parse_float=Decimal, parse_constant=_no_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def _not_found(ref: str) -> str:
    return f"no model {ref!r} that you can see"


def _model_named(ref: str) -> Model:
    """The model named by ``ref`` (id or name, as in the deployments API), scope unchecked."""
    found = Model.objects.filter(pk=int(ref)).first() if _is_id(ref) else None
    if found is None:
        found = Model.objects.filter(name=ref).first()
    if found is None:
        raise NotFound(_not_found(ref))
    return found


@extend_schema_view(
    post=extend_schema(
        summary="Push a batch of monitoring samples",
        description="The trading infrastructure reports what a deployed model did: per sample its timestamp, "
        "prediction, outcome, trade count and P&L (per trade or per period). Validated as a whole: any bad sample "
        "refuses the batch (400 naming the sample index and field) and nothing is stored. Idempotent by `batch_id`: "
        "the same batch again answers 200 with the stored result; the same id with other content is 409. 404: a "
        "model the caller cannot see, or one with no live deployment (`not_deployed`). 403: no "
        "governance.ingest_monitoring (model owners, the trading system role). One audit event per batch "
        "(`monitoring.batch_ingested`). docs/monitoring.md.",
        parameters=[_MODEL],
        request=s.MonitoringIngestSchema,
        responses={
            201: s.IngestResultSerializer,
            200: s.IngestResultSerializer,
            400: _ERROR,
            403: _ERROR,
            404: _ERROR,
            409: _ERROR,
        },
    )
)
class MonitoringSamplesView(APIView):
    parser_classes = [ExactJSONParser]
    permission_classes = [IsAuthenticated]

    def post(self, request: Request, model: str) -> Response:
        # The service checks the caller's scope (once: it is the costliest read of an ingest);
        # a model it may not see is answered exactly like one that does not exist.
        target = _model_named(model)
        body = request.data
        if not isinstance(body, dict):
            raise ParseError('the body must be a JSON object: {"batch_id": ..., "samples": [...]}')
        unknown = sorted(set(body) - {"batch_id", "samples"})
        if unknown:
            raise ValidationError({key: ["unknown field: the body has only batch_id and samples"] for key in unknown})
        try:
            result = monitoring_services.monitoring_ingest(
                actor=request.user, model=target, batch_id=body.get("batch_id"), samples=body.get("samples")
            )
        except monitoring_services.NotVisible:
            raise NotFound(_not_found(model)) from None
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@extend_schema_view(
    get=extend_schema(
        summary="Monitoring batches of a model",
        description="The batches received for the model, latest first (paginated). Needs governance.view_deployment "
        "and sight of the model (404 otherwise).",
        parameters=[_MODEL],
        responses={200: s.MonitoringBatchSerializer(many=True), 404: _ERROR},
    )
)
class MonitoringBatchListView(generics.ListAPIView):
    serializer_class = s.MonitoringBatchSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet:
        model_id = _visible_model_id(self.request, self.kwargs["model"])
        return selectors.monitoring_batch_list(user=self.request.user, model_id=model_id)
