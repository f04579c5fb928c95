from django.urls import path

from governance.api.alert_views import (
    MonitoringAlertAcknowledgeView,
    MonitoringAlertListView,
    MonitoringAlertResolveView,
)

# Under /api/monitoring/; <model> is the model's id or name, as in /api/deployments/<model>/...
urlpatterns = [
    path("<str:model>/alerts", MonitoringAlertListView.as_view(), name="monitoring-alerts"),
    path(
        "<str:model>/alerts/<int:alert_id>/acknowledge",
        MonitoringAlertAcknowledgeView.as_view(),
        name="monitoring-alert-acknowledge",
    ),
    path(
        "<str:model>/alerts/<int:alert_id>/resolve",
        MonitoringAlertResolveView.as_view(),
        name="monitoring-alert-resolve",
    ),
]
