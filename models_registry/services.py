"""Every change to the model inventory. Each function is one transaction that writes the
change and its audit event; if either fails, neither is stored.

Uploaded files are stored content-addressed (``artifacts/<sha256>.skops``,
``datasets/<sha256>.csv``) before the transaction commits, so a rolled-back write leaves
at most an unreferenced copy of identical bytes, never a row pointing to a missing file.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import sklearn
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from audit.scope import audited_change
from audit.services import Actor, SystemActor, record_event
from audit.snapshot import diff, snapshot
from governance.errors import Conflict, InvalidArtifact, InvalidTransition, NotPermitted, PayloadTooLarge
from governance.models import Desk
from models_registry import artifacts, datasets, features, lifecycle, segregation, selectors
from models_registry.choices import LifecycleStatus, ValidationStatus
from models_registry.models import (
    Dataset,
    DatasetGrant,
    Engagement,
    EngagementModel,
    Model,
    ModelDependency,
    ModelGrant,
    ModelVersion,
)

MODEL_UPDATABLE_FIELDS = frozenset(
    {
        "purpose",
        "desk",
        "owner",
        "description",
        "objectives",
        "success_criteria",
        "constraints",
        "model_type",
        "materiality",
        "risk_tier_override",
        "risk_tier_override_justification",
        "is_vendor_model",
        "vendor_name",
        "upstream_models",
        "outputs_and_users",
        "restrictions_on_use",
    }
)
DATASET_UPDATABLE_FIELDS = frozenset(
    {"description", "source_kind", "collection_policy", "storage_location", "classification", "desk", "owner", "rules"}
)
VERSION_UPDATABLE_FIELDS = frozenset(
    {
        "framework",
        "hyperparameters",
        "code_repository",
        "code_commit",
        "training_dataset",
        "validation_dataset",
        "test_dataset",
        "feature_pipeline",
        "target",
    }
)
# After submission a version is frozen: what was validated is what gets approved and deployed.
VERSION_EDITABLE_STATUSES = frozenset({LifecycleStatus.DRAFT, LifecycleStatus.IN_DEVELOPMENT})


def _require_permission(actor: Actor, perm: str, action: str) -> None:
    if isinstance(actor, AbstractBaseUser) and not actor.has_perm(perm):
        raise NotPermitted(f"{actor.get_username()} may not {action} (needs permission {perm})")


def _require_scope(actor: Actor, selector: Any, obj: Any, action: str) -> None:
    """Object-level check: ``obj`` must be in ``selector``'s change scope for ``actor`` (users only;
    system actors are jobs and commands, already trusted)."""
    if isinstance(actor, AbstractBaseUser) and not selector(user=actor, for_change=True).filter(pk=obj.pk).exists():
        raise NotPermitted(f"{actor.get_username()} may not {action} {obj} (no object permission)")


def _require_own_unless_administrator(actor: Actor, owner: AbstractBaseUser | None, action: str) -> None:
    """Only administrators (superusers, ``auth.change_user``) make objects over to someone else:
    anyone else would put the object out of their own scope (and answer for it in another's name)."""
    if (
        isinstance(actor, AbstractBaseUser)
        and owner is not None
        and owner.pk != actor.pk
        and not selectors.is_administrator(actor)
    ):
        raise NotPermitted(f"{actor.get_username()} may not {action} for {owner.get_username()} (administrators only)")


def _require_visible_after_write(actor: Actor, selector: Any, obj: Any, action: str) -> None:
    """Called inside the service's transaction after the write: an object the write put out of
    the actor's sight is refused and the write rolled back (the rules above should already have
    refused it; this makes sure no write ever leaves its author unable to see what they did)."""
    if isinstance(actor, AbstractBaseUser) and not selector(user=actor).filter(pk=obj.pk).exists():
        raise NotPermitted(f"{actor.get_username()} may not {action} {obj}: it would be out of their scope")


def _refuse_unknown(changes: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError({field: [f"cannot be changed on a {what}"] for field in unknown})


def _store(content: bytes, *, folder: str, suffix: str, sha256: str) -> str:
    name = f"{folder}/{sha256}{suffix}"
    if not default_storage.exists(name):
        stored = default_storage.save(name, ContentFile(content))
        if stored != name:  # A concurrent writer stored the same bytes first.
            default_storage.delete(stored)
    return name


def _normalise_materiality(model: Model) -> None:
    """Hold the amount as the column stores it (two decimals), so the audit snapshot matches the row."""
    places = Model._meta.get_field("materiality").decimal_places
    model.materiality = Decimal(model.materiality).quantize(Decimal(1).scaleb(-places))


# Bumped by every save; a change to it alone is not a change worth an audit event.
_BOOKKEEPING_FIELDS = frozenset({"updated_at"})


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(field not in _BOOKKEEPING_FIELDS for field in diff(before, after))


def _check_tier_override(model: Model) -> None:
    if model.risk_tier_override is not None and not model.risk_tier_override_justification.strip():
        raise ValidationError({"risk_tier_override_justification": ["a tier override needs a written justification"]})
    if model.risk_tier_override is None and model.risk_tier_override_justification:
        model.risk_tier_override_justification = ""


def _check_vendor(model: Model) -> None:
    if model.is_vendor_model and not model.vendor_name.strip():
        raise ValidationError({"vendor_name": ["a vendor (third-party) model needs the vendor's name"]})
    if not model.is_vendor_model and model.vendor_name:
        model.vendor_name = ""  # An in-house model has no vendor: a stale name would mislead the inventory.


def _model_snapshot(model: Model) -> dict[str, Any]:
    """The model's fields and its upstream models (primary keys, sorted): the graph is part of
    the inventory entry, so its changes are in the model's own events too."""
    upstream = sorted(ModelDependency.objects.filter(model_id=model.pk).values_list("upstream_id", flat=True))
    return snapshot(model) | {"upstream_models": upstream}


def _upstream_closure(start: set[int]) -> tuple[set[int], dict[int, int]]:
    """Every model reachable from ``start`` by following upstream links, and for each the model
    it was reached from (to print the path of a cycle)."""
    edges: dict[int, list[int]] = {}
    for downstream, upstream in ModelDependency.objects.values_list("model_id", "upstream_id"):
        edges.setdefault(downstream, []).append(upstream)
    seen = set(start)
    came_from: dict[int, int] = {}
    frontier = list(start)
    while frontier:
        current = frontier.pop()
        for upstream in edges.get(current, ()):
            if upstream not in seen:
                seen.add(upstream)
                came_from[upstream] = current
                frontier.append(upstream)
    return seen, came_from


def _clean_upstream(actor: Actor, model_pk: int | None, upstream: Any) -> list[Model]:
    """Check the proposed upstream models and lock the part of the graph the check reads.

    Refused, naming ``upstream_models``: the model itself, a model the actor may not see, and a
    model already fed (directly or not) by this one, which would close a cycle. The rows of the
    model, the proposed upstream models and everything upstream of them are locked in primary-key
    order before the graph is read again, so two concurrent changes that together would close a
    cycle are serialised (both lock the lowest model on it) and the second sees the first's link.
    """
    if upstream is None:
        return []
    models_in = list(upstream)
    if any(not isinstance(m, Model) or m.pk is None for m in models_in):
        raise ValidationError({"upstream_models": ["a list of registered models"]})
    wanted = {m.pk for m in models_in}
    if model_pk is not None and model_pk in wanted:
        raise ValidationError({"upstream_models": ["a model cannot feed itself"]})
    if isinstance(actor, AbstractBaseUser):
        visible = set(selectors.model_list(user=actor).filter(pk__in=wanted).values_list("pk", flat=True))
        hidden = sorted(wanted - visible)
        if hidden:
            raise ValidationError({"upstream_models": [f"no such model: {', '.join(f'#{pk}' for pk in hidden)}"]})
    closure, _ = _upstream_closure(wanted)
    lock = sorted(closure | ({model_pk} if model_pk is not None else set()))
    list(Model.objects.select_for_update().filter(pk__in=lock).order_by("pk").values_list("pk", flat=True))
    if model_pk is not None:
        closure, came_from = _upstream_closure(wanted)
        if model_pk in closure:
            path = [model_pk]
            while path[-1] not in wanted:
                path.append(came_from[path[-1]])
            names = dict(Model.objects.filter(pk__in=path).values_list("pk", "name"))
            chain = " -> ".join(names[pk] for pk in path)  # in feeding order: each feeds the next
            raise ValidationError(
                {
                    "upstream_models": [
                        f"{names[path[-1]]} already depends on {names[model_pk]} ({chain}): making it upstream "
                        f"of {names[model_pk]} would close a cycle"
                    ]
                }
            )
    return sorted(models_in, key=lambda m: m.pk)


def _write_upstream(*, actor: Actor, model: Model, upstream: list[Model], reason: str) -> None:
    """Make ``model``'s upstream links exactly ``upstream``, one audit event per link added or removed."""
    current = {link.upstream_id: link for link in ModelDependency.objects.filter(model=model)}
    wanted = {m.pk: m for m in upstream}
    for pk, link in sorted(current.items()):
        if pk not in wanted:
            record_event(
                actor=actor, action="model.upstream_removed", target=link, before=snapshot(link), reason=reason
            )
            link.delete()
    for pk, upstream_model in sorted(wanted.items()):
        if pk not in current:
            link = ModelDependency.objects.create(model=model, upstream=upstream_model)
            record_event(
                actor=actor,
                action="model.upstream_added",
                target=link,
                after=snapshot(link) | {"model_name": model.name, "upstream_name": upstream_model.name},
                reason=reason,
            )


@audited_change()
def model_create(
    *,
    actor: Actor,
    name: str,
    purpose: str,
    desk: Desk,
    owner: AbstractBaseUser,
    model_type: str,
    materiality: Decimal,
    description: str = "",
    objectives: str = "",
    success_criteria: str = "",
    constraints: str = "",
    risk_tier_override: int | None = None,
    risk_tier_override_justification: str = "",
    is_vendor_model: bool = False,
    vendor_name: str = "",
    upstream_models: list[Model] | None = None,
    outputs_and_users: str = "",
    restrictions_on_use: str = "",
    reason: str = "",
) -> Model:
    """Register a model in the inventory; its tier is computed from type and materiality.

    Its inventory attributes: a vendor flag with the vendor's name (required with the flag),
    the models whose outputs feed it (``upstream_models``: visible to the actor, never itself),
    its outputs and their users, and its restrictions on use.

    Who registers what (a person must be able to see, and answer for, what they register):

    * ``owner`` is the actor, unless the actor is an administrator (superuser or
      ``auth.change_user``), who may register a model in someone else's name;
    * ``desk`` is the actor's own desk (their ``Membership``) or one they hold
      ``change_desk_models`` on, unless they are an administrator: a model on a desk is shared
      with everyone granted that desk, so nobody places models on other desks (a user on no
      desk needs that grant or an administrator).

    System actors (jobs, commands, the demo) are trusted. Refusals are ``NotPermitted`` and
    nothing is written.
    """
    _require_permission(actor, "models_registry.add_model", "register models")
    _require_own_unless_administrator(actor, owner, "register a model")
    if (
        isinstance(actor, AbstractBaseUser)
        and desk is not None
        and not selectors.can_register_model_on(user=actor, desk=desk)
    ):
        raise NotPermitted(
            f"{actor.get_username()} may not register a model on desk {desk.code} "
            "(their own desk, a desk they may change the models of, or administrators only)"
        )
    model = Model(
        name=name,
        purpose=purpose,
        desk=desk,
        owner=owner,
        model_type=model_type,
        materiality=materiality,
        description=description,
        objectives=objectives,
        success_criteria=success_criteria,
        constraints=constraints,
        risk_tier_override=risk_tier_override,
        risk_tier_override_justification=risk_tier_override_justification,
        is_vendor_model=is_vendor_model,
        vendor_name=vendor_name,
        outputs_and_users=outputs_and_users,
        restrictions_on_use=restrictions_on_use,
    )
    _check_tier_override(model)
    _check_vendor(model)
    model.full_clean(exclude=["risk_tier"])
    _normalise_materiality(model)
    upstream = _clean_upstream(actor, None, upstream_models)
    model.save()
    _write_upstream(actor=actor, model=model, upstream=upstream, reason=reason)
    record_event(actor=actor, action="model.created", target=model, after=_model_snapshot(model), reason=reason)
    _require_visible_after_write(actor, selectors.model_list, model, "register")
    return model


@audited_change()
def model_update(*, actor: Actor, model: Model, changes: dict[str, Any], reason: str = "") -> Model:
    """Change a model's definition; the tier is recomputed and the diff audited.

    Handing the model over to another owner is for administrators only, and a change that
    would leave the model out of the actor's sight (moving it to a desk they have no grant on)
    is refused and not made.
    """
    _require_permission(actor, "models_registry.change_model", "change models")
    _require_scope(actor, selectors.model_list, model, "change")
    _refuse_unknown(changes, MODEL_UPDATABLE_FIELDS, "model")
    changes = dict(changes)
    upstream = None
    if "upstream_models" in changes:
        # Locks the model with the graph around it, in primary-key order (see _clean_upstream).
        upstream = _clean_upstream(actor, model.pk, changes.pop("upstream_models"))
    model = Model.objects.select_for_update().get(pk=model.pk)
    if "owner" in changes and getattr(changes["owner"], "pk", None) != model.owner_id:
        _require_own_unless_administrator(actor, changes["owner"], f"hand model {model.name} over")
    before = _model_snapshot(model)
    for field, value in changes.items():
        setattr(model, field, value)
    _check_tier_override(model)
    _check_vendor(model)
    model.full_clean(exclude=["risk_tier"])
    _normalise_materiality(model)
    proposed = snapshot(model) | {
        "upstream_models": before["upstream_models"] if upstream is None else sorted(m.pk for m in upstream)
    }
    if not _changed(before, proposed):
        return model  # Saving would bump updated_at: a write with nothing to audit.
    model.save()
    if upstream is not None:
        _write_upstream(actor=actor, model=model, upstream=upstream, reason=reason)
    after = _model_snapshot(model)
    record_event(actor=actor, action="model.updated", target=model, before=before, after=after, reason=reason)
    _require_visible_after_write(actor, selectors.model_list, model, "change")
    return model


@audited_change()
def dataset_register(
    *,
    actor: Actor,
    name: str,
    source_kind: str,
    collection_policy: str,
    storage_location: str,
    classification: str,
    owner: AbstractBaseUser,
    content: bytes,
    time_column: str = "Date",
    rules: dict[str, Any] | None = None,
    description: str = "",
    desk: Desk | None = None,
    reason: str = "",
) -> Dataset:
    """Register a CSV dataset: profile it (schema, rows, time range, SHA-256) and keep its rules.

    ``owner`` is the actor unless the actor is an administrator (superuser or
    ``auth.change_user``); a dataset its registrant could not then see (an administrator
    registering a restricted dataset for someone else) is refused: register it as yourself,
    grant yourself ``view_dataset`` and hand it over with ``dataset_update``.
    """
    _require_permission(actor, "models_registry.add_dataset", "register datasets")
    _require_own_unless_administrator(actor, owner, "register a dataset")
    limit = settings.GOVERNANCE_MAX_DATASET_BYTES
    if len(content) > limit:
        raise PayloadTooLarge(f"the dataset is {len(content):,} bytes; the limit is {limit:,} bytes")
    rules = rules or {}
    datasets.parse_rules(rules)
    frame = datasets.read_csv(content)
    prof = datasets.profile(frame, time_column)
    sha256 = _sha256(content)
    dataset = Dataset(
        name=name,
        description=description,
        source_kind=source_kind,
        collection_policy=collection_policy,
        storage_location=storage_location,
        classification=classification,
        owner=owner,
        desk=desk,
        content_sha256=sha256,
        size_bytes=len(content),
        time_column=time_column,
        schema=prof.schema,
        row_count=prof.row_count,
        time_start=prof.time_start.to_pydatetime() if prof.time_start is not None else None,
        time_end=prof.time_end.to_pydatetime() if prof.time_end is not None else None,
        rules=rules,
    )
    dataset.file.name = f"datasets/{sha256}.csv"
    dataset.full_clean()
    _store(content, folder="datasets", suffix=".csv", sha256=sha256)
    dataset.save()
    record_event(actor=actor, action="dataset.registered", target=dataset, after=snapshot(dataset), reason=reason)
    _require_visible_after_write(actor, selectors.dataset_list, dataset, "register")
    return dataset


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@audited_change()
def dataset_update(*, actor: Actor, dataset: Dataset, changes: dict[str, Any], reason: str = "") -> Dataset:
    """Change a dataset's governance metadata or rules; new rules reset its validation status.

    Handing the dataset over to another owner is for administrators only, and a change that
    would leave the dataset out of the actor's sight is refused and not made.
    """
    _require_permission(actor, "models_registry.change_dataset", "change datasets")
    _require_scope(actor, selectors.dataset_list, dataset, "change")
    _refuse_unknown(changes, DATASET_UPDATABLE_FIELDS, "dataset")
    if "rules" in changes:
        datasets.parse_rules(changes["rules"])
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if "owner" in changes and getattr(changes["owner"], "pk", None) != dataset.owner_id:
        _require_own_unless_administrator(actor, changes["owner"], f"hand dataset {dataset.name} over")
    before = snapshot(dataset)
    for field, value in changes.items():
        setattr(dataset, field, value)
    if "rules" in changes and changes["rules"] != before["rules"]:
        dataset.validation_status = ValidationStatus.NOT_VALIDATED
        dataset.validation_result = None
        dataset.validated_at = None
    dataset.full_clean()
    if not _changed(before, snapshot(dataset)):
        return dataset  # Saving would bump updated_at: a write with nothing to audit.
    dataset.save()
    after = snapshot(dataset)
    record_event(actor=actor, action="dataset.updated", target=dataset, before=before, after=after, reason=reason)
    _require_visible_after_write(actor, selectors.dataset_list, dataset, "change")
    return dataset


def read_dataset_frame(dataset: Dataset) -> Any:
    """The dataset's stored content as a DataFrame, checked against its recorded SHA-256."""
    with default_storage.open(dataset.file.name, "rb") as handle:
        content = handle.read()
    if _sha256(content) != dataset.content_sha256:
        raise Conflict(f"the stored content of dataset {dataset.name!r} no longer matches its SHA-256")
    return datasets.read_csv(content)


@audited_change()
def dataset_validate(*, actor: Actor, dataset: Dataset) -> Dataset:
    """Run the dataset's declared rules on its content and store the result.

    Needs ``validate_dataset`` (model owners, developers, validators) and sight of the dataset;
    system actors (Celery jobs, commands, the demo) are trusted.
    """
    _require_permission(actor, "models_registry.validate_dataset", "run dataset rules")
    if isinstance(actor, AbstractBaseUser) and not selectors.dataset_list(user=actor).filter(pk=dataset.pk).exists():
        raise NotPermitted(f"{actor.get_username()} may not run the rules of {dataset} (not in scope)")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    rules = datasets.parse_rules(dataset.rules)
    report = datasets.evaluate(read_dataset_frame(dataset), rules, dataset.time_column)
    before = {"validation_status": dataset.validation_status}
    dataset.validation_status = ValidationStatus.PASSED if report["passed"] else ValidationStatus.FAILED
    dataset.validation_result = report
    dataset.validated_at = timezone.now()
    dataset.save(update_fields=["validation_status", "validation_result", "validated_at", "updated_at"])
    record_event(
        actor=actor,
        action="dataset.validated",
        target=dataset,
        before=before,
        after={"validation_status": dataset.validation_status, "result": report},
    )
    return dataset


def _check_dataset_roles(version: ModelVersion) -> None:
    errors: dict[str, list[str]] = {}
    training = version.training_dataset_id
    if training and version.test_dataset_id == training:
        errors["test_dataset"] = ["the test dataset must differ from the training dataset"]
    if training and version.validation_dataset_id == training:
        errors["validation_dataset"] = ["the validation dataset must differ from the training dataset"]
    if errors:
        raise ValidationError(errors)


def _check_features(version: ModelVersion) -> None:
    """The pipeline exists, the target is one it offers (any column for ``columns``), the
    artifact's features are ones the pipeline produces, and the target is not a feature.

    A blank target is accepted at registration (the evaluation design may come later); a risk
    assessment refuses a version without one."""
    if version.feature_pipeline not in features.PIPELINES:
        raise ValidationError(
            {
                "feature_pipeline": [
                    f"unknown pipeline {version.feature_pipeline!r} (known: {', '.join(features.PIPELINES)})"
                ]
            }
        )
    pipeline = features.PIPELINES[version.feature_pipeline]
    errors: dict[str, list[str]] = {}
    if version.target:
        problem = pipeline.target_error(version.target)
        if problem:
            errors["target"] = [problem]
        elif version.target in (version.feature_names or []):
            errors["target"] = [
                f"{version.target!r} is also one of the artifact's features (the model would see its answer)"
            ]
    if pipeline.name == "daily_prices_v1":
        unknown = [name for name in version.feature_names or [] if name not in features.FEATURES]
        if unknown:
            errors["feature_pipeline"] = [
                f"the artifact expects features {', '.join(unknown)}, which pipeline {pipeline.name} does not produce "
                f"(it produces {', '.join(features.FEATURES)})"
            ]
    if errors:
        raise ValidationError(errors)


@audited_change()
def model_version_create(
    *,
    actor: Actor,
    model: Model,
    version: str,
    artifact: bytes,
    framework: str = "",
    hyperparameters: dict[str, Any] | None = None,
    code_repository: str = "",
    code_commit: str = "",
    training_dataset: Dataset | None = None,
    validation_dataset: Dataset | None = None,
    test_dataset: Dataset | None = None,
    feature_pipeline: str = features.DEFAULT_PIPELINE,
    target: str = "",
    created_by: AbstractBaseUser | None = None,
    reason: str = "",
) -> ModelVersion:
    """Register a trained artifact as a new version (status draft) after checking it is safe.

    ``feature_pipeline`` (models_registry.features) says how the datasets become the model's
    features and ``target`` what it predicts; both are what a risk assessment rebuilds.
    """
    _require_permission(actor, "models_registry.add_modelversion", "register model versions")
    _require_scope(actor, selectors.model_list, model, "add a version to")
    info = artifacts.inspect_artifact(artifact)
    if info.family is not None and info.family != model.model_type:
        raise InvalidArtifact(
            f"the artifact is a {info.estimator_class} ({info.family.label.lower()}) but model {model.name!r} "
            f"is registered as {model.get_model_type_display().lower()}"
        )
    author = created_by or (actor if isinstance(actor, AbstractBaseUser) else None)
    if author is None:
        raise ValidationError({"created_by": ["a version needs a person who created it"]})
    model_version = ModelVersion(
        model=model,
        version=version,
        artifact_sha256=info.sha256,
        artifact_size=info.size,
        estimator_class=info.estimator_class,
        feature_names=info.feature_names,
        n_features=info.n_features,
        framework=framework or _default_framework(),
        hyperparameters=hyperparameters if hyperparameters is not None else {},
        code_repository=code_repository,
        code_commit=code_commit,
        training_dataset=training_dataset,
        validation_dataset=validation_dataset,
        test_dataset=test_dataset,
        feature_pipeline=feature_pipeline,
        target=(target or "").strip(),
        created_by=author,
    )
    model_version.artifact.name = f"artifacts/{info.sha256}.skops"
    if not isinstance(model_version.hyperparameters, dict):
        raise ValidationError({"hyperparameters": ["must be a JSON object"]})
    _check_dataset_roles(model_version)
    _check_features(model_version)
    model_version.full_clean()
    _store(artifact, folder="artifacts", suffix=".skops", sha256=info.sha256)
    model_version.save()
    record_event(
        actor=actor, action="model_version.created", target=model_version, after=snapshot(model_version), reason=reason
    )
    return model_version


def _default_framework() -> str:
    return f"scikit-learn {sklearn.__version__}"


@audited_change()
def model_version_update(
    *, actor: Actor, version: ModelVersion, changes: dict[str, Any], reason: str = ""
) -> ModelVersion:
    """Change a version's metadata while it is still in draft or development."""
    _require_permission(actor, "models_registry.change_modelversion", "change model versions")
    _require_scope(actor, selectors.model_version_list, version, "change")
    _refuse_unknown(changes, VERSION_UPDATABLE_FIELDS, "model version")
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status not in VERSION_EDITABLE_STATUSES:
        raise Conflict(
            f"version {version} is {version.get_status_display().lower()}; only draft or in-development versions "
            "can be changed (register a new version instead)"
        )
    before = snapshot(version)
    for field, value in changes.items():
        setattr(version, field, value)
    if not isinstance(version.hyperparameters, dict):
        raise ValidationError({"hyperparameters": ["must be a JSON object"]})
    _check_dataset_roles(version)
    _check_features(version)
    version.full_clean()
    if not _changed(before, snapshot(version)):
        return version  # Saving would bump updated_at: a write with nothing to audit.
    version.save()
    after = snapshot(version)
    record_event(actor=actor, action="model_version.updated", target=version, before=before, after=after, reason=reason)
    return version


def model_version_transition(*, actor: Actor, version: ModelVersion, to_status: str, reason: str = "") -> ModelVersion:
    """Move a version along the lifecycle; anything the state machine or segregation of duties
    forbids is refused, and a segregation refusal is itself recorded (it outlives the refusal)."""
    _require_permission(actor, "models_registry.transition_modelversion", "change lifecycle status")
    if isinstance(actor, AbstractBaseUser):
        if not selectors.model_version_list(user=actor).filter(pk=version.pk).exists():
            raise NotPermitted(f"{actor.get_username()} may not change the lifecycle of {version} (not in scope)")
        version = ModelVersion.objects.select_related("model").get(pk=version.pk)
        rule = segregation.transition_refusal(
            user=actor, version=version, transition=lifecycle.transition_for(version.status, to_status)
        )
        if rule is not None:
            _refuse_by_rule(actor=actor, rule=rule, target=version, attempted=f"{version.status} -> {to_status}")
    _policy_gate(actor=actor, version=version, to_status=to_status, reason=reason)
    return _transition(actor=actor, version=version, to_status=to_status, reason=reason)


def _policy_gate(*, actor: Actor, version: ModelVersion, to_status: str, reason: str) -> None:
    """Once a policy set is in force, every transition is evaluated against it first; the
    decision is stored (and audited) in its own transaction, so a refusal keeps its record.

    Refused: a denial (``PolicyDenied`` with each rule's message and references) and a
    transition still needing approvals (``SignOffRequired``: it happens only through a
    sign-off request). With no set in force, the state machine and segregation of duties
    decide alone (docs/signoffs.md)."""
    from governance import services as governance_services
    from governance.errors import PolicyDenied, SignOffRequired
    from governance.policy import store as policy_store

    if policy_store.active_policy_set() is None:
        return
    trigger = f"{lifecycle.transition_for(version.status, to_status).source.value}->{to_status}"
    decision = governance_services.policy_evaluate(actor=actor, version=version, trigger=trigger, reason=reason)
    if decision.allowed:
        return
    if decision.outcome == decision.Outcome.REQUIRE_APPROVAL:
        needed = [item for item in decision.required_approvals if not item["satisfied"]]
        raise SignOffRequired(
            f"{trigger} of {version} needs approvals ("
            + "; ".join(f"{item['rule']}: {item['count']} of {', '.join(item['roles'])}" for item in needed)
            + "): submit a sign-off request",
            detail={"decision": decision.pk, "required_approvals": needed},
        )
    denied = [reason for reason in decision.reasons() if reason["outcome"] == "deny"]
    raise PolicyDenied(
        f"the policies in force deny {trigger} of {version}: "
        + " ".join(f"{item['id']}: {item['message']}" for item in denied),
        detail={"decision": decision.pk, "reasons": denied},
    )


def model_version_transition_signed_off(
    *, actor: Actor, version: ModelVersion, to_status: str, decision: Any, reason: str
) -> ModelVersion:
    """The transition a completed sign-off request asked for, made as its last approver.

    Only the sign-off workflow calls this, inside its own transaction, with the policy
    decision that allowed this very transition of this version at the last approval; the
    approvers' eligibility and segregation of duties were checked there."""
    trigger = f"{version.status}->{to_status}"
    if not (decision.allowed and decision.version_id == version.pk and decision.trigger == trigger):
        raise Conflict(f"decision {decision.pk} does not allow {trigger} of {version}")
    return _transition(actor=actor, version=version, to_status=to_status, reason=reason)


# Safety actions move versions without a sign-off: stopping trading must never wait for one,
# and a rollback returns to the target its deployment's sign-off already approved.
_DEPLOYMENT_SAFETY_MOVES = frozenset({("deployed", "suspended"), ("approved", "deployed"), ("suspended", "deployed")})


def model_version_transition_for_deployment(
    *, actor: Actor, version: ModelVersion, to_status: str, reason: str
) -> ModelVersion:
    """A lifecycle move made by a deployment safety action (kill switch, rollback), inside
    that action's transaction; the action checked who may take it."""
    if (version.status, to_status) not in _DEPLOYMENT_SAFETY_MOVES:
        raise InvalidTransition(f"a deployment action cannot move {version} from {version.status} to {to_status}")
    return _transition(actor=actor, version=version, to_status=to_status, reason=reason)


@audited_change()
def _record_refusal(*, actor: Actor, rule: segregation.Rule, target: Any, attempted: str) -> None:
    record_event(
        actor=actor,
        action="sod.refused",
        target=target,
        after={"rule": rule.id, "title": rule.title, "references": list(rule.references), "attempted": attempted},
    )


def _refuse_by_rule(*, actor: Actor, rule: segregation.Rule, target: Any, attempted: str) -> None:
    _record_refusal(actor=actor, rule=rule, target=target, attempted=attempted)
    raise NotPermitted(f"{rule.id}: {rule.title}", detail={"rule": rule.id})


@audited_change()
def _transition(*, actor: Actor, version: ModelVersion, to_status: str, reason: str) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    transition = lifecycle.transition_for(version.status, to_status)
    before = {"status": version.status}
    version.status = transition.target
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "status_changed_at"])
    record_event(
        actor=actor,
        action=f"model_version.{transition.name}",
        target=version,
        before=before,
        after={"status": version.status, "transition": transition.name},
        reason=reason,
    )
    return version


