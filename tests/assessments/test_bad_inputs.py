"""Every bad input ends the assessment failed, naming the cause, with no result stored."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import skops.io as sio
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from sklearn.linear_model import LogisticRegression

from audit.models import Event
from governance.models import Finding
from models_registry import assessment as pipeline
from models_registry import features
from models_registry.assessment_services import load_inputs
from tests.assessments.conftest import RULES, slice_prices, to_csv
from tests.factories import force_fields

pytestmark = pytest.mark.django_db


def assert_failed(assessment, code: str, *words: str) -> None:
    assert assessment.status == "failed"
    assert assessment.error["code"] == code, assessment.error
    for word in words:
        assert word in assessment.error["message"], assessment.error["message"]
    assert assessment.metrics is None and assessment.results is None
    assert not Finding.objects.filter(assessment=assessment).exists()
    assert Event.objects.filter(
        action="risk_assessment.failed", object_type="models_registry.riskassessment", object_id=str(assessment.pk)
    ).exists()


def _replace_artifact(version, content: bytes):
    """Simulate a stored artifact that is not what skops wrote (a pickle, a truncated file).

    Stored under a name of its own: the version's file is shared, content-addressed, with every
    other test that trains the same estimator (tests/assessments/conftest.py reuses the bytes)."""
    sha256 = hashlib.sha256(content).hexdigest()
    name = default_storage.save(f"artifacts/replaced-{sha256}.skops", ContentFile(content))
    return force_fields(version, artifact=name, artifact_sha256=sha256)


def test_a_pickle_artifact_is_refused_never_unpickled(assessable, owner, run_now):
    version = _replace_artifact(assessable(), pickle.dumps(LogisticRegression()))
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    assert_failed(assessment, "unsafe_artifact", "pickle")


def test_a_corrupted_artifact_fails(assessable, owner, run_now):
    version = assessable()
    good = version.artifact.open("rb").read()
    version = _replace_artifact(version, good[: len(good) // 2])
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    assert assessment.status == "failed" and assessment.error["code"] in {"invalid_artifact", "unsafe_artifact"}
    assert assessment.metrics is None


def _feature_csv(role: str, *, drop: tuple[str, ...] = (), rows: slice | None = None) -> bytes:
    built = features.build_features(slice_prices(role)).drop(columns=["Adj Close", *drop])
    return to_csv(built if rows is None else built.iloc[rows])


@pytest.fixture
def columns_version(make_model, make_dataset, owner):
    """A version of the 'columns' pipeline: the datasets hold the features and the target."""

    def make(test_content: bytes, rules: dict | None = None):
        built = features.build_features(slice_prices("training"))
        model = LogisticRegression(max_iter=500).fit(built[features.FEATURES], built["next_up"])
        test = make_dataset(name="features-test", content=test_content, rules=rules or {})
        from models_registry import services

        return services.model_version_create(
            actor=owner,
            model=make_model(name="columns-model"),
            version="1.0.0",
            artifact=sio.dumps(model),
            target="next_up",
            test_dataset=test,
        )

    return make


def test_features_the_model_expects_must_be_in_the_dataset(columns_version, owner, run_now):
    version = columns_version(_feature_csv("test", drop=("ret_5",)))
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    assert_failed(assessment, "feature_mismatch", "ret_5")


def test_a_too_small_test_set_fails(assessable, owner, make_dataset, run_now):
    tiny = make_dataset(name="nvda-tiny", content=to_csv(slice_prices("test").iloc[:75]), rules=RULES)
    version = assessable(test_dataset=tiny)
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    assert_failed(assessment, "test_set_too_small", "at least 30")


def test_an_empty_test_set_after_the_warm_up_fails(assessable, owner, make_dataset, run_now):
    tiny = make_dataset(name="nvda-tiny", content=to_csv(slice_prices("test").iloc[:40]), rules=RULES)
    assessment, _ = run_now(actor=owner, version=assessable(test_dataset=tiny), kind="performance")
    assert_failed(assessment, "test_set_too_small")


def test_missing_values_beyond_the_tolerance_fail(columns_version, owner, run_now):
    built = features.build_features(slice_prices("test")).drop(columns=["Adj Close"])
    built.loc[built.index[::5], "vol_20"] = np.nan  # 20% missing
    version = columns_version(to_csv(built))
    assessment, _ = run_now(actor=owner, version=version, kind="performance")
    assert_failed(assessment, "nan_above_tolerance", "vol_20")
    # Within a declared tolerance the rows are left out and the assessment runs.
    again, created = run_now(actor=owner, version=version, kind="performance", parameters={"nan_tolerance": 0.25})
    assert created and again.status == "succeeded", again.error
    assert again.results["performance"]["rows_dropped_missing"] == 0  # dropped before the metrics, counted in inputs


def test_non_monotonic_timestamps_fail(assessable, owner, make_dataset, run_now):
    prices = slice_prices("test")
    swapped = prices.iloc[[*range(0, 100), 101, 100, *range(102, len(prices))]]
    unordered = make_dataset(name="nvda-unordered", content=to_csv(swapped), rules={"required_columns": ["Date"]})
    assessment, _ = run_now(actor=owner, version=assessable(test_dataset=unordered), kind="performance")
    assert_failed(assessment, "non_monotonic_timestamps", "position 101")


def test_a_dataset_failing_its_rules_fails_the_assessment(assessable, owner, make_dataset, run_now):
    strict = make_dataset(
        name="nvda-strict", content=to_csv(slice_prices("test")), rules={"ranges": {"Volume": {"max": 1}}}
    )
    assessment, _ = run_now(actor=owner, version=assessable(test_dataset=strict), kind="performance")
    assert_failed(assessment, "dataset_rules_failed", "nvda-strict", "Volume")


def test_the_pipeline_refuses_a_pickle_directly(assessable, owner, run_now):
    assessment, _ = run_now(actor=owner, version=assessable(), kind="performance")
    inputs = load_inputs(assessment)
    from dataclasses import replace

    from governance.errors import UnsafeArtifact

    with pytest.raises(UnsafeArtifact):
        pipeline.run(replace(inputs, artifact=pickle.dumps({"x": 1})), lambda *_: None)


def test_unknown_or_bad_parameters_are_refused_and_nothing_is_stored(assessable, owner):
    from django.core.exceptions import ValidationError

    from models_registry import services
    from models_registry.models import RiskAssessment

    with pytest.raises(ValidationError) as caught:
        services.assessment_request(
            actor=owner, version=assessable(), parameters={"cost_bps": -1, "pbo_partitions": 7, "bogus": 1}
        )
    text = " ".join(caught.value.messages)
    assert "cost_bps" in text and "pbo_partitions" in text and "bogus: unknown parameter" in text
    assert not RiskAssessment.objects.exists()


def test_a_version_without_target_or_test_data_is_refused(make_version, owner):
    from django.core.exceptions import ValidationError

    from models_registry import services

    with pytest.raises(ValidationError) as caught:
        services.assessment_request(actor=owner, version=make_version(), kind="performance")
    assert "no target" in " ".join(caught.value.messages) and "test dataset" in " ".join(caught.value.messages)
