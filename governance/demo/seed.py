"""The demo's seeding, written against the same services as the API and admin.

Idempotent: objects are looked up by their natural keys and only missing ones are
created; lifecycle steps already taken are not taken again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import skops.io as sio
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from audit.services import SystemActor
from governance import services as org_services
from governance.demo import assessments as demo_assessments
from governance.demo import catalogue, market
from governance.demo import deployments as demo_deployments
from governance.demo import signoffs as demo_signoffs
from governance.models import Desk
from models_registry import services as registry
from models_registry.models import Dataset, Engagement, Model, ModelGrant, ModelVersion

User = get_user_model()
SYSTEM = SystemActor("demo")
DEMO_VERSION = "1.0.0"
CODE_REPOSITORY = "https://git.example.com/quant/demo-models"


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    password: str = ""
    password_source: str = ""
    credentials_file: Path | None = None
    signoffs: list[Any] = field(default_factory=list)
    assessments: list[Any] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.created.append(text)


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.txt"


def _read_saved_password(path: Path) -> str | None:
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("password:"):
            return line.split(":", 1)[1].strip()
    return None


def _write_credentials(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ", ".join(u.username for u in catalogue.USERS)
    path.write_text(
        f"Demo users: {names}\npassword: {password}\nadmin: http://127.0.0.1:8000/admin/\n",
        encoding="utf-8",
    )
    path.chmod(0o600)


def seed_organisation(report: SeedReport, *, password_from_env: str | None) -> dict[str, AbstractBaseUser]:
    desks: dict[str, Desk] = {}
    for code, name in catalogue.DESKS:
        desk = Desk.objects.filter(code=code).first()
        if desk is None:
            desk = org_services.desk_create(actor=SYSTEM, code=code, name=name)
            report.note(f"desk {code}")
        desks[code] = desk

    creds = _credentials_file()
    saved = _read_saved_password(creds)
    existing = {u.username: u for u in User.objects.filter(username__in=[d.username for d in catalogue.USERS])}
    if password_from_env:
        password, source = password_from_env, "DEMO_PASSWORD"
    elif saved and len(existing) == len(catalogue.USERS):
        password, source = saved, str(creds)
    else:
        password, source = secrets.token_urlsafe(12), "generated"

    users: dict[str, AbstractBaseUser] = {}
    for spec in catalogue.USERS:
        user = existing.get(spec.username)
        if user is None:
            user = org_services.user_create(
                actor=SYSTEM,
                username=spec.username,
                password=password,
                email=f"{spec.username}@example.com",
                first_name=spec.first_name,
                last_name=spec.last_name,
                roles=spec.roles,
                desk=desks[spec.desk] if spec.desk else None,
                is_superuser=spec.is_superuser,
            )
            report.note(f"user {spec.username}")
        elif not user.check_password(password):
            org_services.user_set_password(actor=SYSTEM, user=user, password=password)
        users[spec.username] = user
    _write_credentials(creds, password)
    report.password, report.password_source, report.credentials_file = password, source, creds
    return users


def _csv_bytes(frame: Any) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, date_format="%Y-%m-%d", float_format="%.6f")
    return buffer.getvalue().encode("utf-8")


def seed_datasets(report: SeedReport, users: dict[str, AbstractBaseUser]) -> dict[tuple[str, str], Dataset]:
    """Register each ticker's full history and its train/validation/test slices, then validate them."""
    registered: dict[tuple[str, str], Dataset] = {}
    desks = {d.code: d for d in Desk.objects.all()}
    for ticker, info in catalogue.TICKERS.items():
        prices = market.load_prices(ticker)
        parts = [
            ("full", prices, f"{ticker} daily prices {prices['Date'].dt.year.min()}-{prices['Date'].dt.year.max()}")
        ]
        for split in market.SPLITS:
            part = market.split_prices(prices, split)
            years = f"{part['Date'].dt.year.min()}-{part['Date'].dt.year.max()}"
            parts.append((split.name, part, f"{ticker} daily prices {split.name} {years}"))
        owner = users[info["owner"]]
        for role, frame, name in parts:
            dataset = Dataset.objects.filter(name=name).first()
            if dataset is None:
                dataset = registry.dataset_register(
                    actor=owner,
                    name=name,
                    description=f"Daily OHLCV prices of {ticker} ({role} period), adjusted close included.",
                    source_kind="market_data_feed",
                    collection_policy="End-of-day vendor file, collected after the close; public market data.",
                    storage_location=f"var/media/datasets/ (content-addressed); from {market.price_file(ticker).name}",
                    classification="public",
                    owner=owner,
                    desk=desks[info["desk"]],
                    content=_csv_bytes(frame),
                    time_column="Date",
                    rules=catalogue.PRICE_RULES,
                )
                report.note(f"dataset {name}")
            if dataset.validation_status == "not_validated":
                dataset = registry.dataset_validate(actor=users["vera"], dataset=dataset)
            registered[(ticker, role)] = dataset
    return registered


def _train(spec: catalogue.DemoModel) -> tuple[bytes, list[str]]:
    features = market.build_features(market.load_prices(spec.ticker))
    train = market.features_for_split(features, market.SPLITS[0])
    estimator = spec.estimator
    estimator.fit(train[market.FEATURES], train[spec.target])
    return sio.dumps(estimator), market.FEATURES


