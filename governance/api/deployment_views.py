"""Deployments API: thin adapters over governance.selectors (reads, the trading permission) and
governance.services (kill switch, lift, rollback). Status codes come from the one exception
handler.

Two ways to name things: ``/api/deployments/{id}/`` is one deployment (a row, live or past);
``/api/deployments/<model>/...`` is a model (its id or its name) and acts on, or answers for,
whatever is live for it now.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import permission_cache, selectors, services
from governance.api import deployment_serializers as s
from governance.models import Deployment
from models_registry import selectors as registry_selectors
from models_registry.models import Model

_NOT_FOUND = OpenApiResponse(description="No such model or deployment, or outside what the caller may see.")
_FORBIDDEN = OpenApiResponse(OpenApiTypes.OBJECT, description="Missing permission governance.view_deployment.")
_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused and nothing changed: 400 names the field (a reason is required); 403 a missing "
    "permission (engage_killswitch, lift_killswitch, rollback_deployment) or a system actor lifting; 409 a "
    "conflict (no live deployment, switch not engaged, no rollback target or one that cannot be deployed).",
)
_MODEL = OpenApiParameter(
    "model",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The model's id, or its name (digits are read as an id first).",
)


class _CanViewDeployments(BasePermission):
    message = "needs permission governance.view_deployment"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("governance.view_deployment"))


def _visible_models(request: Any) -> QuerySet[Model]:
    if request is None:  # schema generation
        return Model.objects.none()
    return registry_selectors.model_list(user=request.user)


def _is_id(ref: str) -> bool:
    # ASCII digits that fit a bigint; anything else is a name.
    return ref.isascii() and ref.isdigit() and len(ref) < 19


def _visible_model_id(request: Request, ref: str) -> int:
    """The id of the model named by ``ref`` (id or name) within the caller's scope; 404 otherwise
    (the same answer whether it does not exist or may not be seen)."""
    ids = registry_selectors.model_list(user=request.user).values_list("pk", flat=True)
    found = ids.filter(pk=int(ref)).first() if _is_id(ref) else None
    if found is None:
        found = ids.filter(name=ref).first()
    if found is None:
        raise NotFound(f"no model {ref!r} that you can see")
    return found


def _visible_model(request: Request, ref: str) -> Model:
    return Model.objects.get(pk=_visible_model_id(request, ref))


class DeploymentFilterSet(django_filters.FilterSet):
    model = django_filters.ModelChoiceFilter(queryset=_visible_models, help_text="A model id you can see.")
    status = django_filters.MultipleChoiceFilter(choices=Deployment.Status.choices)
    phase = django_filters.ChoiceFilter(choices=lambda: [(p, p) for p in settings.GOVERNANCE_DEPLOYMENT_PHASES])
    kill_switch_engaged = django_filters.BooleanFilter()

    class Meta:
        model = Deployment
        fields = ["model", "status", "phase", "kill_switch_engaged"]


@extend_schema_view(
    list=extend_schema(
        summary="List deployments",
        description="Deployments (live and past) of the models the caller can see, latest first; empty without "
        "governance.view_deployment.",
    ),
    retrieve=extend_schema(summary="One deployment", responses={200: s.DeploymentOutputSerializer, 404: _NOT_FOUND}),
)
class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments, read-only: they change through sign-offs, the kill switch and rollback."""

    serializer_class = s.DeploymentOutputSerializer
    filterset_class = DeploymentFilterSet
    search_fields = ["model__name", "version__version"]
    ordering_fields = ["started_at", "updated_at", "phase_started_at", "status", "phase"]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self) -> QuerySet:
        return selectors.deployment_list(user=self.request.user)