# --- Access: grants, validator assignment, engagements ---------------------------------------

MODEL_GRANTABLE = frozenset({"view_model", "change_model"})
DATASET_GRANTABLE = frozenset({"view_dataset", "change_dataset"})


def _may_manage_access(actor: Actor, owner_id: int | None) -> bool:
    """Owners share their own objects; administrators (who manage users) share anything."""
    if not isinstance(actor, AbstractBaseUser):
        return True
    return actor.is_superuser or actor.pk == owner_id or actor.has_perm("auth.change_user")


def _grant(*, actor: Actor, grant_model: type, user: AbstractBaseUser, obj: Any, codename: str, reason: str) -> Any:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from governance.roles import Role

    # A grant has no end: regulators see only what an engagement shares, for its duration.
    if user.groups.filter(name=Role.REGULATOR.value).exists():
        raise ValidationError(
            {"user": [f"{user.get_username()} is a regulator: share with regulators through an engagement"]}
        )
    permission = Permission.objects.get(content_type=ContentType.objects.get_for_model(obj), codename=codename)
    grant, created = grant_model.objects.get_or_create(user=user, permission=permission, content_object=obj)
    if created:
        record_event(
            actor=actor,
            action="access.granted",
            target=grant,
            after={
                "user": user.pk,
                "username": user.get_username(),
                "permission": codename,
                "object_type": obj._meta.label_lower,
                "object_id": obj.pk,
            },
            reason=reason,
        )
    return grant


