# ruff: noqa: RUF002  (formulas are written with their mathematical symbols)
"""The risk-assessment pipeline: pure orchestration of ``models_registry.checks``.

No database here: the job (``assessment_services.assessment_execute``) loads the inputs,
calls ``run`` and stores what it returns, or the error it raises. ``run`` either returns a
complete ``Outcome`` or raises a ``CheckError``/``DomainError`` naming the cause; there is no
partial result. Two runs on the same inputs with the same seed give the same numbers: the
refits set ``random_state`` where the estimator has one and it was not fixed, the CV folds
are contiguous, and permutation importance draws from the seed.

Steps (each reported to ``progress`` and a point where cancellation is honoured):

1. inputs: the artifact through skops with trusted types only (never unpickled); each
   dataset's declared cleansing, its declared rules (a failing rule fails the job), strictly
   increasing timestamps, missing values within the tolerance in the columns the pipeline
   reads; the version's feature pipeline; the artifact's features must be produced by it.
2. performance: classification or regression metrics on the held-out test set (and on the
   training set, only for the train/test gap).
3. backtest: the model's signals on the test period's prices with costs and slippage in
   bps, against buy-and-hold. A classifier's signal is its probability of the up class
   (long above ``probability_threshold``, short below, or flat when long-only); a regressor's
   is the sign of its predicted return. Long-only by default for purposes other than alpha.
4. robustness: the backtest by volatility regime and in the stress windows the data covers.
5. overfitting: the train/test gap (accuracy for classifiers, directional accuracy for
   regressors: both fractions, so one threshold reads the same), purged and embargoed k-fold
   CV on the training data, PBO by CSCV over a small deterministic grid of configurations
   around the version's hyperparameters (``configurations``), each refit on the training
   data, whose daily strategy returns over the validation and test periods form the T×N
   matrix, and the deflated Sharpe ratio of the model's test backtest given the N trials
   and the variance of their Sharpe ratios.
6. data quality of each dataset (declared rules plus missing values, outliers, duplicates,
   stale prices) and drift (PSI, KS) of every feature between training and test.
7. explainability: permutation importance on at most ``permutation_max_rows`` test rows.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier

from models_registry import artifacts, datasets, features
from models_registry.checks import backtest as bt
from models_registry.checks import data_quality as dq
from models_registry.checks import explainability as ex
from models_registry.checks import metrics as mt
from models_registry.checks import overfitting as of
from models_registry.checks import robustness as rb
from models_registry.checks._json import jsonable
from models_registry.checks.errors import CheckError, FeatureMismatch, InvalidValues
from models_registry.checks.inputs import check_min_rows, check_monotonic, check_nan_fraction

Progress = Callable[[int, str], None]

# Equity curves longer than this are thinned for charts (every k-th point, first and last kept).
MAX_CURVE_POINTS = 1500
# Severity -> days to remediate, for findings raised by an assessment.
FINDING_DUE_DAYS = {"critical": 14, "high": 30, "medium": 60, "low": 90}


class DatasetRulesFailed(CheckError):
    """A dataset fails its own declared rules: the numbers computed on it would mean nothing."""

    code = "dataset_rules_failed"


class TargetMismatch(CheckError):
    """The model's kind (classifier, regressor) does not fit the target."""

    code = "target_mismatch"


class MissingInput(CheckError):
    """A dataset or column a requested check needs is not there."""

    code = "missing_input"


@dataclass(frozen=True)
class DatasetInput:
    role: str  # training, validation, test
    name: str
    frame: pd.DataFrame
    rules: dict[str, Any]
    time_column: str


@dataclass(frozen=True)
class Inputs:
    kind: str
    parameters: dict[str, Any]
    artifact: bytes
    feature_pipeline: str
    target: str
    feature_names: list[str]
    purpose: str
    complexity: str
    datasets: dict[str, DatasetInput]


@dataclass(frozen=True)
class FindingSpec:
    check: str
    severity: str
    title: str
    description: str


