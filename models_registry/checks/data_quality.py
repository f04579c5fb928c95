# ruff: noqa: RUF002  (formulas are written with their mathematical symbols)
"""Data quality of a dataset against its declared rules, and drift between training and test data.

The declared rules (required columns, not null, unique, ranges, monotonic timestamps,
maximum gap) are those of ``models_registry.datasets`` and are evaluated by its
``evaluate`` on the cleansed frame, not re-implemented here. This module adds what the
rules do not express:

* missing values per column against a tolerance (a fraction, per column or for all);
* outliers by the robust (modified) z-score of Iglewicz & Hoaglin (1993):
  zᵢ = 0.6745 · (xᵢ − median) / MAD, MAD = median |xᵢ − median|, flagged when |zᵢ| > 3.5;
  when MAD = 0, zᵢ = (xᵢ − median) / (1.253314 · mean |xᵢ − median|). Price columns are
  tested on their simple returns (their levels trend). Outliers are warnings: they do not
  fail the report unless ``outliers_fail``;
* duplicated rows and duplicated timestamps;
* stale prices: runs of at least ``stale_run`` consecutive identical values in a price column;
* non-monotonic or gapped timestamps: the rules' own checks, switched on here when
  ``require_monotonic``/``max_gap_days`` ask for them even if the dataset did not declare them.

Drift (``drift``), per feature, training sample x (reference) against test or recent y:

* PSI = Σᵢ (qᵢ − pᵢ) · ln(qᵢ / pᵢ) over bins whose edges are the training quantiles
  (``n_bins`` equal-frequency bins; repeated edges merged; the outer bins open-ended, each
  bin closed on the left): pᵢ, qᵢ the shares of x and y in bin i, an empty bin's share
  replaced by ε = ``epsilon`` (1e-4) so the logarithm is defined. Conventional reading
  (Siddiqi 2006; Yurdakul 2018): < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant.
* KS = the two-sample Kolmogorov–Smirnov statistic sup |F_x − F_y| and its p-value
  (``scipy.stats.ks_2samp``, two-sided, exact for small samples). With large samples tiny
  shifts are significant, so ``drifted`` follows the PSI threshold and the KS result is
  reported beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from scipy.stats import ks_2samp

from models_registry.checks._json import jsonable
from models_registry.checks.errors import FeatureMismatch, InvalidParameter, InvalidValues
from models_registry.checks.inputs import check_min_rows
from models_registry.datasets import DatasetRules, apply_cleansing, evaluate, parse_rules

MODIFIED_Z = 0.6745
MEAN_AD_FACTOR = 1.253314
_EXAMPLES = 5


def robust_z_scores(values: np.ndarray) -> np.ndarray:
    """Iglewicz–Hoaglin modified z-scores (NaN stays NaN; all zeros for a constant column)."""
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.full_like(x, np.nan)
    median = np.median(finite)
    deviation = np.abs(finite - median)
    mad = np.median(deviation)
    if mad > 0:
        return MODIFIED_Z * (x - median) / mad
    mean_ad = deviation.mean()
    if mean_ad == 0:
        return np.where(np.isnan(x), np.nan, 0.0)
    return (x - median) / (MEAN_AD_FACTOR * mean_ad)


def stale_runs(values: pd.Series, min_run: int) -> list[dict[str, Any]]:
    """Runs of at least ``min_run`` consecutive identical non-missing values: first row label, length, value."""
    x = values.to_numpy()
    if len(x) == 0:
        return []
    same = np.concatenate([[False], (x[1:] == x[:-1]) & pd.notna(x[1:])])
    starts = np.flatnonzero(~same)
    lengths = np.diff(np.concatenate([starts, [len(x)]]))
    return [
        {"first_row": jsonable(values.index[s]), "length": int(n), "value": jsonable(x[s])}
        for s, n in zip(starts, lengths, strict=True)
        if n >= min_run
    ]


def _rules(rules: DatasetRules | Mapping[str, Any] | None) -> DatasetRules:
    if rules is None:
        return DatasetRules()
    if isinstance(rules, DatasetRules):
        return rules
    try:
        return parse_rules(dict(rules))
    except ValidationError as exc:
        problems = [m for messages in exc.message_dict.values() for m in messages]
        raise InvalidParameter("the dataset rules are invalid: " + "; ".join(problems), problems=problems) from exc


def data_quality_report(
    frame: pd.DataFrame,
    *,
    rules: DatasetRules | Mapping[str, Any] | None = None,
    time_column: str = "",
    price_columns: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    nan_tolerance: float | Mapping[str, float] = 0.0,
    outlier_threshold: float = 3.5,
    outliers_fail: bool = False,
    stale_run: int = 5,
    require_monotonic: bool = True,
    max_gap_days: float | None = None,
) -> dict[str, Any]:
    """The dataset's quality report (JSON-safe): the declared rules' results plus the checks above.

    ``columns`` (default: every column but the time column) are checked for missing values
    and, if numeric, outliers. ``passed`` is False when a declared rule, a missing-value
    tolerance, the duplicate, stale-price or timestamp checks fail (outliers only with
    ``outliers_fail``).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidValues("the dataset must be a pandas DataFrame")
    if outlier_threshold <= 0 or stale_run < 2:
        raise InvalidParameter("outlier_threshold must be positive and stale_run at least 2")
    declared = _rules(rules)
    if time_column:
        declared = dataclasses.replace(
            declared,
            monotonic_timestamps=declared.monotonic_timestamps or require_monotonic,
            max_gap_days=declared.max_gap_days if declared.max_gap_days is not None else max_gap_days,
        )
    names = set(map(str, frame.columns))
    wanted = [str(c) for c in (columns if columns is not None else frame.columns) if str(c) != time_column]
    absent = [c for c in [*wanted, *price_columns] if c not in names]
    if absent:
        raise FeatureMismatch(missing=sorted(set(absent)), extra=[])
    rules_report = evaluate(frame, declared, time_column)
    cleansed, _ = apply_cleansing(frame, declared, time_column)
    rows = len(cleansed)

    missing = []
    for column in wanted:
        tolerance = nan_tolerance.get(column, 0.0) if isinstance(nan_tolerance, Mapping) else nan_tolerance
        count = int(cleansed[column].isna().sum())
        fraction = count / rows if rows else 0.0
        missing.append(
            {
                "column": column,
                "missing": count,
                "fraction": fraction,
                "tolerance": float(tolerance),
                "passed": fraction <= tolerance,
            }
        )

    outliers = []
    for column in wanted:
        if not pd.api.types.is_numeric_dtype(cleansed[column]) or pd.api.types.is_bool_dtype(cleansed[column]):
            continue
        series = cleansed[column].astype(float)
        on = "returns" if column in price_columns else "values"
        tested = series.pct_change(fill_method=None) if on == "returns" else series
        z = robust_z_scores(tested.to_numpy())
        flagged = np.abs(np.nan_to_num(z, nan=0.0)) > outlier_threshold
        outliers.append(
            {
                "column": column,
                "tested_on": on,
                "count": int(flagged.sum()),
                "example_rows": [jsonable(i) for i in cleansed.index[flagged][:_EXAMPLES]],
                "max_abs_z": float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else None,
            }
        )

    duplicated_rows = int(cleansed.duplicated().sum())
    duplicated_times = int(cleansed[time_column].duplicated().sum()) if time_column and time_column in cleansed else 0
    stale = {column: stale_runs(cleansed[column], stale_run) for column in price_columns}
    timestamp_checks = [
        c
        for c in rules_report["checks"]
        if c["rule"] in {"monotonic_timestamps", "max_gap_days", "timestamps_parse", "timestamps"}
    ]
    passed = (
        rules_report["passed"]
        and all(m["passed"] for m in missing)
        and duplicated_rows == 0
        and duplicated_times == 0
        and not any(stale.values())
        and (not outliers_fail or all(o["count"] == 0 for o in outliers))
    )
    return jsonable(
        {
            "passed": passed,
            "rows": rows,
            "declared_rules": rules_report,
            "missing_values": missing,
            "outliers": {"method": "modified z-score (MAD)", "threshold": outlier_threshold, "columns": outliers},
            "duplicates": {"rows": duplicated_rows, "timestamps": duplicated_times},
            "stale_prices": {"min_run": stale_run, "runs": stale},
            "timestamps": timestamp_checks,
        }
    )


