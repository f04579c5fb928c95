from django.urls import path

from governance.api.report_views import ReportViewSet

_list = ReportViewSet.as_view({"get": "list", "post": "create"})
_detail = ReportViewSet.as_view({"get": "retrieve"})
_download = ReportViewSet.as_view({"get": "download"})

# /api/reports/, /api/reports/<id> and /api/reports/<id>/download (each also with a trailing slash).
urlpatterns = [
    path("", _list, name="report-list"),
    path("<int:pk>", _detail, name="report-detail"),
    path("<int:pk>/", _detail),
    path("<int:pk>/download", _download, name="report-download"),
    path("<int:pk>/download/", _download),
]
