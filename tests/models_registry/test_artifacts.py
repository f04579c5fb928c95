"""Artifact safety: only skops archives of trusted types are ever loaded; pickles never run."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import shlex
import zipfile
from decimal import Decimal
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.core.files.storage import default_storage
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from audit.models import Event
from governance.errors import DomainError, InvalidArtifact, PayloadTooLarge, UnsafeArtifact
from models_registry import artifacts, services
from models_registry.choices import ModelType
from models_registry.models import ModelVersion

FEATURES = ["ret_1", "ret_5", "vol_20", "volume_z"]


# --------------------------------------------------------------------------- helpers


class MarkerPayload:
    """Unpickling this runs a shell command that creates ``path``: a real, live exploit."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.path))}",))


class HouseClassifier(LogisticRegression):
    """An in-house subclass: not one of skops' default trusted types."""


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    label = (x["ret_1"] + 0.5 * x["vol_20"] > 0).astype(int)
    target = 0.3 * x["ret_1"] - 0.2 * x["ret_5"]
    return x, label, target


def _joblib_bytes(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, **kwargs)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _counts() -> tuple[int, int]:
    return ModelVersion.objects.count(), Event.objects.count()


@pytest.fixture
def fitted_forest():
    x, label, _ = _frame()
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, label)


# --------------------------------------------------------------------------- pickles


def test_the_pickle_payload_is_live_when_unpickled(tmp_path):
    """Control: the exploit really does run when unpickled, so the refusal tests below mean something."""
    marker = tmp_path / "control-pwned"
    pickle.loads(pickle.dumps(MarkerPayload(marker), protocol=4))  # deliberate: proves the payload is live
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(MarkerPayload(marker), protocol=protocol)

    with pytest.raises(UnsafeArtifact) as excinfo:
        artifacts.inspect_artifact(payload)

    assert "pickle" in excinfo.value.message
    assert f"protocol {protocol}" in excinfo.value.message
    assert excinfo.value.status == 400
    assert excinfo.value.as_dict()["error"] == "unsafe_artifact"
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 5])
def test_load_artifact_also_refuses_a_malicious_pickle(tmp_path, protocol):
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafeArtifact, match="pickle"):
        artifacts.load_artifact(pickle.dumps(MarkerPayload(marker), protocol=protocol))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_text_pickle_protocols_are_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    with pytest.raises(DomainError):
        artifacts.inspect_artifact(pickle.dumps(MarkerPayload(marker), protocol=protocol))
    assert not marker.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_model_version_create_refuses_a_malicious_pickle_and_stores_nothing(tmp_path, owner, make_model, protocol):
    model = make_model()
    marker = tmp_path / "pwned"
    payload = pickle.dumps(MarkerPayload(marker), protocol=protocol)
    before = _counts()

    with pytest.raises(UnsafeArtifact, match="pickle"):
        services.model_version_create(actor=owner, model=model, version="1.0.0", artifact=payload)

    assert not marker.exists()
    assert _counts() == before
    assert not Event.objects.filter(action__startswith="model_version.").exists()
    assert not default_storage.exists(f"artifacts/{hashlib.sha256(payload).hexdigest()}.skops")


# --------------------------------------------------------------------------- joblib


@pytest.mark.parametrize(
    "compress",
    [0, 3, True, 9, ("zlib", 1), ("zlib", 6), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)],
    ids=lambda c: str(c),
)
def test_joblib_dumped_estimator_is_refused_as_unsafe(fitted_forest, compress):
    data = _joblib_bytes(fitted_forest, compress=compress)

    with pytest.raises(UnsafeArtifact) as excinfo:
        artifacts.inspect_artifact(data)

    assert "pickle" in excinfo.value.message
    assert "skops" in excinfo.value.message  # says what to do instead


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_dumped_exploit_never_runs(tmp_path, compress):
    marker = tmp_path / "pwned"
    data = _joblib_bytes(MarkerPayload(marker), compress=compress)
    with pytest.raises(UnsafeArtifact):
        artifacts.inspect_artifact(data)
    assert not marker.exists()


@pytest.mark.django_db
def test_model_version_create_refuses_joblib_and_stores_nothing(owner, make_model):
    model = make_model(model_type="random_forest")
    x, label, _ = _frame()
    data = _joblib_bytes(RandomForestClassifier(n_estimators=3, random_state=0).fit(x, label), compress=3)
    before = _counts()

    with pytest.raises(UnsafeArtifact):
        services.model_version_create(actor=owner, model=model, version="1.0.0", artifact=data)

    assert _counts() == before


# --------------------------------------------------------------------------- untrusted skops types


def test_skops_with_an_untrusted_custom_type_is_refused_naming_it():
    x, label, _ = _frame()
    data = sio.dumps(HouseClassifier().fit(x, label))
    name = _type_name(HouseClassifier)

    with pytest.raises(UnsafeArtifact) as excinfo:
        artifacts.inspect_artifact(data)

    assert name in excinfo.value.message
    assert excinfo.value.detail["untrusted_types"] == [name]
    assert excinfo.value.as_dict()["untrusted_types"] == [name]


