from django.urls import path
from rest_framework.routers import SimpleRouter

from audit.api.views import ConsistencyProofView, EventViewSet, InclusionProofView, LatestCheckpointView

# SimpleRouter: the inventory's DefaultRouter already serves the API root ("api-root").
router = SimpleRouter()
router.register("events", EventViewSet, basename="auditevent")

urlpatterns = [
    *router.urls,
    path("checkpoints/latest/", LatestCheckpointView.as_view(), name="audit-checkpoint-latest"),
    path("proofs/inclusion/", InclusionProofView.as_view(), name="audit-proof-inclusion"),
    path("proofs/consistency/", ConsistencyProofView.as_view(), name="audit-proof-consistency"),
]