@dataclass
class Outcome:
    metrics: dict[str, float | int]
    results: dict[str, Any]
    overfitting: dict[str, Any] | None
    explainability: dict[str, Any] | None
    findings: list[FindingSpec] = field(default_factory=list)


# Which steps each kind runs.
KIND_STEPS: dict[str, frozenset[str]] = {
    "full": frozenset({"performance", "backtest", "robustness", "overfitting", "data_quality", "explainability"}),
    "performance": frozenset({"performance"}),
    "backtest": frozenset({"backtest", "robustness"}),
    "overfitting": frozenset({"overfitting"}),
    "data_quality": frozenset({"data_quality"}),
    "explainability": frozenset({"explainability"}),
}
# Dataset roles each kind needs (validation is always optional).
KIND_DATASETS: dict[str, tuple[str, ...]] = {
    "full": ("training", "test"),
    "performance": ("test",),
    "backtest": ("test",),
    "overfitting": ("training", "test"),
    "data_quality": (),
    "explainability": ("test",),
}


# --- Inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    role: str
    name: str
    cleansed: pd.DataFrame
    built: features.FeatureFrame


def _prepare_dataset(data: DatasetInput, inputs: Inputs) -> Prepared:
    """Declared cleansing and rules, then the guards, then the version's features."""
    what = f"dataset {data.name!r} ({data.role})"
    parsed = datasets.parse_rules(data.rules)
    report = datasets.evaluate(data.frame, parsed, data.time_column)
    if not report["passed"]:
        failing = [c for c in report["checks"] if not c["passed"]]
        raise DatasetRulesFailed(
            f"{what} fails its declared rules: " + "; ".join(f"{c['rule']}: {c['message']}" for c in failing),
            dataset=data.name,
            role=data.role,
            failing=failing,
        )
    cleansed, _ = datasets.apply_cleansing(data.frame, parsed, data.time_column)
    if not data.time_column or data.time_column not in cleansed.columns:
        raise MissingInput(f"{what} has no time column: the checks need dated rows", dataset=data.name)
    times = datasets.parse_times(cleansed, data.time_column)
    if times.isna().any():
        position = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise InvalidValues(
            f"{what}: the time column {data.time_column!r} has an unreadable value at row {position}",
            dataset=data.name,
            row=position,
        )
    check_monotonic(times, f"the timestamps of {what}")
    pipeline = features.get(inputs.feature_pipeline)
    read = list(pipeline.reads) or [
        c for c in (inputs.feature_names or list(cleansed.columns)) if c in cleansed.columns and c != data.time_column
    ]
    if inputs.target in cleansed.columns:
        read.append(inputs.target)
    check_nan_fraction(cleansed[[c for c in read if c in cleansed.columns]], inputs.parameters["nan_tolerance"], what)
    built = features.build(
        inputs.feature_pipeline,
        cleansed.reset_index(drop=True),
        times.reset_index(drop=True).rename(data.time_column),
        target=inputs.target,
        expected=inputs.feature_names or None,
    )
    # Rows a pipeline keeps with a missing value (the 'columns' pipeline keeps them all) are
    # within the tolerance checked above; the checks leave them out.
    keep = built.features.notna().all(axis=1) & built.target.notna()
    if not keep.all():
        mask = keep.to_numpy()
        built = features.FeatureFrame(
            dates=built.dates[mask],
            features=built.features.loc[mask],
            target=built.target.loc[mask],
            prices=None if built.prices is None else built.prices.loc[mask],
        )
    return Prepared(role=data.role, name=data.name, cleansed=cleansed, built=built)


