"""Inventory API: thin adapters over selectors (reads) and services (writes)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from governance import selectors as governance_selectors
from governance.errors import NotPermitted, PayloadTooLarge
from models_registry import selectors, services
from models_registry.api import serializers as s
from models_registry.filtersets import AssessmentFilterSet, DatasetFilterSet, ModelFilterSet, ModelVersionFilterSet

_DATASET_FIELDS = ("training_dataset", "validation_dataset", "test_dataset")


def _read_upload(upload: Any, *, limit: int, what: str) -> bytes:
    # Refuse before reading an oversized upload into memory.
    if upload.size > limit:
        raise PayloadTooLarge(f"the {what} is {upload.size:,} bytes; the limit is {limit:,} bytes")
    return upload.read()


class _ScopedViewSet(viewsets.GenericViewSet):
    """Reads start from a selector; writes validate with an input serializer and call a service."""

    output_serializer_class: type[BaseSerializer]
    create_serializer_class: type[BaseSerializer]
    update_serializer_class: type[BaseSerializer]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "create":
            return self.create_serializer_class
        if self.action == "partial_update":
            return self.update_serializer_class
        return self.output_serializer_class

    def _input(self, serializer_class: type[BaseSerializer], **kwargs: Any) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        self.restrict_related(serializer)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def restrict_related(self, serializer: BaseSerializer) -> None:
        """Related objects named in input must be visible to the caller, else 'does not exist'."""

    def _output(self, instance: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
        # The services refuse, inside their transaction, any write that would leave the object
        # out of the actor's scope, so it is always found here; should a service ever miss that,
        # say so plainly instead of answering 500 with a DoesNotExist.
        found = self.get_queryset().filter(pk=instance.pk).first()
        if found is None:
            raise NotPermitted(
                "the change was saved but left the object outside what you may see; ask an administrator"
            )
        return Response(
            self.output_serializer_class(found, context=self.get_serializer_context()).data, status=status_code
        )


class ModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Models in the inventory: register, list, retrieve, change."""

    output_serializer_class = s.ModelOutputSerializer
    create_serializer_class = s.ModelCreateSerializer
    update_serializer_class = s.ModelUpdateSerializer
    filterset_class = ModelFilterSet
    search_fields = ["name", "description", "objectives"]
    ordering_fields = ["name", "risk_tier", "materiality", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        user = self.request.user
        # Upstream models named only when the caller may see them (one query for the page).
        visible_upstream = Prefetch(
            "upstream_models", queryset=selectors.model_list(user=user).order_by("name"), to_attr="visible_upstream"
        )
        return selectors.model_list(user=user).prefetch_related(visible_upstream)

    def restrict_related(self, serializer: BaseSerializer) -> None:
        if "upstream_models" in serializer.fields:
            serializer.fields["upstream_models"].child_relation.queryset = selectors.model_list(user=self.request.user)

    @extend_schema(request=s.ModelCreateSerializer, responses={201: s.ModelOutputSerializer})
    def create(self, request: Request) -> Response:
        data = self._input(s.ModelCreateSerializer)
        data.setdefault("owner", request.user)
        model = services.model_create(actor=request.user, **data)
        return self._output(model, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=s.ModelUpdateSerializer, responses={200: s.ModelOutputSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        model = self.get_object()
        data = self._input(s.ModelUpdateSerializer, partial=True)
        reason = data.pop("reason", "")
        model = services.model_update(actor=request.user, model=model, changes=data, reason=reason)
        return self._output(model)


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Governed datasets: register (CSV upload with rules), list, retrieve, change, validate."""

    output_serializer_class = s.DatasetOutputSerializer
    create_serializer_class = s.DatasetCreateSerializer
    update_serializer_class = s.DatasetUpdateSerializer
    filterset_class = DatasetFilterSet
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "row_count"]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.dataset_list(user=self.request.user)

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetOutputSerializer})
    def create(self, request: Request) -> Response:
        data = self._input(s.DatasetCreateSerializer)
        upload = data.pop("file")
        data.setdefault("owner", request.user)
        content = _read_upload(upload, limit=settings.GOVERNANCE_MAX_DATASET_BYTES, what="dataset")
        dataset = services.dataset_register(actor=request.user, content=content, **data)
        return self._output(dataset, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetUpdateSerializer, responses={200: s.DatasetOutputSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        dataset = self.get_object()
        data = self._input(s.DatasetUpdateSerializer, partial=True)
        reason = data.pop("reason", "")
        dataset = services.dataset_update(actor=request.user, dataset=dataset, changes=data, reason=reason)
        return self._output(dataset)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        # Logged before the scope check, so that a denied attempt is recorded too (then 404).
        services.dataset_access_log(actor=request.user, dataset_id=pk, kind="read")
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The dataset's CSV file, checked against its SHA-256 (reads of confidential and
        restricted data are audit events)."""
        dataset = self._visible_or_log_denial(pk)
        content = services.dataset_content(actor=request.user, dataset=dataset)
        response = HttpResponse(content, content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{dataset.name}.csv"'
        response["X-Content-SHA256"] = dataset.content_sha256
        return response

    def _visible_or_log_denial(self, pk: str | None) -> Any:
        try:
            return self.get_object()
        except Http404:
            services.dataset_access_log(actor=self.request.user, dataset_id=pk, kind="download")
            raise

    @extend_schema(request=None, responses={200: s.DatasetOutputSerializer})
    @action(detail=True, methods=["post"])
    def validate(self, request: Request, pk: str | None = None) -> Response:
        """Run the dataset's declared cleansing and validation rules now."""
        dataset = services.dataset_validate(actor=request.user, dataset=self.get_object())
        return self._output(dataset)


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Model versions: upload a skops artifact, list, retrieve, change metadata, move through the lifecycle."""

    output_serializer_class = s.ModelVersionOutputSerializer
    create_serializer_class = s.ModelVersionCreateSerializer
    update_serializer_class = s.ModelVersionUpdateSerializer
    filterset_class = ModelVersionFilterSet
    ordering_fields = ["created_at", "version"]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.model_version_list(user=self.request.user)

    def restrict_related(self, serializer: BaseSerializer) -> None:
        visible = selectors.dataset_list(user=self.request.user)
        for name in _DATASET_FIELDS:
            if name in serializer.fields:  # TransitionSerializer names no datasets
                serializer.fields[name].queryset = visible
        if "model" in serializer.fields:
            serializer.fields["model"].queryset = selectors.model_list(user=self.request.user)

    @extend_schema(request=s.ModelVersionCreateSerializer, responses={201: s.ModelVersionOutputSerializer})
    def create(self, request: Request) -> Response:
        data = self._input(s.ModelVersionCreateSerializer)
        upload = data.pop("artifact")
        content = _read_upload(upload, limit=settings.GOVERNANCE_MAX_ARTIFACT_BYTES, what="artifact")
        version = services.model_version_create(actor=request.user, artifact=content, **data)
        return self._output(version, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=s.ModelVersionUpdateSerializer, responses={200: s.ModelVersionOutputSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()
        data = self._input(s.ModelVersionUpdateSerializer, partial=True)
        reason = data.pop("reason", "")
        version = services.model_version_update(actor=request.user, version=version, changes=data, reason=reason)
        return self._output(version)

    @extend_schema(request=s.TransitionSerializer, responses={200: s.ModelVersionOutputSerializer})
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move the version to another lifecycle status; 409 lists the allowed ones if not allowed."""
        version = self.get_object()
        data = self._input(s.TransitionSerializer)
        version = services.model_version_transition(
            actor=request.user, version=version, to_status=data["to"], reason=data["reason"]
        )
        return self._output(version)


_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused and nothing changed: 400 names the field (unknown kind or parameter, a bad value, "
    "a version not ready to assess or not visible); 403 a missing permission; 409 a conflict.",
)
_NOT_FOUND = OpenApiResponse(description="Not found, or outside what the caller may see.")
_UNAVAILABLE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The job queue could not be reached: the assessment was not started (it is stored failed, "
    "broker_unavailable, so nothing stays queued). Try again later.",
)
# Large JSON a list never shows.
_DETAIL_ONLY = ("results", "overfitting", "explainability", "parameters", "inputs", "environment", "error")


@extend_schema_view(
    list=extend_schema(
        summary="List risk assessments",
        description="Assessments of the versions the caller can see (needs view_riskassessment), newest first. "
        "`rating=none`: not rated.",
    ),
    retrieve=extend_schema(
        summary="One risk assessment: progress, metrics, results, rating and the findings it raised",
        responses={200: s.AssessmentDetailSerializer, 404: _NOT_FOUND},
    ),
)
class AssessmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Risk assessments (issue 7): request, follow, read, cancel."""

    output_serializer_class = s.AssessmentDetailSerializer
    create_serializer_class = s.AssessmentRequestSerializer
    filterset_class = AssessmentFilterSet
    search_fields = ["model__name", "version__version"]
    ordering_fields = ["queued_at", "finished_at", "status", "rating"]
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "list":
            return s.AssessmentOutputSerializer
        if self.action == "cancel":
            return s.AssessmentCancelSerializer
        return super().get_serializer_class()

    def get_queryset(self) -> QuerySet:
        qs = selectors.assessment_list(user=self.request.user)
        if self.action == "list":
            return qs.defer(*_DETAIL_ONLY)
        visible = governance_selectors.finding_list(user=self.request.user).order_by("pk")
        return qs.prefetch_related(Prefetch("findings", queryset=visible, to_attr="visible_findings"))

    def restrict_related(self, serializer: BaseSerializer) -> None:
        if "version" in serializer.fields:
            serializer.fields["version"].queryset = selectors.model_version_list(user=self.request.user)

    @extend_schema(
        summary="Request a risk assessment",
        description="Queues the job. The same version, kind and parameters (defaults filled in) as a queued, "
        "running or succeeded assessment give that one back with 200 instead of a new one (201). Without a "
        "broker (eager mode) the job has run by the time this answers.",
        request=s.AssessmentRequestSerializer,
        responses={
            201: s.AssessmentDetailSerializer,
            200: s.AssessmentDetailSerializer,
            400: _REFUSED,
            403: _REFUSED,
            503: _UNAVAILABLE,
        },
    )
    def create(self, request: Request) -> Response:
        data = self._input(s.AssessmentRequestSerializer)
        assessment, created = services.assessment_request(
            actor=request.user, version=data["version"], kind=data["kind"], parameters=data["parameters"]
        )
        return self._output(assessment, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Cancel a risk assessment",
        description="A queued assessment ends cancelled at once; a running one is asked to stop and ends "
        "cancelled at its next step (cancel_requested). A finished one cannot be cancelled (409).",
        request=s.AssessmentCancelSerializer,
        responses={200: s.AssessmentDetailSerializer, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        assessment = self.get_object()
        data = self._input(s.AssessmentCancelSerializer)
        assessment = services.assessment_cancel(actor=request.user, assessment=assessment, reason=data["reason"])
        return self._output(assessment)


@extend_schema_view(
    list=extend_schema(
        summary="List post-model adjustments",
        description="Adjustments on versions the caller can see (as findings are scoped); status as at now.",
    ),
    retrieve=extend_schema(summary="One post-model adjustment", responses={200: s.AdjustmentOutputSerializer}),
)
class AdjustmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """The post-model adjustment register: record (compliance officers), list, read, withdraw."""

    output_serializer_class = s.AdjustmentOutputSerializer
    create_serializer_class = s.AdjustmentCreateSerializer
    update_serializer_class = s.AdjustmentWithdrawSerializer
    filterset_fields = ["model", "version"]
    ordering_fields = ["effective_from", "created_at"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet:
        return selectors.adjustment_list(user=self.request.user)

    @extend_schema(request=s.AdjustmentCreateSerializer, responses={201: s.AdjustmentOutputSerializer})
    def create(self, request: Request) -> Response:
        data = self._input(s.AdjustmentCreateSerializer)
        version = selectors.model_version_list(user=request.user).filter(pk=data.pop("version")).first()
        if version is None:
            raise Http404("No such version.")
        adjustment = services.adjustment_create(actor=request.user, version=version, **data)
        return self._output(adjustment, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=s.AdjustmentWithdrawSerializer, responses={200: s.AdjustmentOutputSerializer})
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        data = self._input(s.AdjustmentWithdrawSerializer)
        adjustment = services.adjustment_withdraw(actor=request.user, adjustment=self.get_object(), **data)
        return self._output(adjustment)