def population_stability_index(
    reference: np.ndarray, current: np.ndarray, *, n_bins: int = 10, epsilon: float = 1e-4
) -> dict[str, Any]:
    """PSI of ``current`` against ``reference`` on the reference's quantile bins (see the module docstring)."""
    if n_bins < 2 or epsilon <= 0:
        raise InvalidParameter("n_bins must be at least 2 and epsilon positive")
    x = np.asarray(reference, dtype=float)
    y = np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1))[1:-1])
    p = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
    q = np.bincount(np.searchsorted(edges, y, side="right"), minlength=len(edges) + 1) / len(y)
    p_adj, q_adj = np.maximum(p, epsilon), np.maximum(q, epsilon)
    psi = float(np.sum((q_adj - p_adj) * np.log(q_adj / p_adj)))
    return {"psi": psi, "edges": edges.tolist(), "reference_shares": p.tolist(), "current_shares": q.tolist()}


def psi_level(psi: float) -> str:
    return "stable" if psi < 0.1 else "moderate" if psi <= 0.25 else "significant"


def drift(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    features: Sequence[str],
    *,
    n_bins: int = 10,
    epsilon: float = 1e-4,
    psi_threshold: float = 0.25,
    ks_alpha: float = 0.05,
    min_rows: int = 10,
) -> dict[str, Any]:
    """PSI and two-sample KS per feature between training and test (or recent) data; JSON-safe.

    Missing values are left out per feature (and counted). Raises ``FeatureMismatch`` when a
    feature is absent from either frame, ``TestSetTooSmall`` when a feature has fewer than
    ``min_rows`` values on a side, ``InvalidValues`` for a non-numeric feature.
    """
    missing = sorted({f for f in features if f not in train_df.columns or f not in test_df.columns})
    if missing:
        raise FeatureMismatch(missing=missing, extra=[])
    results = []
    for feature in features:
        sides = []
        for name, source in (("training data", train_df), ("test data", test_df)):
            column = source[feature]
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                raise InvalidValues(f"feature {feature!r} of the {name} is not numeric ({column.dtype})")
            values = column.to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            check_min_rows(len(values), min_rows, f"feature {feature!r} of the {name}")
            sides.append((values, int(len(column) - len(values))))
        (x, x_missing), (y, y_missing) = sides
        psi = population_stability_index(x, y, n_bins=n_bins, epsilon=epsilon)
        ks = ks_2samp(x, y)
        results.append(
            {
                "feature": feature,
                "psi": psi["psi"],
                "psi_level": psi_level(psi["psi"]),
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "ks_significant": bool(ks.pvalue < ks_alpha),
                "drifted": psi["psi"] > psi_threshold,
                "n_reference": len(x),
                "n_current": len(y),
                "missing_reference": x_missing,
                "missing_current": y_missing,
            }
        )
    return jsonable(
        {
            "method": {
                "psi_bins": n_bins,
                "psi_epsilon": epsilon,
                "psi_threshold": psi_threshold,
                "ks_alpha": ks_alpha,
                "binning": "training quantiles",
            },
            "features": results,
            "drifted_features": [r["feature"] for r in results if r["drifted"]],
        }
    )