def _revoke(*, actor: Actor, grant_model: type, user: AbstractBaseUser, obj: Any, codename: str, reason: str) -> int:
    grants = list(grant_model.objects.filter(user=user, permission__codename=codename, content_object=obj))
    for grant in grants:
        record_event(
            actor=actor,
            action="access.revoked",
            target=grant,
            before={
                "user": user.pk,
                "username": user.get_username(),
                "permission": codename,
                "object_type": obj._meta.label_lower,
                "object_id": obj.pk,
            },
            reason=reason,
        )
    grant_model.objects.filter(pk__in=[g.pk for g in grants]).delete()
    return len(grants)


def _check_grantable(codename: str, allowed: frozenset[str]) -> None:
    if codename not in allowed:
        raise ValidationError({"permission": [f"must be one of {', '.join(sorted(allowed))}"]})


@audited_change()
def model_access_grant(*, actor: Actor, user: AbstractBaseUser, model: Model, permission: str, reason: str = "") -> Any:
    """Let ``user`` see (``view_model``) or change (``change_model``) one model."""
    _check_grantable(permission, MODEL_GRANTABLE)
    if not _may_manage_access(actor, model.owner_id):
        raise NotPermitted("only the model's owner or an administrator may share it")
    return _grant(actor=actor, grant_model=ModelGrant, user=user, obj=model, codename=permission, reason=reason)


