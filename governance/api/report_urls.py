from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view

from governance.api.report_views import ReportViewSet


@extend_schema_view(retrieve=extend_schema(exclude=True), download=extend_schema(exclude=True))
class _SlashReportViewSet(ReportViewSet):
    """The same answers with a trailing slash (documented once, without it)."""


_list = ReportViewSet.as_view({"get": "list", "post": "create"})
_detail = ReportViewSet.as_view({"get": "retrieve"})
_download = ReportViewSet.as_view({"get": "download"})

# /api/reports/, /api/reports/<id> and /api/reports/<id>/download (each also with a trailing slash).
urlpatterns = [
    path("", _list, name="report-list"),
    path("<int:pk>", _detail, name="report-detail"),
    path("<int:pk>/", _SlashReportViewSet.as_view({"get": "retrieve"})),
    path("<int:pk>/download", _download, name="report-download"),
    path("<int:pk>/download/", _SlashReportViewSet.as_view({"get": "download"})),
]
