from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView


def _home(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect("/admin/")


urlpatterns = [
    path("", _home),
    path("admin/", admin.site.urls),
    path("api/auth/", include("governance.api.urls")),
    path("api/audit/", include("audit.api.urls")),
    path("api/", include("models_registry.api.urls")),
    path("api/", include("governance.api.signoff_urls")),
    path("api/monitoring/", include("governance.api.monitoring_urls")),
    path("api/monitoring/", include("governance.api.alert_urls")),
    path("api/reports/", include("governance.api.report_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]