@audited_change()
def model_access_revoke(
    *, actor: Actor, user: AbstractBaseUser, model: Model, permission: str, reason: str = ""
) -> int:
    _check_grantable(permission, MODEL_GRANTABLE | {"validate_model"})
    if permission == "validate_model":
        # Unassigning a validator needs the authority that assigns one, never the model's owner.
        _require_validator_manager(actor, "unassign validators")
    elif not _may_manage_access(actor, model.owner_id):
        raise NotPermitted("only the model's owner or an administrator may revoke access to it")
    return _revoke(actor=actor, grant_model=ModelGrant, user=user, obj=model, codename=permission, reason=reason)


@audited_change()
def dataset_access_grant(
    *, actor: Actor, user: AbstractBaseUser, dataset: Dataset, permission: str, reason: str = ""
) -> Any:
    """Let ``user`` see or change one dataset (the only way into a restricted one)."""
    _check_grantable(permission, DATASET_GRANTABLE)
    if not _may_manage_access(actor, dataset.owner_id):
        raise NotPermitted("only the dataset's owner or an administrator may share it")
    return _grant(actor=actor, grant_model=DatasetGrant, user=user, obj=dataset, codename=permission, reason=reason)


@audited_change()
def dataset_access_revoke(
    *, actor: Actor, user: AbstractBaseUser, dataset: Dataset, permission: str, reason: str = ""
) -> int:
    _check_grantable(permission, DATASET_GRANTABLE)
    if not _may_manage_access(actor, dataset.owner_id):
        raise NotPermitted("only the dataset's owner or an administrator may revoke access to it")
    return _revoke(actor=actor, grant_model=DatasetGrant, user=user, obj=dataset, codename=permission, reason=reason)