def _check_model_fits(model: Any, prepared: Prepared, inputs: Inputs) -> None:
    n_expected = getattr(model, "n_features_in_", None)
    columns = list(prepared.built.features.columns)
    if n_expected is not None and int(n_expected) != len(columns):
        raise FeatureMismatch(
            missing=[f"the model expects {int(n_expected)} features"],
            extra=[f"pipeline {inputs.feature_pipeline} gives {len(columns)}: {', '.join(columns)}"],
        )
    kind = features.get(inputs.feature_pipeline).targets.get(inputs.target)
    if kind == "classification" and not is_classifier(model):
        raise TargetMismatch(f"target {inputs.target!r} is a classification target but the model is a regressor")
    if kind == "regression" and is_classifier(model):
        raise TargetMismatch(f"target {inputs.target!r} is a regression target but the model is a classifier")


# --- Signals and backtests ------------------------------------------------------------------------


def _positive_column(model: Any) -> int | None:
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) != 2 or not hasattr(model, "predict_proba"):
        return None
    return 1


def signals(model: Any, X: pd.DataFrame, parameters: dict[str, Any]) -> tuple[pd.Series, str]:
    """The model's trading signal per date in [-1, 1] and how it was derived."""
    long_only = parameters["long_only"]
    if is_classifier(model):
        column = _positive_column(model)
        if column is not None:
            p = pd.Series(np.asarray(model.predict_proba(X))[:, column], index=X.index)
            threshold = parameters["probability_threshold"]
            return (
                bt.signals_from_probabilities(p, threshold=threshold, long_only=long_only),
                # tolist(): the label as Python prints it (1, 'up'), not numpy's repr (np.int64(1)).
                f"probability of class {np.asarray(model.classes_)[column].tolist()!r} above {threshold}: long; below: "
                + ("flat" if long_only else "short"),
            )
        classes = np.asarray(getattr(model, "classes_", [])).tolist()
        if len(classes) != 2:
            raise TargetMismatch(f"the backtest needs a binary classifier; the model has classes {classes}")
        predicted = np.asarray(model.predict(X))
        short = 0.0 if long_only else -1.0
        return (
            pd.Series(np.where(predicted == classes[1], 1.0, short), index=X.index),
            f"predicted class {classes[1]!r}: long; otherwise " + ("flat" if long_only else "short"),
        )
    predicted = np.sign(np.asarray(model.predict(X), dtype=float))
    if long_only:
        predicted = np.maximum(predicted, 0.0)
    return pd.Series(predicted, index=X.index), "sign of the predicted return" + (" (long-only)" if long_only else "")


def _backtest(model: Any, built: features.FeatureFrame, parameters: dict[str, Any]) -> tuple[bt.BacktestResult, str]:
    if built.prices is None:
        raise MissingInput("the backtest needs prices (an 'Adj Close' or 'Close' column) and the dataset has none")
    signal, how = signals(model, built.features, parameters)
    result = bt.run_backtest(
        built.prices,
        signal,
        cost_bps=parameters["cost_bps"],
        slippage_bps=parameters["slippage_bps"],
        long_only=parameters["long_only"],
    )
    return result, how


def _thin(values: list[Any], step: int) -> list[Any]:
    kept = values[::step]
    if (len(values) - 1) % step:
        kept.append(values[-1])
    return kept


def downsample_curve(curve: dict[str, list[Any]], max_points: int = MAX_CURVE_POINTS) -> dict[str, Any]:
    """An equity curve thinned to at most about ``max_points`` (first and last kept), for charts."""
    n = len(curve["dates"])
    if n <= max_points:
        return {**curve, "downsampled_from": None}
    step = math.ceil(n / max_points)
    return {**{key: _thin(values, step) for key, values in curve.items()}, "downsampled_from": n}


# --- PBO configurations ----------------------------------------------------------------------------

_SCALE_MULTIPLIERS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
_DEPTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, None)


def _final(model: Any) -> tuple[Any, str]:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return steps[-1][1], f"{steps[-1][0]}__"
    return model, ""


