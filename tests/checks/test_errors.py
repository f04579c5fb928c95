"""The errors: ValueErrors that name their cause, with a JSON-safe detail for the job's record."""

from __future__ import annotations

import pandas as pd
import pytest

from models_registry.checks import errors
from models_registry.checks.inputs import check_features, check_monotonic, check_nan_fraction
from tests.checks.conftest import assert_json_safe


def test_every_check_error_is_a_value_error_with_a_stable_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CheckError)]
    assert len(classes) >= 7
    assert all(issubclass(c, ValueError) for c in classes)
    assert len({c.code for c in classes}) == len(classes)


def test_messages_and_details():
    with pytest.raises(errors.FeatureMismatch) as exc:
        check_features(["a", "x"], ["a", "b"])
    assert exc.value.as_dict() == {
        "error": "feature_mismatch",
        "message": "the model's features do not match the dataset (missing from the dataset: b; "
        "not expected by the model: x)",
        "missing": ["b"],
        "extra": ["x"],
    }
    times = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04"])
    with pytest.raises(errors.NonMonotonicTimestamps, match=r"position 2 .* is not after position 1") as exc:
        check_monotonic(times)
    assert_json_safe(exc.value.as_dict())
    frame = pd.DataFrame({"a": [1.0, None, None, 4.0], "b": [1.0, 2.0, 3.0, None]})
    with pytest.raises(errors.NaNAboveTolerance) as exc:
        check_nan_fraction(frame, 0.3)
    assert exc.value.detail["columns"] == {"a": 0.5}
    assert_json_safe(exc.value.as_dict())
