from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.services import SystemActor
from governance import services as governance_services
from governance.roles import Role
from models_registry import services as registry_services
from tests.factories import UserFactory, csv_bytes


@pytest.fixture
def owner(owner, desk):
    """The shared owner, on the desk their models are registered on (registering a model on a
    desk one is not on is refused)."""
    governance_services.membership_set(actor=SystemActor("tests"), user=owner, desk=desk)
    return owner


@pytest.fixture
def risk_manager(db):
    return UserFactory(username="rhea", roles=[Role.RISK_MANAGER])


@pytest.fixture
def active_set(compliance):
    """The shipped policy set, activated by a compliance officer."""
    policy_set, _ = governance_services.policy_set_activate(actor=compliance)
    return policy_set


@pytest.fixture
def write_policies(tmp_path) -> Callable[..., Path]:
    """Write policy files (name -> YAML text, dedented) into a fresh directory and return it."""
    counter = iter(range(1000))

    def write(files: dict[str, str], directory: Path | None = None) -> Path:
        directory = directory or tmp_path / f"policies-{next(counter)}"
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return directory

    return write


def _prices(dates: list[str]) -> bytes:
    rows = "\n".join(f"{day},10.0,10.5,9.8,10.2,10.2,1000" for day in dates)
    return csv_bytes(f"Date,Open,High,Low,Close,Adj Close,Volume\n{rows}\n")


PERIODS = {
    "training": ["2019-01-02", "2019-06-03", "2019-12-31"],
    "validation": ["2020-01-02", "2020-06-01", "2020-12-31"],
    "test": ["2021-01-04", "2021-06-01", "2021-12-31"],
}


@pytest.fixture
def split_datasets(make_dataset, owner):
    """Training, validation and test datasets over disjoint years, each validated (passed)."""
    made = {}
    for role, dates in PERIODS.items():
        dataset = make_dataset(name=f"prices-{role}", content=_prices(dates))
        made[role] = registry_services.dataset_validate(actor=owner, dataset=dataset)
    return made


@pytest.fixture
def submitted_version(make_model, make_version, split_datasets, owner):
    """A version with a problem definition and three datasets, submitted for validation by its owner."""
    model = make_model(
        name="eq-policy",
        objectives="Predict next-day direction.",
        success_criteria="Accuracy above 53% out of sample.",
        constraints="Daily bars; long or flat.",
    )
    version = make_version(
        model=model,
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=split_datasets["test"],
    )
    for status in ("in_development", "submitted_for_validation"):
        version = registry_services.model_version_transition(actor=owner, version=version, to_status=status)
    return version


@pytest.fixture
def validated_version(submitted_version, validator, compliance):
    """``submitted_version`` validated by an assigned, independent validator."""
    registry_services.validation_assign(actor=compliance, model=submitted_version.model, validator=validator)
    return registry_services.model_version_transition(actor=validator, version=submitted_version, to_status="validated")