def _window(values: list[Any], center: int, n: int) -> list[Any]:
    start = max(0, min(center - n // 2, len(values) - n))
    return values[start : start + n]


def configurations(model: Any, n: int, feature_names: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """A deterministic grid of at most ``n`` configurations around the model's own, for PBO.

    Per estimator family, one knob: ``C`` (logistic regression, SVMs) or ``alpha`` (ridge,
    lasso, elastic net, SGD, MLP) scaled by 0.01…100 around the version's value; ``max_depth``
    (trees, forests) over 1…16 and unlimited around the version's; for an estimator with
    neither (ordinary least squares), feature subsets: all features, then each one left out.
    Each entry is ``{"params": {...}}`` or ``{"drop": feature}``; the version's own
    configuration is always included.
    """
    final, prefix = _final(model)
    params = final.get_params(deep=False)
    if "C" in params or ("alpha" in params and isinstance(params["alpha"], int | float)):
        knob = "C" if "C" in params else "alpha"
        base = float(params[knob])
        values = [base * m for m in _SCALE_MULTIPLIERS]
        chosen = _window(values, _SCALE_MULTIPLIERS.index(1.0), n)
        return f"{knob} scaled by 0.01 to 100", [{"params": {f"{prefix}{knob}": v}} for v in chosen]
    if "max_depth" in params:
        depth = params["max_depth"]
        values = list(_DEPTHS) if depth in _DEPTHS else sorted([d for d in _DEPTHS if d is not None] + [depth])
        if depth not in values:  # a depth outside the list (e.g. 20) joins it at its place
            values.append(None)
        return "max_depth", [{"params": {f"{prefix}max_depth": v}} for v in _window(values, values.index(depth), n)]
    subsets: list[dict[str, Any]] = [{"drop": None}] + [{"drop": name} for name in feature_names]
    return "feature subsets (all, then each feature left out)", subsets[:n]


def _refit(model: Any, config: dict[str, Any], X: pd.DataFrame, y: pd.Series, seed: int) -> tuple[Any, list[str]]:
    estimator = clone(model)
    if config.get("params"):
        estimator.set_params(**config["params"])
    # Fixed seeds make the refits reproducible; a seed the version fixed itself is kept.
    seeded = {k: seed for k, v in estimator.get_params().items() if k.endswith("random_state") and v is None}
    if seeded:
        estimator.set_params(**seeded)
    columns = [c for c in X.columns if c != config.get("drop")]
    estimator.fit(X[columns], y)
    return estimator, columns


def _describe(config: dict[str, Any]) -> str:
    if "drop" in config:
        return "all features" if config["drop"] is None else f"without {config['drop']}"
    return ", ".join(f"{k.split('__')[-1]}={v}" for k, v in config["params"].items())


# --- The run -----------------------------------------------------------------------------------------


def _flat(prefix: str, source: dict[str, Any], names: tuple[str, ...]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for name in names:
        value = source.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[f"{prefix}{name}"] = value
    return out


CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2", "directional_accuracy")
BACKTEST_METRICS = (
    "total_return",
    "annualised_return",
    "annualised_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar_ratio",
    "hit_rate",
    "turnover",
    "exposure",
    "excess_total_return",
)


def _finding_gap(gap: dict[str, Any]) -> FindingSpec:
    return FindingSpec(
        check="overfitting.train_test_gap",
        severity="high",
        title=f"Overfitting: {gap['metric']} falls by {gap['gap']:.3f} from training to test",
        description=(
            f"{gap['metric']} is {gap['train']:.4f} on the training data and {gap['test']:.4f} on the held-out "
            f"test set; the gap of {gap['gap']:.4f} exceeds the threshold of {gap['threshold']:.4f}."
        ),
    )


def run(inputs: Inputs, progress: Progress) -> Outcome:
    """Run the checks of ``inputs.kind``; see the module docstring."""
    p = inputs.parameters
    steps = KIND_STEPS[inputs.kind]
    seed = int(p["random_seed"])
    results: dict[str, Any] = {}
    metrics: dict[str, float | int] = {}
    findings: list[FindingSpec] = []
    overfitting_summary: dict[str, Any] | None = None
    explainability_summary: dict[str, Any] | None = None

    progress(5, "loading inputs")
    model = artifacts.load_artifact(inputs.artifact)
    for role in KIND_DATASETS[inputs.kind]:
        if role not in inputs.datasets:
            raise MissingInput(f"a {inputs.kind} assessment needs a {role} dataset and the version has none")
    if not inputs.datasets:
        raise MissingInput("the version has no dataset to assess")

    progress(10, "checking inputs")
    prepared = {role: _prepare_dataset(data, inputs) for role, data in inputs.datasets.items()}
    for item in prepared.values():
        _check_model_fits(model, item, inputs)
    classifier = is_classifier(model)
    test = prepared.get("test")
    train = prepared.get("training")
    if test is not None:
        check_min_rows(len(test.built.features), p["min_test_rows"], f"the test set ({test.name})")
    results["inputs"] = {
        role: {"dataset": item.name, "rows": len(item.cleansed), "feature_rows": len(item.built.features)}
        for role, item in prepared.items()
    }
    results["model"] = {"kind": "classifier" if classifier else "regressor", "class": type(model).__name__}

    evaluate = mt.evaluate_classifier if classifier else mt.evaluate_regressor
    names = CLASSIFICATION_METRICS if classifier else REGRESSION_METRICS

    def scores(item: Prepared, what: str) -> dict[str, Any]:
        return evaluate(
            model,
            item.built.features,
            item.built.target,
            min_rows=p["min_test_rows"],
            nan_tolerance=p["nan_tolerance"],
        ) | {"dataset": item.name, "evaluated_on": what}

    with warnings.catch_warnings():
        # An artifact fitted on arrays warns on every call that frames have column names;
        # the names were checked above against the pipeline.
        warnings.filterwarnings("ignore", message="X has feature names", category=UserWarning)

        if "performance" in steps:
            assert test is not None
            progress(20, "performance on the test set")
            results["performance"] = scores(test, "test")
            metrics.update(_flat("", results["performance"], names))
            if classifier and results["performance"].get("brier_score") is not None:
                metrics["brier"] = results["performance"]["brier_score"]

        own_backtest: bt.BacktestResult | None = None
        if steps & {"backtest", "robustness", "overfitting"}:
            assert test is not None
            progress(35, "backtest on the test period")
            own_backtest, how = _backtest(model, test.built, p)
            if "backtest" in steps:
                out = own_backtest.to_dict()
                out["equity_curve"] = downsample_curve(out["equity_curve"])
                out["signal"] = how
                results["backtest"] = out
                metrics.update(_flat("", own_backtest.metrics, BACKTEST_METRICS))
                metrics.update(_flat("benchmark_", own_backtest.benchmark, ("total_return", "sharpe_ratio")))

        if "robustness" in steps:
            assert own_backtest is not None and test is not None and test.built.prices is not None
            progress(45, "robustness by regime and stress window")
            results["robustness"] = rb.backtest_robustness(own_backtest, test.built.prices)

        if "overfitting" in steps:
            assert train is not None and test is not None and own_backtest is not None
            progress(55, "overfitting: train/test gap and purged cross-validation")
            test_scores = results.get("performance") or scores(test, "test")
            train_scores = scores(train, "training")
            gap_metric = p["gap_metric"] or ("accuracy" if classifier else "directional_accuracy")
            gap = mt.train_test_gap(train_scores, test_scores, threshold=p["gap_threshold"], metric=gap_metric)
            # A label dated t looks one period ahead: it ends at the next row's date.
            t1 = pd.Series(np.append(train.built.dates[1:], train.built.dates[-1:]), index=train.built.dates)
            cv_model = clone(model)
            seeded = {k: seed for k, v in cv_model.get_params().items() if k.endswith("random_state") and v is None}
            cv_model.set_params(**seeded)
            cv = of.purged_cross_validation(
                cv_model,
                train.built.features,
                train.built.target,
                t1=t1,
                n_splits=p["cv_splits"],
                embargo=p["embargo"],
                scoring="accuracy" if classifier else "r2",
            )

            progress(65, "overfitting: PBO and deflated Sharpe ratio")
            knob, grid = configurations(model, p["pbo_configurations"], list(train.built.features.columns))
            periods = [prepared[r] for r in ("validation", "test") if r in prepared]
            columns: dict[str, pd.Series] = {}
            for config in grid:
                refit, used = _refit(model, config, train.built.features, train.built.target, seed)
                returns = []
                for item in periods:
                    result, _ = _backtest(refit, dataclasses.replace(item.built, features=item.built.features[used]), p)
                    returns.append(result.returns)
                columns[_describe(config)] = pd.concat(returns)
            matrix = pd.DataFrame(columns)
            pbo = of.probability_of_backtest_overfitting(matrix, n_partitions=p["pbo_partitions"], include_logits=False)
            trial_sr = matrix.mean() / matrix.std(ddof=1)
            trial_sr = trial_sr.replace([np.inf, -np.inf], np.nan).fillna(0.0)
            dsr: dict[str, Any]
            own_returns = own_backtest.returns.to_numpy()
            if np.ptp(own_returns) == 0:
                dsr = {"deflated_sharpe_ratio": None, "undefined": "the strategy's test returns are constant"}
            else:
                moments = of.sharpe_moments(own_returns)
                dsr = of.deflated_sharpe_ratio(
                    moments["sharpe_ratio"],
                    n_trials=len(grid),
                    variance_of_trial_srs=float(trial_sr.var(ddof=1)),
                    n_obs=moments["n_obs"],
                    skew=moments["skew"],
                    kurtosis=moments["kurtosis"],
                )
            results["overfitting"] = {
                "train_test_gap": gap,
                "training_metrics": train_scores,
                "cross_validation": cv,
                "pbo": pbo | {"configurations": list(columns), "grid": knob, "periods": [i.role for i in periods]},
                "deflated_sharpe": dsr,
            }
            if gap.get("gap") is not None:
                metrics["train_test_gap"] = gap["gap"]
            metrics["cv_mean_score"] = cv["mean"]
            metrics["pbo"] = pbo["pbo"]
            if dsr.get("deflated_sharpe_ratio") is not None:
                metrics["deflated_sharpe_ratio"] = dsr["deflated_sharpe_ratio"]
                metrics["probabilistic_sharpe_ratio"] = dsr["probabilistic_sharpe_ratio"]
            gap_failed = bool(gap.get("exceeds"))
            pbo_failed = pbo["pbo"] > p["pbo_threshold"]
            if gap_failed:
                findings.append(_finding_gap(gap))
            if pbo_failed:
                findings.append(
                    FindingSpec(
                        check="overfitting.pbo",
                        severity="high",
                        title=f"Probability of backtest overfitting {pbo['pbo']:.2f} above {p['pbo_threshold']}",
                        description=(
                            f"Over {pbo['n_configurations']} configurations ({knob}) refit on the training data, "
                            f"the configuration best in sample ranked below the median out of sample in "
                            f"{pbo['pbo']:.0%} of {pbo['n_combinations']} CSCV splits."
                        ),
                    )
                )
            value = dsr.get("deflated_sharpe_ratio")
            if value is not None and value < p["dsr_threshold"]:
                findings.append(
                    FindingSpec(
                        check="overfitting.deflated_sharpe_ratio",
                        severity="medium",
                        title=f"Deflated Sharpe ratio {value:.2f} below {p['dsr_threshold']}",
                        description=(
                            f"Given {len(grid)} configurations tried, the test backtest's Sharpe ratio is not "
                            f"significant: DSR {value:.4f} (expected maximum Sharpe of the trials per period "
                            f"{dsr['expected_max_sharpe']:.4f}, observed {dsr['observed_sharpe']:.4f})."
                        ),
                    )
                )
            overfitting_summary = {
                "passed": not gap_failed and not pbo_failed,
                "method": "train/test gap, purged k-fold CV, PBO (CSCV), deflated Sharpe ratio",
                "details": jsonable(
                    {
                        "gap_metric": gap_metric,
                        "train_test_gap": gap.get("gap"),
                        "gap_threshold": p["gap_threshold"],
                        "cv_mean_score": cv["mean"],
                        "pbo": pbo["pbo"],
                        "pbo_threshold": p["pbo_threshold"],
                        "deflated_sharpe_ratio": value,
                        "n_configurations": len(grid),
                    }
                ),
            }

        if "data_quality" in steps:
            progress(80, "data quality and drift")
            reports = {}
            for role, data in inputs.datasets.items():
                price_columns = [c for c in ("Adj Close",) if c in data.frame.columns]
                report = dq.data_quality_report(
                    data.frame,
                    rules=data.rules,
                    time_column=data.time_column,
                    price_columns=price_columns,
                    nan_tolerance=p["nan_tolerance"],
                )
                reports[role] = {"dataset": data.name, **report}
                if not report["passed"]:
                    findings.append(
                        FindingSpec(
                            check="data_quality",
                            severity="high",
                            title=f"Data quality: dataset {data.name} ({role}) fails its quality checks",
                            description=_quality_problems(report),
                        )
                    )
            results["data_quality"] = reports
            # Named as the policies read it (ASSESS-DATA-01).
            metrics["data_quality_failures"] = sum(1 for r in reports.values() if not r["passed"])
            if train is not None and test is not None:
                drift = dq.drift(
                    train.built.features,
                    test.built.features,
                    list(train.built.features.columns),
                    psi_threshold=p["psi_threshold"],
                )
                results["drift"] = drift
                metrics["drifted_features"] = len(drift["drifted_features"])
                metrics["max_psi"] = max((f["psi"] for f in drift["features"]), default=0.0)
                if drift["drifted_features"]:
                    findings.append(
                        FindingSpec(
                            check="drift",
                            severity="medium",
                            title=f"Drift between training and test in {len(drift['drifted_features'])} features",
                            description="PSI above "
                            f"{p['psi_threshold']}: "
                            + ", ".join(
                                f"{f['feature']} (PSI {f['psi']:.3f}, KS {f['ks_statistic']:.3f})"
                                for f in drift["features"]
                                if f["drifted"]
                            ),
                        )
                    )

        if "explainability" in steps:
            assert test is not None
            progress(90, "explainability: permutation importance")
            importance = ex.permutation_importance_summary(
                model,
                test.built.features,
                test.built.target,
                n_repeats=p["permutation_repeats"],
                random_state=seed,
                max_rows=p["permutation_max_rows"],
                min_rows=min(30, p["min_test_rows"]),
            )
            results["explainability"] = importance
            top = importance["features"][:3]
            explainability_summary = {
                "method": "permutation_importance",
                "summary": "most important on the test set: "
                + ", ".join(f"{f['feature']} ({f['importance_mean']:.4f})" for f in top),
                "details": {
                    "scoring": importance["scoring"],
                    "baseline_score": importance["baseline_score"],
                    "n_rows": importance["n_rows"],
                    "features": importance["features"],
                    "required": ex.explainability_required(inputs.complexity),
                },
            }

    return Outcome(
        metrics=metrics,
        results=jsonable(results),
        overfitting=overfitting_summary,
        explainability=explainability_summary,
        findings=findings,
    )


def _quality_problems(report: dict[str, Any]) -> str:
    problems = []
    problems += [f"{m['column']}: {m['fraction']:.2%} missing" for m in report["missing_values"] if not m["passed"]]
    if report["duplicates"]["rows"]:
        problems.append(f"{report['duplicates']['rows']} duplicated rows")
    if report["duplicates"]["timestamps"]:
        problems.append(f"{report['duplicates']['timestamps']} duplicated timestamps")
    for column, runs in report["stale_prices"]["runs"].items():
        if runs:
            problems.append(f"{column}: {len(runs)} runs of stale prices")
    problems += [c["message"] for c in report["timestamps"] if not c["passed"]]
    return "; ".join(problems) or "see the data-quality report"
