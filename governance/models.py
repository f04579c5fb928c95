"""Organisation: desks and each member's desk."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.managers import UserObjectPermissionManager
from guardian.models import UserObjectPermissionBase

from audit.governed import GovernedQuerySet


class Desk(models.Model):
    """A trading or risk desk; models and people belong to one."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200, unique=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("view_desk_models", "Can see the desk's models and their versions"),
            ("change_desk_models", "Can change the desk's models and their versions"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """The desk a person works on (at most one)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    desk = models.ForeignKey(Desk, on_delete=models.PROTECT, related_name="members")

    objects = GovernedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.user} @ {self.desk}"


class DeskGrant(UserObjectPermissionBase):
    """A user's object permission on a whole desk (e.g. to see all of its models)."""

    content_object = models.ForeignKey(Desk, on_delete=models.CASCADE, related_name="grants")

    objects = UserObjectPermissionManager.from_queryset(GovernedQuerySet)()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "desk access grant"

    def __str__(self) -> str:
        return f"{self.user} may {self.permission.codename} on {self.content_object}"
