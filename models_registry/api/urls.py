from rest_framework.routers import DefaultRouter

from models_registry.api.views import (
    AdjustmentViewSet,
    AssessmentViewSet,
    DatasetViewSet,
    ModelVersionViewSet,
    ModelViewSet,
)

router = DefaultRouter()
router.register("models", ModelViewSet, basename="model")
router.register("versions", ModelVersionViewSet, basename="modelversion")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("assessments", AssessmentViewSet, basename="riskassessment")
router.register("adjustments", AdjustmentViewSet, basename="postmodeladjustment")

urlpatterns = router.urls
