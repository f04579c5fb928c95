"""Read-only admin for the audit log and its checkpoints, with the last verification result on show.

Nobody adds, changes or deletes events or checkpoints here, not even a superuser: the log
is written only by ``audit.services``. Pages must stay cheap on a large log, so links are
built from ``object_type``/``object_id`` with ``reverse()`` (plus one existence query per
object type on the page), filters that would scan the table for their choices take typed
input instead, and the verification shown is the last recorded run (``audit.status``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit import links, selectors, status
from audit.models import Checkpoint, Event
from audit.snapshot import diff


class _TextInputFilter(admin.SimpleListFilter):
    """A filter typed into a box, for columns with too many values to list."""

    template = "admin/audit/input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: ChangeList) -> Any:
        # One "choice" carrying what the form needs: the value, and the other filters to keep.
        kept = QueryDict(changelist.get_query_string(remove=[self.parameter_name, PAGE_VAR]).lstrip("?"))
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "keep": [(name, value) for name, values in kept.lists() for value in values],
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name, PAGE_VAR]),
        }


class ActorFilter(_TextInputFilter):
    title = "actor"
    parameter_name = "actor"
    placeholder = "username, system:…, or user id"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        value = (self.value() or "").strip()
        return queryset.filter(selectors.actor_condition(value)) if value else queryset


class ObjectIdFilter(_TextInputFilter):
    title = "object id"
    parameter_name = "object_id"
    placeholder = "primary key"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> QuerySet[Event]:
        value = (self.value() or "").strip()
        return queryset.filter(object_id=value) if value else queryset


class _EventChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Resolve every row's object link for the whole page at once (no query per row).
        self.result_list = list(self.result_list)
        resolve = _object_admin_urls(self.model_admin.admin_site, request, self.result_list)
        for event in self.result_list:
            event.admin_object_url = resolve.get((event.object_type, event.object_id))


def _object_admin_urls(site: admin.AdminSite, request: HttpRequest, events: list[Event]) -> dict[tuple[str, str], str]:
    """Admin change-page paths of the events' objects that still exist and the user may open."""
    pairs = {(e.object_type, e.object_id) for e in events if e.object_id}
    models = {
        object_type: model
        for object_type, model in links.admin_models(site, {t for t, _ in pairs}).items()
        if site.get_model_admin(model).has_view_or_change_permission(request)
    }
    urls = {}
    for object_type, object_id in selectors.existing_object_ids(pairs, models):
        url = links.admin_change_path(site, models[object_type], object_id)
        if url is not None:
            urls[(object_type, object_id)] = url
    return urls


def pretty_json(value: Any) -> SafeString:
    """A JSON value as indented text in the admin (every app's admin uses this one)."""
    if value is None:
        return format_html("<em>{}</em>", "none")
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    )


def _status_banner(request: HttpRequest, model_admin: EventAdmin) -> dict[str, Any]:
    last = status.last_verification()
    can_verify = model_admin.has_view_permission(request)
    verify_url = reverse(f"{model_admin.admin_site.name}:audit_event_verify")
    if last is None:
        return {
            "level": "warning",
            "text": "Not verified yet: no verification run has been recorded (python manage.py audit_verify, "
            "or Verify now).",
            "problems": [],
            "can_verify": can_verify,
            "verify_url": verify_url,
        }
    text = last.summary()
    if last.ok:
        appended = selectors.log_size() - last.size
        if appended > 0:
            text += f" ({appended} event{'s' if appended != 1 else ''} appended since, not yet verified)"
    level = "success" if last.ok else ("error" if last.first_bad_seq is not None or last.error else "warning")
    return {
        "level": level,
        "text": text,
        "problems": last.problems if last.first_bad_seq is not None else [],
        "can_verify": can_verify,
        "verify_url": verify_url,
    }


