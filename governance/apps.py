from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    # post_migrate is sent once per app, in INSTALLED_APPS order, and each app's
    # permissions are created by its own signal; only after the last app do they all
    # exist. A data migration would run before them.
    if sender.label != list(apps.get_app_configs())[-1].label:
        return
    from governance.services import roles_sync

    roles_sync()


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from guardian.models import GroupObjectPermission, UserObjectPermission

        from audit.governed import govern, govern_recorded
        from governance import receivers

        post_migrate.connect(_sync_roles, dispatch_uid="governance.sync_roles")
        govern(self.get_model("Desk"))
        govern(self.get_model("Membership"))
        govern(self.get_model("DeskGrant"))
        govern(self.get_model("PolicySet"))
        govern(self.get_model("PolicyDecision"))
        govern(self.get_model("SignOffRequest"))
        govern(self.get_model("SignOffResponse"))
        govern(self.get_model("Finding"))
        govern(self.get_model("Deployment"))
        govern(self.get_model("MonitoringBatch"))
        govern(self.get_model("MonitoringAlert"))
        govern(self.get_model("Report"))
        # guardian's generic tables hold grants on objects without a grant table of their own.
        govern_recorded(UserObjectPermission)
        govern_recorded(GroupObjectPermission)
        govern_recorded(get_user_model(), links=("groups", "user_permissions"))
        govern_recorded(Group, links=("permissions",))
        receivers.connect()
        # The trading permission's remembered readers are forgotten on every access change.
        from governance import permission_cache

        permission_cache.connect()
        # Anomaly rules after each ingested batch (enqueued as a Celery task once it commits).
        from governance import anomaly_services, monitoring_services

        if anomaly_services.on_ingest not in monitoring_services.after_ingest_hooks:
            monitoring_services.after_ingest_hooks.append(anomaly_services.on_ingest)
