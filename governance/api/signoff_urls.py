from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api.deployment_views import (
    DeploymentRollbackView,
    DeploymentViewSet,
    KillSwitchEngageView,
    KillSwitchLiftView,
    TradingPermissionSlashView,
    TradingPermissionView,
)
from governance.api.signoff_views import (
    FindingViewSet,
    PolicyDecisionViewSet,
    PolicySetViewSet,
    SignOffRequestViewSet,
)

# SimpleRouter: the inventory's DefaultRouter already serves the API root ("api-root").
router = SimpleRouter()
router.register("signoffs", SignOffRequestViewSet, basename="signoff")
router.register("findings", FindingViewSet, basename="finding")
router.register("policy-sets", PolicySetViewSet, basename="policyset")
router.register("policy-decisions", PolicyDecisionViewSet, basename="policydecision")
router.register("deployments", DeploymentViewSet, basename="deployment")

# By model (id or name): what is live for it now. "permission" is polled by order paths,
# with or without the trailing slash.
deployment_by_model = [
    path("deployments/<str:model>/permission", TradingPermissionView.as_view(), name="deployment-permission"),
    path("deployments/<str:model>/permission/", TradingPermissionSlashView.as_view()),
    path("deployments/<str:model>/kill-switch/", KillSwitchEngageView.as_view(), name="deployment-kill-switch"),
    path("deployments/<str:model>/lift-kill-switch/", KillSwitchLiftView.as_view(), name="deployment-lift-kill-switch"),
    path("deployments/<str:model>/rollback/", DeploymentRollbackView.as_view(), name="deployment-rollback"),
]

urlpatterns = router.urls + deployment_by_model
