"""The access review in the admin: a read-only page at /admin/access-review/.

A custom admin URL rather than a model admin: the review is computed, not stored. The page
is open to oversight roles (``models_registry.oversee_model``) and superusers; other staff
get 403. Every rendering and every CSV download is an ``access.review_generated`` event.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone
from django.utils.http import urlencode

from governance import access_review

ROWS_PER_PAGE = 200


def may_review(user: Any) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("models_registry.oversee_model")))


def _table_rows(review: access_review.AccessReview) -> list[dict[str, Any]]:
    """One row per (user, object): reasons listed, a model's versions beside it, ended access after."""
    rows = []
    for user in review.users:
        head = {"user": user, "access": "current"}
        for item in user.reach:
            rows.append(
                {
                    **head,
                    "kind": item.kind,
                    "id": item.id,
                    "name": item.name,
                    "reasons": item.reasons,
                    "versions": item.versions,
                }
            )
        for ended in user.ended:
            for model_id, name in ended.models:
                rows.append(
                    {
                        **head,
                        "kind": "model",
                        "id": model_id,
                        "name": name,
                        "reasons": (ended.reason,),
                        "versions": (),
                        "access": ended.status,
                    }
                )
        if not user.reach and not user.ended:
            rows.append({**head, "kind": "", "id": None, "name": "", "reasons": (), "versions": (), "access": ""})
    return rows


def access_review_view(request: HttpRequest) -> HttpResponse:
    if not may_review(request.user):
        raise PermissionDenied
    username = request.GET.get("user") or None
    review = access_review.access_review(username=username)
    if request.GET.get("format") == "csv":
        access_review.access_review_record(actor=request.user, review=review, output="csv (admin)")
        out = io.StringIO()
        access_review.write_csv(review, out)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        suffix = f"-{username}" if username else ""
        response["Content-Disposition"] = f'attachment; filename="access-review{suffix}-{stamp}.csv"'
        return response
    access_review.access_review_record(actor=request.user, review=review, output="admin page")
    User = get_user_model()
    page = Paginator(_table_rows(review), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        **admin.site.each_context(request),
        "title": "Access review",
        "review": review,
        "counts": review.counts(),
        "page": page,
        "usernames": User.objects.order_by(User.USERNAME_FIELD).values_list(User.USERNAME_FIELD, flat=True),
        "selected": username or "",
        "filter_query": urlencode({"user": username}) if username else "",
    }
    return TemplateResponse(request, "admin/governance/access_review.html", context)


def _with_access_review(get_urls: Callable[[], list[URLPattern | URLResolver]]) -> Callable[[], list[Any]]:
    def urls() -> list[Any]:
        view = admin.site.admin_view(access_review_view)
        return [path("access-review/", view, name="access_review"), *get_urls()]

    return urls


# The URL hook: the default admin site keeps its own URLs and gains this page (first, so that
# no app-label pattern shadows it). Imported once, from governance/admin.py.
if not getattr(admin.site, "_access_review_installed", False):
    admin.site.get_urls = _with_access_review(admin.site.get_urls)  # type: ignore[method-assign]
    admin.site._access_review_installed = True  # type: ignore[attr-defined]