@extend_schema_view(
    get=extend_schema(
        summary="The trading permission of a model",
        description="What the trading infrastructure may do with the model now: `allowed`, and the live "
        "deployment's version, phase, capital limit, currency and instruments, with the reason. A cached read "
        "(GOVERNANCE_TRADING_PERMISSION_TTL), forgotten on every change to the model's deployment. Also served "
        "with a trailing slash.",
        parameters=[_MODEL],
        responses={200: s.TradingPermissionSerializer, 403: _FORBIDDEN, 404: _NOT_FOUND},
    )
)
class TradingPermissionView(APIView):
    """For an order path: a knox token the full path (authentication, view_deployment, the
    scope) has already allowed for this model reference is answered from the cache
    (governance.permission_cache) without DRF; anything else takes the full path, which
    remembers its yes."""

    permission_classes = [IsAuthenticated, _CanViewDeployments]
    # What DRF answers a JSON GET with; the fast path sends the same.
    _JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})
    _ALLOW = "GET, HEAD, OPTIONS"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        full = super().as_view(**initkwargs)

        def view(request: HttpRequest, model: str) -> HttpResponse:
            return cls._from_cache(request, model) or full(request, model=model)

        # What URL resolution, CSRF and drf-spectacular read off DRF's view.
        view.cls = full.cls  # type: ignore[attr-defined]
        view.initkwargs = full.initkwargs  # type: ignore[attr-defined]
        view.csrf_exempt = True  # type: ignore[attr-defined]
        view.__name__ = full.__name__
        view.__doc__ = full.__doc__
        return view

    @classmethod
    def _from_cache(cls, request: HttpRequest, model: str) -> HttpResponse | None:
        if (
            request.method != "GET"
            or request.META.get("QUERY_STRING")
            or request.META.get("HTTP_ACCEPT", "").strip() not in cls._JSON_ACCEPTS
        ):
            return None
        token = permission_cache.presented_token(request)
        found = permission_cache.remembered(token, model) if token else None
        if found is None:
            return None
        model_id, answer = found
        if answer is None:
            answer = selectors.trading_permission(model_id=model_id)
        body = JSONRenderer().render(answer)
        return HttpResponse(body, content_type="application/json", headers={"Vary": "Accept", "Allow": cls._ALLOW})

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Read before authentication: a decision is remembered under the generation that was
        # current before any row it depends on was read.
        self._generation = permission_cache.generation()
        super().initial(request, *args, **kwargs)

    def get(self, request: Request, model: str) -> Response:
        model_id = _visible_model_id(request, model)
        answer = selectors.trading_permission(model_id=model_id)
        token = permission_cache.presented_token(request)
        auth = request.auth
        if token and getattr(auth, "digest", None) is not None:  # a knox token, not a session
            permission_cache.remember(
                token=token,
                model_ref=model,
                model_id=model_id,
                user=request.user,
                expiry=auth.expiry,
                generation=self._generation,
            )
        return Response(answer)


@extend_schema_view(get=extend_schema(exclude=True))
class TradingPermissionSlashView(TradingPermissionView):
    """The same answer at ``.../permission/`` (documented once, without the slash)."""


class _DeploymentActionView(APIView):
    """POST {reason} -> one service, as the caller; answers with the deployment and the
    permission after it (the services forget the cached permission when they commit)."""

    permission_classes = [IsAuthenticated, _CanViewDeployments]
    service: Any = None
    input_serializer: Any = s.DeploymentReasonSerializer

    def post(self, request: Request, model: str) -> Response:
        target = _visible_model(request, model)
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = self.service(actor=request.user, model=target, **data.validated_data)
        # The service forgets the cached permission when it commits; forgetting it here too makes
        # the answer the state after the action even when a caller's transaction is still open.
        selectors.forget_trading_permission(target.pk)
        return Response(
            {
                "deployment": s.DeploymentOutputSerializer(deployment).data,
                "permission": selectors.trading_permission(model_id=target.pk),
            }
        )


def _action_schema(summary: str, description: str, request: Any = s.DeploymentReasonSerializer) -> Any:
    return extend_schema_view(
        post=extend_schema(
            summary=summary,
            description=description,
            parameters=[_MODEL],
            request=request,
            responses={
                200: s.DeploymentActionResultSerializer,
                400: _REFUSED,
                403: _REFUSED,
                404: _NOT_FOUND,
                409: _REFUSED,
            },
        )
    )


@_action_schema(
    "Pull the kill switch",
    "Stops the model trading at once: its live deployment and version are suspended and the permission answers "
    "not allowed. Needs governance.engage_killswitch (model owners, risk managers, compliance officers). Pulling "
    "an engaged switch again changes nothing. `drill: true` says it is pulled to test the switch (it stops the "
    "model all the same). An audit event (`kill_switch.engaged`).",
    request=s.KillSwitchEngageSerializer,
)
class KillSwitchEngageView(_DeploymentActionView):
    service = staticmethod(services.kill_switch_engage)
    input_serializer = s.KillSwitchEngageSerializer


@_action_schema(
    "Lift the kill switch",
    "A compliance officer (governance.lift_killswitch) lifts an engaged switch. The model stays suspended: it "
    "trades again only after a reinstatement sign-off (suspended -> deployed) or a rollback. Audited "
    "(`kill_switch.lifted`).",
)
class KillSwitchLiftView(_DeploymentActionView):
    service = staticmethod(services.kill_switch_lift)


@_action_schema(
    "Roll back to the rollback target",
    "Ends the live deployment as rolled back (its version suspended) and deploys the rollback target its sign-off "
    "approved, in the same phase with the same limits. Needs governance.rollback_deployment. Audited "
    "(`deployment.rolled_back`, `deployment.started`). The answer's deployment is the restored one.",
)
class DeploymentRollbackView(_DeploymentActionView):
    service = staticmethod(services.deployment_rollback)
