from django.urls import path

from governance.api.monitoring_views import MonitoringBatchListView, MonitoringSamplesView

# <model> is the model's id or name, as in /api/deployments/<model>/...
urlpatterns = [
    path("<str:model>/samples", MonitoringSamplesView.as_view(), name="monitoring-samples"),
    path("<str:model>/batches", MonitoringBatchListView.as_view(), name="monitoring-batches"),
]
