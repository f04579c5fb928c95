"""Organisation: desks and each member's desk."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audit.governed import GovernedQuerySet


class Desk(models.Model):
    """A trading or risk desk; models and people belong to one."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200, unique=True)

    objects = GovernedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """The desk a person works on (at most one)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    desk = models.ForeignKey(Desk, on_delete=models.PROTECT, related_name="members")

    objects = GovernedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.user} @ {self.desk}"