def validation_assign(*, actor: Actor, model: Model, validator: AbstractBaseUser, reason: str = "") -> Any:
    """Assign an independent validator to a model (an object grant ``validate_model``)."""
    _require_validator_manager(actor, "assign validators")
    rule = segregation.assignment_refusal(validator=validator, model=model)
    if rule is not None:
        _refuse_by_rule(actor=actor, rule=rule, target=model, attempted=f"assign {validator.get_username()}")
    return _assign_validator(actor=actor, model=model, validator=validator, reason=reason)


def _require_validator_manager(actor: Actor, action: str) -> None:
    """``assign_validator``: compliance officers and administrators. Seeing every model
    (``oversee_model``) is not enough: internal auditors and risk managers change nothing."""
    _require_permission(actor, "models_registry.assign_validator", action)


@audited_change()
def _assign_validator(*, actor: Actor, model: Model, validator: AbstractBaseUser, reason: str) -> Any:
    return _grant(
        actor=actor, grant_model=ModelGrant, user=validator, obj=model, codename="validate_model", reason=reason
    )


@audited_change()
def engagement_create(
    *,
    actor: Actor,
    regulator: AbstractBaseUser,
    authority: str,
    purpose: str,
    starts_at: Any,
    ends_at: Any,
    models: list[Model],
    reason: str = "",
) -> Engagement:
    """Share models with a regulator for a bounded time."""
    from governance.roles import Role

    _require_permission(actor, "models_registry.add_engagement", "share models with regulators")
    if not regulator.groups.filter(name=Role.REGULATOR.value).exists():
        raise ValidationError({"regulator": [f"{regulator.get_username()} does not hold the regulator role"]})
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None or timezone.is_naive(value):
            raise ValidationError({name: ["must be a timezone-aware date and time"]})
    if not models:
        raise ValidationError({"models": ["share at least one model"]})
    engagement = Engagement(
        regulator=regulator,
        authority=authority,
        purpose=purpose,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor if isinstance(actor, AbstractBaseUser) else regulator,
    )
    if engagement.ends_at <= engagement.starts_at:
        raise ValidationError({"ends_at": ["must be after starts_at"]})
    engagement.full_clean()
    engagement.save()
    for model in models:
        EngagementModel.objects.create(engagement=engagement, model=model)
    after = snapshot(engagement) | {"models": sorted(m.pk for m in models)}
    record_event(actor=actor, action="engagement.created", target=engagement, after=after, reason=reason)
    for link in engagement.scope.all():
        record_event(actor=actor, action="engagement.model_shared", target=link, after=snapshot(link))
    return engagement