def test_skops_with_an_untrusted_type_is_refused_by_load_artifact_too():
    x, label, _ = _frame()
    with pytest.raises(UnsafeArtifact, match="HouseClassifier"):
        artifacts.load_artifact(sio.dumps(HouseClassifier().fit(x, label)))


def test_skops_referencing_os_system_is_refused_naming_it():
    # Never fitted: fitting a FunctionTransformer would call the function.
    data = sio.dumps(make_pipeline(FunctionTransformer(os.system, check_inverse=False), LogisticRegression()))
    name = f"{os.system.__module__}.{os.system.__name__}"

    with pytest.raises(UnsafeArtifact) as excinfo:
        artifacts.inspect_artifact(data)

    assert name in excinfo.value.message
    assert name in excinfo.value.detail["untrusted_types"]


def test_custom_type_is_accepted_once_configured_as_trusted(settings):
    x, label, _ = _frame()
    data = sio.dumps(HouseClassifier().fit(x, label))
    name = _type_name(HouseClassifier)
    settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES = [*settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES, name]

    try:
        loaded = artifacts.load_artifact(data)
    except InvalidArtifact as exc:  # pragma: no cover - depends on the test module being importable
        pytest.skip(f"the test-module type does not load through skops here: {exc}")
    info = artifacts.inspect_artifact(data)

    assert type(loaded).__name__ == "HouseClassifier"
    assert info.estimator_class == name
    assert info.feature_names == FEATURES
    # A trusted subclass keeps its scikit-learn family: it cannot dodge the model-type check.
    assert info.family == ModelType.LOGISTIC_REGRESSION
    np.testing.assert_array_equal(loaded.predict(x), HouseClassifier().fit(x, label).predict(x))


def test_trusting_one_type_does_not_trust_others(settings):
    """The setting is an allow-list by exact name, not a switch that disables the check."""
    settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES = [
        *settings.GOVERNANCE_TRUSTED_ARTIFACT_TYPES,
        "tests.models_registry.test_artifacts.SomethingElse",
    ]
    x, label, _ = _frame()
    with pytest.raises(UnsafeArtifact) as excinfo:
        artifacts.inspect_artifact(sio.dumps(HouseClassifier().fit(x, label)))
    assert excinfo.value.detail["untrusted_types"] == [_type_name(HouseClassifier)]


# --------------------------------------------------------------------------- real skops estimators


REAL_ESTIMATORS = [
    pytest.param(LinearRegression, "target", ModelType.LINEAR_REGRESSION, "LinearRegression", id="linear"),
    pytest.param(
        lambda: Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
        "label",
        ModelType.LOGISTIC_REGRESSION,
        "LogisticRegression",
        id="logistic-pipeline",
    ),
    pytest.param(
        lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
        "label",
        ModelType.DECISION_TREE,
        "DecisionTreeClassifier",
        id="tree",
    ),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "label",
        ModelType.RANDOM_FOREST,
        "RandomForestClassifier",
        id="forest",
    ),
    pytest.param(SVC, "label", ModelType.SVM, "SVC", id="svc"),
    pytest.param(
        lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0),
        "label",
        ModelType.DEEP_LEARNING,
        "MLPClassifier",
        id="mlp",
    ),
]


@pytest.mark.parametrize(("build", "target", "family", "class_name"), REAL_ESTIMATORS)
def test_real_skops_estimators_are_inspected_and_load(build, target, family, class_name):
    x, label, regression_target = _frame()
    y = label if target == "label" else regression_target
    estimator = build().fit(x, y)
    data = sio.dumps(estimator)

    info = artifacts.inspect_artifact(data)

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.family == family
    assert info.estimator_class.rstrip("]").rsplit(".", 1)[-1] == class_name
    assert info.n_features == len(FEATURES)
    assert info.feature_names == FEATURES

    loaded = artifacts.load_artifact(data)
    predictions = loaded.predict(x)
    assert len(predictions) == len(x)
    np.testing.assert_allclose(predictions, estimator.predict(x))


def test_pipeline_estimator_class_names_pipeline_and_final_step():
    x, label, _ = _frame()
    data = sio.dumps(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, label))
    info = artifacts.inspect_artifact(data)
    assert info.estimator_class == "sklearn.pipeline.Pipeline[sklearn.linear_model._logistic.LogisticRegression]"


def test_estimator_fitted_on_a_plain_array_has_no_feature_names():
    x, label, _ = _frame()
    info = artifacts.inspect_artifact(sio.dumps(LogisticRegression().fit(x.to_numpy(), label)))
    assert info.n_features == len(FEATURES)
    assert info.feature_names == []


def test_skops_object_without_predict_is_refused():
    x, _, _ = _frame()
    with pytest.raises(InvalidArtifact, match="predict"):
        artifacts.inspect_artifact(sio.dumps(StandardScaler().fit(x)))


# --------------------------------------------------------------------------- malformed and oversized


def test_random_bytes_are_not_an_artifact():
    data = random.Random(7).randbytes(4096)
    assert data[:1] != b"\x80"  # not accidentally pickle-shaped
    with pytest.raises(InvalidArtifact, match="not a skops archive"):
        artifacts.inspect_artifact(data)


