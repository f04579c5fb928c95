"""One small organisation, built through the services, in which every access rule has a case.

Two desks, A (equities) and B (rates). Each has a model owned by its owner, three versions of
that model (draft, submitted for validation, validated) and four datasets, one per
classification, owned by the desk's owner. Around them, one user per role of the permission
matrix:

=========  =====================================================================================
key        who
=========  =====================================================================================
owner      model owner on desk A; owns model A and desk A's datasets
developer  model developer on desk A with a ``change_desk_models`` grant on desk A; created
           version A 1.0; an explicit ``view_dataset`` grant on desk B's restricted dataset
val_asg    validator assigned to model A; validated version A 3.0; an explicit ``view_dataset``
           grant on desk A's confidential dataset
val_una    validator assigned to nothing
risk       risk manager            compliance   compliance officer (assigned the validators)
auditor    internal auditor        admin        administrator (not a superuser); submitted the
                                                3.0 versions for validation, through a change
                                                grant on each model revoked right after
reg_active regulator, engagement covering model A, running now
reg_expired regulator, engagement covering model A, ended yesterday
reg_revoked regulator, engagement covering model A, running but revoked
reg_none   regulator without any engagement
=========  =====================================================================================

Desk B's owner (``owner_b``) and its assigned validator (``val_b``) are not matrix rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from audit.services import SystemActor
from governance import services as org
from governance.models import Desk
from governance.roles import Role
from models_registry import services
from models_registry.models import Dataset, Engagement, Model, ModelVersion
from tests.factories import PRICE_CSV, DeskFactory, UserFactory, skops_classifier_bytes

SYSTEM = SystemActor("tests")
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
# Version label -> the status it is left in, and the next step the matrix tries on it.
VERSIONS = {
    "1.0": ("draft", "in_development"),
    "2.0": ("submitted_for_validation", "validated"),
    "3.0": ("validated", "approved"),
}

ROLES: dict[str, list[Role]] = {
    "owner": [Role.MODEL_OWNER],
    "developer": [Role.MODEL_DEVELOPER],
    "val_asg": [Role.VALIDATOR],
    "val_una": [Role.VALIDATOR],
    "risk": [Role.RISK_MANAGER],
    "compliance": [Role.COMPLIANCE_OFFICER],
    "auditor": [Role.INTERNAL_AUDITOR],
    "reg_active": [Role.REGULATOR],
    "reg_expired": [Role.REGULATOR],
    "reg_revoked": [Role.REGULATOR],
    "reg_none": [Role.REGULATOR],
    "admin": [Role.ADMINISTRATOR],
    # Not matrix rows: desk B's people.
    "owner_b": [Role.MODEL_OWNER],
    "val_b": [Role.VALIDATOR],
}


@dataclass
class World:
    desks: dict[str, Desk]
    users: dict[str, AbstractBaseUser]
    models: dict[str, Model] = field(default_factory=dict)
    # "A1.0" -> version 1.0 of model A
    versions: dict[str, ModelVersion] = field(default_factory=dict)
    # "A:confidential" -> desk A's confidential dataset
    datasets: dict[str, Dataset] = field(default_factory=dict)
    engagements: dict[str, Engagement] = field(default_factory=dict)

    def objects(self) -> dict[str, Any]:
        """Every object of the world by key: ``model:A``, ``version:A2.0``, ``dataset:B:restricted``."""
        return {
            **{f"model:{k}": v for k, v in self.models.items()},
            **{f"version:{k}": v for k, v in self.versions.items()},
            **{f"dataset:{k}": v for k, v in self.datasets.items()},
        }


def make_model(*, actor: Any, name: str, desk: Desk, owner: AbstractBaseUser) -> Model:
    return services.model_create(
        actor=actor,
        name=name,
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="logistic_regression",
        materiality=Decimal("1000000.00"),
        description=f"{name}: secret description",
    )


def make_dataset(*, actor: Any, name: str, desk: Desk | None, owner: AbstractBaseUser, classification: str) -> Dataset:
    return services.dataset_register(
        actor=actor,
        name=name,
        source_kind="market_data_feed",
        collection_policy="End-of-day vendor file.",
        storage_location=f"s3://bucket/{name}.csv",
        classification=classification,
        owner=owner,
        desk=desk,
        content=PRICE_CSV,
        rules={"required_columns": ["Date", "Close"]},
    )


def make_version(*, actor: Any, model: Model, version: str) -> ModelVersion:
    return services.model_version_create(actor=actor, model=model, version=version, artifact=skops_classifier_bytes())


def _move(version: ModelVersion, *steps: tuple[str, AbstractBaseUser]) -> ModelVersion:
    for to_status, actor in steps:
        version = services.model_version_transition(actor=actor, version=version, to_status=to_status)
    return version


def build_world() -> World:
    now = timezone.now()
    desks = {
        "A": DeskFactory(code="equities", name="Equities"),
        "B": DeskFactory(code="rates", name="Rates"),
    }
    users = {key: UserFactory(username=key.replace("_", "-"), roles=roles) for key, roles in ROLES.items()}
    u = users
    for key, desk in (("owner", "A"), ("developer", "A"), ("owner_b", "B")):
        org.membership_set(actor=SYSTEM, user=u[key], desk=desks[desk])
    world = World(desks=desks, users=users)

    for side, owner in (("A", u["owner"]), ("B", u["owner_b"])):
        desk = desks[side]
        world.models[side] = make_model(actor=owner, name=f"model-{side.lower()}-secret", desk=desk, owner=owner)
        for classification in CLASSIFICATIONS:
            world.datasets[f"{side}:{classification}"] = make_dataset(
                actor=owner,
                name=f"dataset-{side.lower()}-{classification}-secret",
                desk=desk,
                owner=owner,
                classification=classification,
            )

    org.desk_access_grant(actor=u["admin"], user=u["developer"], desk=desks["A"], permission="change_desk_models")
    services.validation_assign(actor=u["compliance"], model=world.models["A"], validator=u["val_asg"])
    services.validation_assign(actor=u["compliance"], model=world.models["B"], validator=u["val_b"])
    services.dataset_access_grant(
        actor=u["owner_b"], user=u["developer"], dataset=world.datasets["B:restricted"], permission="view_dataset"
    )
    services.dataset_access_grant(
        actor=u["owner"], user=u["val_asg"], dataset=world.datasets["A:confidential"], permission="view_dataset"
    )

    for side, owner, validator in (("A", u["owner"], u["val_asg"]), ("B", u["owner_b"], u["val_b"])):
        model = world.models[side]
        # Version 1.0 of model A is the developer's (through the desk grant); of model B, its owner's.
        author = u["developer"] if side == "A" else owner
        world.versions[f"{side}1.0"] = make_version(actor=author, model=model, version="1.0")
        world.versions[f"{side}2.0"] = _move(
            make_version(actor=owner, model=model, version="2.0"),
            ("in_development", owner),
            ("submitted_for_validation", owner),
        )
        # The administrator submits 3.0, so the approval of 3.0 meets "no approving your own
        # request". Submitting is development, for those who may change the model (SOD-7): the
        # owner lends the administrator a change grant for it and takes it back at once.
        version = _move(make_version(actor=owner, model=model, version="3.0"), ("in_development", owner))
        services.model_access_grant(actor=owner, user=u["admin"], model=model, permission="change_model")
        version = _move(version, ("submitted_for_validation", u["admin"]))
        services.model_access_revoke(actor=owner, user=u["admin"], model=model, permission="change_model")
        world.versions[f"{side}3.0"] = _move(version, ("validated", validator))
    for key, (status, _) in VERSIONS.items():
        assert world.versions[f"A{key}"].status == status

    windows = {
        "reg_active": (now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
        "reg_expired": (now - dt.timedelta(days=60), now - dt.timedelta(days=1)),
        "reg_revoked": (now - dt.timedelta(days=1), now + dt.timedelta(days=30)),
    }
    for key, (starts_at, ends_at) in windows.items():
        world.engagements[key] = services.engagement_create(
            actor=u["compliance"],
            regulator=u[key],
            authority="PRA",
            purpose="Thematic review.",
            starts_at=starts_at,
            ends_at=ends_at,
            models=[world.models["A"]],
        )
    world.engagements["reg_revoked"] = services.engagement_revoke(
        actor=u["compliance"], engagement=world.engagements["reg_revoked"], reason="Review closed early."
    )
    return world