@audited_change()
def engagement_revoke(*, actor: Actor, engagement: Engagement, reason: str) -> Engagement:
    """End a regulator's access now."""
    _require_permission(actor, "models_registry.change_engagement", "revoke engagements")
    if not reason.strip():
        raise ValidationError({"reason": ["say why the engagement is revoked"]})
    engagement = Engagement.objects.select_for_update().get(pk=engagement.pk)
    if engagement.revoked_at is not None:
        raise Conflict(f"engagement {engagement.pk} was already revoked at {engagement.revoked_at:%Y-%m-%d %H:%M} UTC")
    before = snapshot(engagement)
    engagement.revoked_at = timezone.now()
    engagement.save(update_fields=["revoked_at"])
    record_event(
        actor=actor,
        action="engagement.revoked",
        target=engagement,
        before=before,
        after=snapshot(engagement),
        reason=reason,
    )
    return engagement


# --- Data access logging -------------------------------------------------------------------------

LOGGED_CLASSIFICATIONS = frozenset({"confidential", "restricted"})


@audited_change()
def dataset_access_log(*, actor: Actor, dataset_id: Any, kind: str) -> bool:
    """Record a read or download of a confidential or restricted dataset, or a denied attempt.

    Returns whether ``actor`` may see the dataset. Public and internal datasets are not
    logged (every member of staff may read them); an unknown id records nothing.
    """
    try:
        dataset = Dataset.objects.only("pk", "name", "classification").get(pk=int(dataset_id))
    except (Dataset.DoesNotExist, TypeError, ValueError):
        return False
    allowed = isinstance(actor, SystemActor) or selectors.dataset_list(user=actor).filter(pk=dataset.pk).exists()
    if dataset.classification in LOGGED_CLASSIFICATIONS:
        record_event(
            actor=actor,
            action=f"dataset.{kind}" if allowed else "dataset.access_denied",
            target=dataset,
            after={"classification": dataset.classification, "attempted": kind},
        )
    return allowed


def dataset_content(*, actor: Actor, dataset: Dataset) -> bytes:
    """The dataset's stored bytes, checked against its SHA-256; the download is logged."""
    with default_storage.open(dataset.file.name, "rb") as handle:
        content = handle.read()
    if _sha256(content) != dataset.content_sha256:
        raise Conflict(f"the stored content of dataset {dataset.name!r} no longer matches its SHA-256")
    dataset_access_log(actor=actor, dataset_id=dataset.pk, kind="download")
    return content


# --- Risk assessments and post-model adjustments ------------------------------------------------
# In their own modules for length; still services, the one place that writes them.
from models_registry.adjustment_services import (  # noqa: E402
    adjustment_create as adjustment_create,
)
from models_registry.adjustment_services import (  # noqa: E402
    adjustment_withdraw as adjustment_withdraw,
)
from models_registry.assessment_services import (  # noqa: E402
    assessment_cancel as assessment_cancel,
)
from models_registry.assessment_services import (  # noqa: E402
    assessment_execute as assessment_execute,
)
from models_registry.assessment_services import (  # noqa: E402
    assessment_request as assessment_request,
)