class _ReadOnlyAdmin(admin.ModelAdmin):
    """The log is written only by audit.services: no add, change or delete here, whoever asks."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(_ReadOnlyAdmin):
    change_list_template = "admin/audit/event/change_list.html"
    list_display = ["seq", "timestamp", "actor_label", "action", "object_type", "history_link", "object_link"]
    list_display_links = ["seq"]
    # Actor and object id take typed input: listing their distinct values would scan the whole log.
    list_filter = [
        ActorFilter,
        "action",
        "object_type",
        ObjectIdFilter,
        ("timestamp", admin.DateFieldListFilter),
    ]
    search_fields = ["object_id", "object_repr", "actor_label", "reason", "request_id"]
    date_hierarchy = "timestamp"
    # Counting the unfiltered log again and facet counts per filter cost full scans on a big log.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fieldsets = [
        (None, {"fields": ["seq", "timestamp", "actor", "actor_label", "action", "reason"]}),
        ("Object", {"fields": ["object_type", "object_id", "object_repr", "object_link", "history_link"]}),
        ("Change", {"fields": ["diff_display", "before_display", "after_display"]}),
        ("Context", {"fields": ["request_id", "client_address", "policy_set_hash"]}),
        ("Integrity", {"fields": ["leaf_hash", "prev_hash", "entry_hash", "proof_link"]}),
    ]
    readonly_fields = [
        *(f.name for f in Event._meta.fields if f.name not in ("before", "after", "canonical")),
        "object_link",
        "history_link",
        "diff_display",
        "before_display",
        "after_display",
        "proof_link",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return selectors.event_list(user=request.user)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _EventChangeList

    def get_urls(self) -> list[URLPattern]:
        verify = path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_event_verify")
        return [verify, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # Added after the changelist decided whether to render, so a redirect costs nothing extra.
        if isinstance(response, TemplateResponse) and self.has_view_permission(request):
            response.context_data["audit_status"] = _status_banner(request, self)
        return response

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Run a full verification now and record it (slow on a large log; that is why it is a button)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:index"))
        result = status.run_verification()
        self.message_user(request, result.summary(), level=messages.SUCCESS if result.ok else messages.ERROR)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:audit_event_changelist"))

    @admin.display(description="object")
    def object_link(self, obj: Event) -> str:
        # Set for the whole page by _EventChangeList, or by get_object on the change view.
        url = getattr(obj, "admin_object_url", None)
        label = obj.object_repr or obj.object_id or "-"
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description="object id")
    def history_link(self, obj: Event) -> str:
        if not obj.object_id:
            return "-"
        changelist = reverse(f"{self.admin_site.name}:audit_event_changelist")
        query = QueryDict(mutable=True)
        query.update({"object_type": obj.object_type, "object_id": obj.object_id})
        return format_html(
            '<a href="{}?{}" title="All events about this object">{}</a>', changelist, query.urlencode(), obj.object_id
        )

    @admin.display(description="before")
    def before_display(self, obj: Event) -> SafeString:
        return pretty_json(obj.before)

    @admin.display(description="after")
    def after_display(self, obj: Event) -> SafeString:
        return pretty_json(obj.after)

    @admin.display(description="changes")
    def diff_display(self, obj: Event) -> SafeString:
        changes = diff(obj.before, obj.after)
        if not changes:
            return format_html("<em>{}</em>", "no field changed")
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, pretty_json(old), pretty_json(new)) for name, (old, new) in changes.items()),
        )
        return format_html("<table><thead><tr><th>field</th><th>before</th><th>after</th></tr></thead>{}</table>", rows)

    @admin.display(description="inclusion proof")
    def proof_link(self, obj: Event) -> SafeString:
        url = f"{reverse('audit-proof-inclusion')}?seq={obj.seq}"
        return format_html('<a href="{}">{}</a>', url, "RFC 9162 inclusion proof (API)")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Event | None:
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            # The change view's counterpart of _EventChangeList.get_results.
            urls = _object_admin_urls(self.admin_site, request, [event])
            event.admin_object_url = urls.get((event.object_type, event.object_id))
        return event


@admin.register(Checkpoint)
class CheckpointAdmin(_ReadOnlyAdmin):
    list_display = ["tree_size", "timestamp", "root_hash", "key_id"]
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in Checkpoint._meta.fields]
