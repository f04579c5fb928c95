"""Audit API: read-only adapters over audit.selectors. Nothing here writes; every view answers GET only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors
from audit.api import serializers as s
from audit.filtersets import EventFilterSet

_READ_ONLY = ["get", "head", "options"]

_BAD_PARAMETER = OpenApiResponse(
    OpenApiTypes.OBJECT, description="A parameter is missing, not an integer or out of range; the body names it."
)
_NOT_AUTHENTICATED = OpenApiResponse(OpenApiTypes.OBJECT, description="Not authenticated.")


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _proof(build: Callable[..., dict[str, object]], **params: Any) -> Response:
    try:
        return Response(build(**params))
    except selectors.ProofRequestError as exc:
        # Out of range for the log as it is now: the same refusal as the command's, named by parameter.
        raise serializers.ValidationError({exc.parameter: [str(exc)]}) from exc


@extend_schema_view(
    list=extend_schema(
        summary="List audit events",
        description="Events the caller may see, oldest first (auditors: all; others: events about the models, "
        "versions and datasets they can see, and their own actions).",
        responses={200: s.EventSerializer(many=True), 401: _NOT_AUTHENTICATED},
    ),
    retrieve=extend_schema(
        summary="One audit event",
        description="404 when the event does not exist or is outside the caller's scope.",
        responses={200: s.EventSerializer, 401: _NOT_AUTHENTICATED, 404: OpenApiResponse(description="Not found.")},
    ),
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The audit log, read-only and scoped to the caller."""

    serializer_class = s.EventSerializer
    filterset_class = EventFilterSet
    search_fields = ["object_repr", "actor_label", "reason"]
    ordering_fields = ["seq", "timestamp"]
    ordering = ["seq"]
    lookup_field = "seq"
    lookup_value_regex = r"[0-9]+"
    http_method_names = _READ_ONLY

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.event_list(user=self.request.user)


class LatestCheckpointView(APIView):
    http_method_names = _READ_ONLY

    @extend_schema(
        summary="Latest signed checkpoint",
        description="The latest signed tree head, with the message that was signed and the Ed25519 public key "
        "that checks it. 404 if no checkpoint has been made.",
        responses={200: s.CheckpointSerializer, 401: _NOT_AUTHENTICATED, 404: OpenApiResponse(description="None.")},
    )
    def get(self, request: Request) -> Response:
        document = selectors.checkpoint_latest_published()
        if document is None:
            raise NotFound("no checkpoint has been made yet")
        return Response(document)


class InclusionProofView(APIView):
    http_method_names = _READ_ONLY

    @extend_schema(
        summary="Inclusion proof",
        description="RFC 9162 proof that event `seq` is in the tree of `tree_size` events (default: the whole "
        "log); the same JSON as `manage.py audit_proof inclusion`. Callers without `audit.view_event` get 404 "
        "for a seq outside their scope.",
        parameters=[
            OpenApiParameter("seq", int, required=True, description="The event's sequence number."),
            OpenApiParameter("tree_size", int, required=False, description="Tree size (default: the whole log)."),
        ],
        responses={
            200: s.InclusionProofSerializer,
            400: _BAD_PARAMETER,
            401: _NOT_AUTHENTICATED,
            404: OpenApiResponse(description="The event is outside the caller's scope."),
        },
    )
    def get(self, request: Request) -> Response:
        params = _query(s.InclusionQuerySerializer, request)
        if not selectors.may_prove_inclusion(user=request.user, seq=params["seq"]):
            raise NotFound()
        return _proof(selectors.inclusion_proof, **params)


class ConsistencyProofView(APIView):
    http_method_names = _READ_ONLY

    @extend_schema(
        summary="Consistency proof",
        description="RFC 9162 proof that the log at size `first` is a prefix of the log at size `second`; the "
        "same JSON as `manage.py audit_proof consistency`. It reveals only tree hashes, so any authenticated "
        "user may ask (a checkpoint recipient needs it to link two checkpoints).",
        parameters=[
            OpenApiParameter("first", int, required=True, description="The smaller tree size (>= 1)."),
            OpenApiParameter("second", int, required=True, description="The larger tree size (<= the log's size)."),
        ],
        responses={200: s.ConsistencyProofSerializer, 400: _BAD_PARAMETER, 401: _NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        params = _query(s.ConsistencyQuerySerializer, request)
        return _proof(selectors.consistency_proof, **params)