def _advance(
    version: ModelVersion, spec: catalogue.DemoModel, users: dict[str, AbstractBaseUser], report: SeedReport
) -> None:
    path = list(spec.lifecycle)
    if version.status not in path and version.status != "draft":
        return  # moved on beyond the seeded path (a sign-off approved it): nothing to redo
    # Take only the steps after the version's current status.
    start = path.index(version.status) + 1 if version.status in path else 0
    for status in path[start:]:
        who = catalogue.STEP_ACTOR[status]
        actor = users[spec.owner] if who == "owner" else users[who]
        version = registry.model_version_transition(
            actor=actor, version=version, to_status=status, reason=catalogue.STEP_REASON[status]
        )
        report.note(f"{version} -> {status}")


def seed_models(
    report: SeedReport, users: dict[str, AbstractBaseUser], datasets: dict[tuple[str, str], Dataset]
) -> None:
    desks = {d.code: d for d in Desk.objects.all()}
    for spec in catalogue.MODELS:
        owner = users[spec.owner]
        model = Model.objects.filter(name=spec.name).first()
        if model is None:
            model = registry.model_create(
                actor=owner,
                name=spec.name,
                purpose=spec.purpose,
                desk=desks[spec.desk],
                owner=owner,
                model_type=spec.model_type,
                materiality=spec.materiality,
                description=spec.description,
                objectives=spec.objectives,
                success_criteria=spec.success_criteria,
                constraints=spec.constraints,
                outputs_and_users=spec.outputs_and_users,
                restrictions_on_use=spec.restrictions_on_use,
            )
            report.note(f"model {spec.name} (tier {model.risk_tier})")
        elif not (model.outputs_and_users or model.restrictions_on_use):
            # A demo database seeded before these fields existed gets them, once.
            model = registry.model_update(
                actor=owner,
                model=model,
                changes={"outputs_and_users": spec.outputs_and_users, "restrictions_on_use": spec.restrictions_on_use},
                reason="Inventory attributes recorded (demo).",
            )
            report.note(f"model {spec.name}: outputs, users and restrictions on use recorded")
        version = ModelVersion.objects.filter(model=model, version=DEMO_VERSION).first()
        if version is None:
            artifact, _ = _train(spec)
            version = registry.model_version_create(
                actor=owner,
                model=model,
                version=DEMO_VERSION,
                artifact=artifact,
                hyperparameters=spec.hyperparameters,
                code_repository=CODE_REPOSITORY,
                code_commit="3f9c2d41a7be",
                training_dataset=datasets[(spec.ticker, "train")],
                validation_dataset=datasets[(spec.ticker, "validation")],
                test_dataset=datasets[(spec.ticker, "test")],
                feature_pipeline="daily_prices_v1",
                target=spec.target,
                reason="Initial version trained by the demo.",
            )
            report.note(f"version {version}")
        if not ModelGrant.objects.filter(content_object=model, user=users["vera"]).exists():
            registry.validation_assign(
                actor=users["carl"], model=model, validator=users["vera"], reason="Independent validation team."
            )
            report.note(f"vera assigned to validate {model}")
        _advance(version, spec, users, report)
    _share_with_regulator(report, users)


def _share_with_regulator(report: SeedReport, users: dict[str, AbstractBaseUser]) -> None:
    """Rita (regulator) reviews the two tier-1 candidates for 90 days from the first run."""
    if Engagement.objects.filter(regulator=users["rita"]).exists():
        return
    shared = list(Model.objects.filter(name__in=catalogue.SHARED_WITH_REGULATOR))
    now = timezone.now()
    registry.engagement_create(
        actor=users["carl"],
        regulator=users["rita"],
        authority="PRA (demo)",
        purpose="Thematic review of machine-learning trading models.",
        starts_at=now,
        ends_at=now + dt.timedelta(days=90),
        models=shared,
        reason="Supervisory request (demo).",
    )
    report.note(f"engagement for rita covering {', '.join(m.name for m in shared)}")


def write_summary(path: Path) -> dict[str, Any]:
    models = Model.objects.with_lifecycle_status().select_related("desk", "owner").order_by("name")
    summary = {
        "models": [
            {
                "name": m.name,
                "type": m.model_type,
                "complexity": m.complexity.value,
                "purpose": m.purpose,
                "owner": m.owner.get_username(),
                "desk": m.desk.code,
                "materiality": str(m.materiality),
                "risk_tier": m.risk_tier,
                "tier_rationale": m.tier_rationale,
                "lifecycle_status": m.lifecycle_status,
            }
            for m in models
        ],
        "datasets": [
            {"name": d.name, "rows": d.row_count, "sha256": d.content_sha256, "validation": d.validation_status}
            for d in Dataset.objects.order_by("name")
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def run(*, password_from_env: str | None) -> SeedReport:
    report = SeedReport()
    users = seed_organisation(report, password_from_env=password_from_env)
    # The policies are in force before any model moves, so every transition below is evaluated.
    demo_signoffs.activate_policies(users, report.created)
    datasets = seed_datasets(report, users)
    seed_models(report, users, datasets)
    report.signoffs = demo_signoffs.run(users)
    # After the sign-offs, so their scenarios (decided on the validation evidence) are as before.
    report.assessments = demo_assessments.run(users)
    report.deployments = demo_deployments.run(users)
    return report
