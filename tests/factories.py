"""factory_boy factories for the inventory. Writes in tests go through services where the
behaviour under test is a service; factories build fixtures quickly."""

from __future__ import annotations

import io
from decimal import Decimal
from functools import lru_cache

import factory
import numpy as np
import skops.io as sio
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from sklearn.linear_model import LogisticRegression

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
    class Meta:
        model = Desk
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"desk-{n}")
    name = factory.LazyAttribute(lambda o: f"Desk {o.code}")


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
