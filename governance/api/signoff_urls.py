from rest_framework.routers import SimpleRouter

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

urlpatterns = router.urls
