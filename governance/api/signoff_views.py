"""Sign-off, findings and policy API: thin adapters over governance.selectors (reads) and
governance.services (writes). Status codes come from the one exception handler."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from governance import selectors, services
from governance.api import signoff_serializers as s
from governance.api.filtersets import FindingFilterSet, PolicyDecisionFilterSet, SignOffRequestFilterSet
from governance.errors import NotPermitted
from governance.models import PolicySet, SignOffResponse
from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion

_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused and nothing changed: 400 names the field; 403 a missing permission or a "
    "segregation-of-duties rule; 409 a conflict (state, policy denial with the decision and the rules' reasons).",
)
_NOT_FOUND = OpenApiResponse(description="Not found, or outside what the caller may see.")


def _visible_version(request: Request, pk: int) -> ModelVersion:
    """A version named in input, looked up through the caller's scope: 404 when not visible."""
    return get_object_or_404(registry_selectors.model_version_list(user=request.user), pk=pk)


class _ScopedViewSet(viewsets.GenericViewSet):
    """Reads start from a selector; writes validate an input serializer and call a service."""

    output_serializer_class: type[BaseSerializer]
    detail_serializer_class: type[BaseSerializer]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "list":
            return self.output_serializer_class
        return self.detail_serializer_class

    def _input(self, serializer_class: type[BaseSerializer], **kwargs: Any) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _output(self, instance: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
        found = self.get_queryset().filter(pk=instance.pk).first()
        if found is None:  # the services keep objects in the actor's scope; say so if one ever did not
            raise NotPermitted("the change was saved but left the object outside what you may see")
        return Response(self.detail_serializer_class(found, context=self.get_serializer_context()).data, status_code)


_RESPOND = {
    "request": s.CommentSerializer,
    "responses": {200: s.SignOffRequestDetailSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
}


@extend_schema_view(
    list=extend_schema(
        summary="List sign-off requests",
        description="Requests on versions the caller can see. `overdue=true`: open and past their due date.",
    ),
    retrieve=extend_schema(
        summary="One sign-off request, with every round's responses",
        responses={200: s.SignOffRequestDetailSerializer, 404: _NOT_FOUND},
    ),
)
class SignOffRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Sign-off requests: submit, list, read, approve, reject, request changes, withdraw, amend."""

    output_serializer_class = s.SignOffRequestOutputSerializer
    detail_serializer_class = s.SignOffRequestDetailSerializer
    filterset_class = SignOffRequestFilterSet
    search_fields = ["model__name", "version__version", "justification"]
    ordering_fields = ["submitted_at", "due_at", "expires_at", "status", "updated_at"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet:
        # The fingerprint (version_changed) reads the version's datasets: fetched with the rows.
        qs = selectors.signoff_request_list(user=self.request.user).select_related(
            "version__training_dataset", "version__validation_dataset", "version__test_dataset"
        )
        if self.action != "list":
            qs = qs.prefetch_related("responses")
        return qs

    @extend_schema(
        summary="Submit a sign-off request",
        description="A model owner asks for a version to move to `approved` or `deployed`. The policies in force "
        "are evaluated first: a denial is 409 `policy_denied` with the decision id and the rules' reasons.",
        request=s.SignOffSubmitSerializer,
        responses={201: s.SignOffRequestDetailSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
    )
    def create(self, request: Request) -> Response:
        data = self._input(s.SignOffSubmitSerializer)
        version = _visible_version(request, data.pop("version"))
        created = services.signoff_submit(actor=request.user, version=version, **data)
        return self._output(created, status_code=status.HTTP_201_CREATED)

    def _respond(self, verdict: str) -> Response:
        signoff = self.get_object()
        data = self._input(s.CommentSerializer)
        signoff = services.signoff_respond(
            actor=self.request.user, request=signoff, verdict=verdict, comment=data["comment"]
        )
        return self._output(signoff)

    @extend_schema(
        summary="Approve",
        description="The last approval the policies need re-evaluates them and makes the transition.",
        **_RESPOND,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(SignOffResponse.Verdict.APPROVE)

    @extend_schema(summary="Reject (closes the request)", **_RESPOND)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(SignOffResponse.Verdict.REJECT)

    @extend_schema(summary="Request changes (the requester amends)", **_RESPOND)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(SignOffResponse.Verdict.REQUEST_CHANGES)

    @extend_schema(
        summary="Withdraw an open request",
        request=s.ReasonInputSerializer,
        responses={200: s.SignOffRequestDetailSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        signoff = self.get_object()
        data = self._input(s.ReasonInputSerializer)
        return self._output(services.signoff_withdraw(actor=request.user, request=signoff, reason=data["reason"]))

    @extend_schema(
        summary="Amend after changes were requested (starts a new round)",
        request=s.SignOffAmendSerializer,
        responses={200: s.SignOffRequestDetailSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND, 409: _REFUSED},
    )
    @action(detail=True, methods=["post"])
    def amend(self, request: Request, pk: str | None = None) -> Response:
        signoff = self.get_object()
        data = self._input(s.SignOffAmendSerializer)
        return self._output(services.signoff_amend(actor=request.user, request=signoff, **data))


@extend_schema_view(
    list=extend_schema(summary="List findings", description="Findings on versions the caller can see."),
    retrieve=extend_schema(summary="One finding", responses={200: s.FindingOutputSerializer, 404: _NOT_FOUND}),
)
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _ScopedViewSet):
    """Validation findings: raise, list, read, move along."""

    output_serializer_class = s.FindingOutputSerializer
    detail_serializer_class = s.FindingOutputSerializer
    filterset_class = FindingFilterSet
    search_fields = ["title", "description", "model__name"]
    ordering_fields = ["raised_at", "due_date", "severity", "status"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet:
        return selectors.finding_list(user=self.request.user)

    @extend_schema(
        summary="Raise a finding",
        request=s.FindingRaiseSerializer,
        responses={201: s.FindingOutputSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND},
    )
    def create(self, request: Request) -> Response:
        data = self._input(s.FindingRaiseSerializer)
        version = _visible_version(request, data.pop("version"))
        finding = services.finding_raise(actor=request.user, version=version, **data)
        return self._output(finding, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a finding's status, due date, resolution or remediation owner",
        request=s.FindingUpdateSerializer,
        responses={200: s.FindingOutputSerializer, 400: _REFUSED, 403: _REFUSED, 404: _NOT_FOUND},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        finding = self.get_object()
        data = self._input(s.FindingUpdateSerializer, partial=True)
        reason = data.pop("reason", "")
        finding = services.finding_update(actor=request.user, finding=finding, changes=data, reason=reason)
        return self._output(finding)


class _CanViewPolicySets(BasePermission):
    message = "needs permission governance.view_policyset"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("governance.view_policyset"))


_FORBIDDEN = OpenApiResponse(description="Missing permission governance.view_policyset.")


@extend_schema_view(
    list=extend_schema(
        summary="List policy sets",
        description="Every set ever activated, latest first (files without their text).",
        responses={200: s.PolicySetOutputSerializer(many=True), 403: _FORBIDDEN},
    ),
    retrieve=extend_schema(
        summary="One policy set, with its files' text",
        responses={200: s.PolicySetDetailSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    ),
)
class PolicySetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Policy sets as activated (read-only)."""

    permission_classes = [IsAuthenticated, _CanViewPolicySets]
    ordering_fields = ["activated_at", "created_at"]
    filterset_fields = ["is_active"]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self) -> QuerySet:
        # Policy sets are organisation-wide: the permission is the whole scope.
        return PolicySet.objects.all()

    def get_serializer_class(self) -> type[BaseSerializer]:
        return s.PolicySetOutputSerializer if self.action == "list" else s.PolicySetDetailSerializer

    @extend_schema(
        summary="The policy set in force",
        responses={200: s.PolicySetDetailSerializer, 403: _FORBIDDEN, 404: OpenApiResponse(description="None yet.")},
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def active(self, request: Request) -> Response:
        policy_set = self.get_queryset().filter(is_active=True).first()
        if policy_set is None:
            raise NotFound("no policy set has been activated")
        return Response(s.PolicySetDetailSerializer(policy_set).data)


@extend_schema_view(
    list=extend_schema(summary="List policy decisions", description="Decisions on versions the caller can see."),
    retrieve=extend_schema(
        summary="One policy decision, with each rule's result and the input document",
        responses={200: s.PolicyDecisionDetailSerializer, 404: _NOT_FOUND},
    ),
)
class PolicyDecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Policy decisions (read-only, written once by the services)."""

    filterset_class = PolicyDecisionFilterSet
    ordering_fields = ["decided_at"]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self) -> QuerySet:
        qs = selectors.policy_decision_list(user=self.request.user)
        # The input document is the detail's; lists leave it in the database.
        return qs.defer("input_document") if self.action == "list" else qs

    def get_serializer_class(self) -> type[BaseSerializer]:
        return s.PolicyDecisionOutputSerializer if self.action == "list" else s.PolicyDecisionDetailSerializer
