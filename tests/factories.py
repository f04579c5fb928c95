"""factory_boy factories for the inventory. Writes in tests go through services where the
behaviour under test is a service; factories build fixtures quickly."""

from __future__ import annotations

import io
from decimal import Decimal
from functools import lru_cache
from typing import Any

import factory
import numpy as np
import skops.io as sio
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from sklearn.linear_model import LogisticRegression

from audit.scope import audited_change
from audit.services import SystemActor, record_event
from governance import services as governance_services
from governance.models import Desk
from governance.roles import Role

User = get_user_model()

PRICE_CSV = (
    b"Date,Open,High,Low,Close,Adj Close,Volume\n"
    b"2020-01-02,10.0,10.5,9.8,10.2,10.2,1000\n"
    b"2020-01-03,10.2,10.6,10.0,10.4,10.4,1200\n"
    b"2020-01-06,10.4,10.9,10.3,10.8,10.8,900\n"
)


class DeskFactory(factory.django.DjangoModelFactory):
    """Desks are governed: created through their service, which records the event."""

    class Meta:
        model = Desk

    code = factory.Sequence(lambda n: f"desk-{n}")
    name = factory.LazyAttribute(lambda o: f"Desk {o.code}")

    @classmethod
    def _create(cls, model_class: type[Desk], *args: object, **kwargs: str) -> Desk:
        existing = Desk.objects.filter(code=kwargs["code"]).first()
        return existing or governance_services.desk_create(actor=SystemActor("tests"), **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.set([Group.objects.get(name=role.value) for role in extracted])
        if create:
            self.save()


@lru_cache(maxsize=4)
def skops_classifier_bytes(n_features: int = 3) -> bytes:
    """A real fitted logistic regression saved with skops."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, n_features))
    y = (x[:, 0] > 0).astype(int)
    return sio.dumps(LogisticRegression().fit(x, y))


def csv_bytes(text: str) -> bytes:
    return io.StringIO(text).getvalue().encode()


MATERIALITY_LOW = Decimal("1000000.00")


def force_fields(instance: Any, **fields: Any) -> Any:
    """Test set-up only: put a governed row into a state no service would reach directly.

    Still an audited change (action ``test.state_forced``): governed rows cannot be
    written without an event, in tests either.
    """
    with audited_change():
        type(instance).objects.filter(pk=instance.pk).update(**fields)
        record_event(actor=SystemActor("tests"), action="test.state_forced", target=instance, after=fields)
    instance.refresh_from_db()
    return instance