def test_empty_bytes_are_not_an_artifact():
    with pytest.raises(InvalidArtifact, match="empty"):
        artifacts.inspect_artifact(b"")


def test_zip_without_schema_json_is_not_an_artifact():
    data = _zip({"model.pkl": pickle.dumps({"w": [1, 2, 3]}), "README": b"hello"})
    with pytest.raises(InvalidArtifact, match=r"schema\.json"):
        artifacts.inspect_artifact(data)


def test_zip_with_unreadable_schema_is_invalid():
    with pytest.raises(InvalidArtifact, match="cannot be read"):
        artifacts.inspect_artifact(_zip({"schema.json": b"{ this is not json"}))


def test_truncated_skops_archive_is_invalid():
    x, label, _ = _frame()
    data = sio.dumps(LogisticRegression().fit(x, label))
    with pytest.raises(InvalidArtifact):
        artifacts.inspect_artifact(data[: len(data) // 2])


def test_artifact_over_the_size_limit_is_refused_with_413(settings):
    x, label, _ = _frame()
    data = sio.dumps(LogisticRegression().fit(x, label))
    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = len(data) - 1

    with pytest.raises(PayloadTooLarge) as excinfo:
        artifacts.inspect_artifact(data)

    assert excinfo.value.status == 413
    assert f"{len(data) - 1:,}" in excinfo.value.message

    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = len(data)
    assert artifacts.inspect_artifact(data).size == len(data)  # exactly at the limit is fine


def test_size_limit_applies_before_the_content_is_looked_at(settings, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(MarkerPayload(marker), protocol=4)
    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = 10
    with pytest.raises(PayloadTooLarge):
        artifacts.inspect_artifact(payload)
    assert not marker.exists()


def test_zip_bomb_is_refused(settings):
    data = _zip({"schema.json": b"{}", "padding.bin": b"\0" * 2_000_000})
    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = 50_000
    assert len(data) < 50_000
    with pytest.raises(PayloadTooLarge, match="unpacks"):
        artifacts.inspect_artifact(data)


@pytest.mark.django_db
def test_model_version_create_refuses_oversized_artifact_and_stores_nothing(settings, owner, make_model):
    model = make_model()
    x, label, _ = _frame()
    data = sio.dumps(LogisticRegression().fit(x, label))
    settings.GOVERNANCE_MAX_ARTIFACT_BYTES = 100
    before = _counts()
    with pytest.raises(PayloadTooLarge):
        services.model_version_create(actor=owner, model=model, version="1.0.0", artifact=data)
    assert _counts() == before


# --------------------------------------------------------------------------- family vs model type


@pytest.mark.django_db
def test_family_contradicting_the_model_type_is_refused(owner, make_model, fitted_forest):
    model = make_model(name="eq-logit", model_type="logistic_regression")
    data = sio.dumps(fitted_forest)
    before = _counts()

    with pytest.raises(InvalidArtifact) as excinfo:
        services.model_version_create(actor=owner, model=model, version="1.0.0", artifact=data)

    message = excinfo.value.message
    assert "RandomForestClassifier" in message
    assert "random forest" in message
    assert "logistic regression" in message
    assert "eq-logit" in message
    assert _counts() == before
    assert not default_storage.exists(f"artifacts/{hashlib.sha256(data).hexdigest()}.skops")


@pytest.mark.django_db
def test_family_matching_the_model_type_is_registered(owner, make_model, fitted_forest):
    model = make_model(name="eq-forest", model_type="random_forest", materiality=Decimal("1000000.00"))
    data = sio.dumps(fitted_forest)

    version = services.model_version_create(actor=owner, model=model, version="1.0.0", artifact=data)

    version.refresh_from_db()
    assert version.artifact_sha256 == hashlib.sha256(data).hexdigest()
    assert version.artifact_size == len(data)
    assert version.estimator_class == "sklearn.ensemble._forest.RandomForestClassifier"
    assert version.feature_names == FEATURES
    assert version.n_features == len(FEATURES)
    assert version.status == "draft"
    assert Event.objects.filter(action="model_version.created", object_id=str(version.pk)).count() == 1
    with default_storage.open(version.artifact.name, "rb") as handle:
        stored = handle.read()
    assert stored == data
    predictions = artifacts.load_artifact(stored).predict(_frame()[0])
    assert set(np.unique(predictions)) <= {0, 1}


@pytest.mark.django_db
def test_pipeline_family_is_its_final_step(owner, make_model):
    x, label, _ = _frame()
    data = sio.dumps(make_pipeline(StandardScaler(), SVC()).fit(x, label))
    logistic = make_model(name="eq-logit", model_type="logistic_regression")
    with pytest.raises(InvalidArtifact, match="support vector machine"):
        services.model_version_create(actor=owner, model=logistic, version="1.0.0", artifact=data)

    svm = make_model(name="eq-svm", model_type="svm")
    version = services.model_version_create(actor=owner, model=svm, version="1.0.0", artifact=data)
    assert version.estimator_class == "sklearn.pipeline.Pipeline[sklearn.svm._classes.SVC]"
