# ruff: noqa: RUF002  (formulas are written with their mathematical symbols)
"""Explainability evidence: permutation importance (Breiman 2001; scikit-learn's implementation).

The importance of feature j is the drop of the score when column j of the test set is
shuffled, averaged over ``n_repeats`` shuffles: iⱼ = s − (1/K) Σₖ s_{k,j}. It is computed on
held-out data with a fixed ``random_state`` so the evidence is reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import check_scoring

from models_registry.checks._json import jsonable
from models_registry.checks.errors import InvalidParameter, InvalidValues
from models_registry.checks.inputs import check_min_rows, check_nan_fraction, expected_features, select_features

# The complexity levels (models_registry.choices.Complexity values) for which the issue asks
# for explainability evidence before approval.
EXPLAINABILITY_REQUIRED_FOR = frozenset({"high", "very_high"})


def explainability_required(complexity: str) -> bool:
    """Whether a model of this complexity ("low", "medium", "high", "very_high") needs explainability evidence."""
    return str(complexity) in EXPLAINABILITY_REQUIRED_FOR


def permutation_importance_summary(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    scoring: str | None = None,
    n_repeats: int = 10,
    random_state: int = 0,
    n_jobs: int | None = None,
    max_rows: int | None = None,
    min_rows: int = 30,
) -> dict[str, Any]:
    """Permutation importance of each feature on held-out data, most important first; JSON-safe.

    ``scoring`` defaults to the estimator's ``score`` (accuracy for classifiers, R² for
    regressors). With ``max_rows``, a random subset of that many rows (drawn with
    ``random_state``) is used, which bounds the cost on large test sets.
    """
    if n_repeats < 1:
        raise InvalidParameter(f"n_repeats must be at least 1, not {n_repeats}")
    if not isinstance(X, pd.DataFrame):
        raise InvalidValues("X must be a pandas DataFrame with the model's feature names")
    X = select_features(X, expected_features(model))
    target = np.asarray(y)
    if len(target) != len(X):
        raise InvalidValues(f"X has {len(X)} rows and y {len(target)}")
    check_min_rows(len(X), min_rows, "the test set")
    check_nan_fraction(X, 0.0, "the test set")
    if max_rows is not None and len(X) > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(len(X), size=max_rows, replace=False))
        X, target = X.iloc[rows], target[rows]
    scorer = check_scoring(model, scoring=scoring)
    baseline = float(scorer(model, X, target))
    result = permutation_importance(
        model, X, target, scoring=scoring, n_repeats=n_repeats, random_state=random_state, n_jobs=n_jobs
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    features = [
        {
            "feature": str(X.columns[j]),
            "rank": rank,
            "importance_mean": float(result.importances_mean[j]),
            "importance_std": float(result.importances_std[j]),
        }
        for rank, j in enumerate(order, start=1)
    ]
    return jsonable(
        {
            "method": "permutation_importance",
            "scoring": scoring or "estimator.score",
            "baseline_score": baseline,
            "n_repeats": n_repeats,
            "random_state": random_state,
            "n_rows": len(X),
            "features": features,
        }
    )
