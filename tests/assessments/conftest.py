"""A small, real set-up for risk assessments: NVDA daily prices 2008-2011 split into training
(2008-2009), validation (2010) and test (2011), and a logistic regression on the
daily_prices_v1 features, so the whole pipeline runs in about a second."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from governance.demo import market
from governance.roles import Role
from models_registry import features, services
from models_registry.models import RiskAssessment
from tests.factories import UserFactory

SPLITS = {
    "training": ("2008-01-01", "2009-12-31"),
    "validation": ("2010-01-01", "2010-12-31"),
    "test": ("2011-01-01", "2011-12-31"),
}
RULES = {
    "required_columns": ["Date", "Adj Close", "Volume"],
    "unique": ["Date"],
    "ranges": {"Adj Close": {"min": 0.0001}, "Volume": {"min": 0}},
    "monotonic_timestamps": True,
}
# Few partitions and configurations keep the folder fast; the defaults are exercised in one test.
FAST = {"pbo_partitions": 8, "pbo_configurations": 4, "cv_splits": 3, "permutation_repeats": 2}


@functools.cache
def _slice(role: str) -> pd.DataFrame:
    prices = market.load_prices("NVDA")
    start, end = SPLITS[role]
    return prices[(prices["Date"] >= start) & (prices["Date"] <= end)].reset_index(drop=True)


def slice_prices(role: str) -> pd.DataFrame:
    """The role's NVDA prices (read once per process; a copy each call, so callers may edit it)."""
    return _slice(role).copy()


def to_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, date_format="%Y-%m-%d", float_format="%.6f")
    return buffer.getvalue().encode()


@functools.cache
def _role_csv(role: str) -> bytes:
    return to_csv(_slice(role))


_TRAINED: dict[tuple[type, str, str], bytes] = {}


def trained(estimator: BaseEstimator, target: str = "next_up") -> bytes:
    """The skops bytes of ``estimator`` fitted on the training slice. Fitted once per process
    for the same class, parameters and target (every fit here is deterministic); on a repeat
    the bytes are reused and ``estimator`` itself is left unfitted."""
    key = (type(estimator), repr(sorted(estimator.get_params(deep=True).items(), key=lambda kv: kv[0])), target)
    if key not in _TRAINED:
        built = features.build_features(_slice("training"))
        estimator.fit(built[features.FEATURES], built[target])
        _TRAINED[key] = sio.dumps(estimator)
    return _TRAINED[key]


@pytest.fixture
def nvda_datasets(make_dataset) -> dict[str, Any]:
    return {role: make_dataset(name=f"nvda-{role}", content=_role_csv(role), rules=RULES) for role in SPLITS}


@pytest.fixture
def assessable(make_model, owner, nvda_datasets) -> Callable[..., Any]:
    """A version on NVDA with the daily_prices_v1 pipeline; overrides for the model and version."""

    def make(*, estimator: BaseEstimator | None = None, target: str = "next_up", model: dict | None = None, **version):
        model_kwargs = {"name": "nvda-direction", "purpose": "alpha", "model_type": "logistic_regression"}
        model_kwargs.update(model or {})
        registered = make_model(**model_kwargs)
        data: dict[str, Any] = {
            "version": "1.0.0",
            "artifact": trained(
                estimator if estimator is not None else LogisticRegression(C=1.0, max_iter=500), target
            ),
            "feature_pipeline": "daily_prices_v1",
            "target": target,
            "training_dataset": nvda_datasets["training"],
            "validation_dataset": nvda_datasets["validation"],
            "test_dataset": nvda_datasets["test"],
        }
        data.update(version)
        return services.model_version_create(actor=owner, model=registered, **data)

    return make


@pytest.fixture
def run_now(django_capture_on_commit_callbacks) -> Callable[..., tuple[RiskAssessment, bool]]:
    """Request an assessment and run its (eager) job as the commit would: returns it refreshed."""

    def run(**kwargs: Any) -> tuple[RiskAssessment, bool]:
        kwargs.setdefault("parameters", dict(FAST))
        with django_capture_on_commit_callbacks(execute=True):
            assessment, created = services.assessment_request(**kwargs)
        assessment.refresh_from_db()
        return assessment, created

    return run


@pytest.fixture
def validator_on(compliance) -> Callable[[Any], Any]:
    def assign(model: Any) -> Any:
        user = UserFactory(username="valerie", roles=[Role.VALIDATOR])
        services.validation_assign(actor=compliance, model=model, validator=user)
        return user

    return assign


MATERIALITY = Decimal("1000000.00")
