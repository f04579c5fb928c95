from rest_framework.routers import DefaultRouter

from models_registry.api.views import DatasetViewSet, ModelVersionViewSet, ModelViewSet

router = DefaultRouter()
router.register("models", ModelViewSet, basename="model")
router.register("versions", ModelVersionViewSet, basename="modelversion")
router.register("datasets", DatasetViewSet, basename="dataset")

urlpatterns = router.urls
