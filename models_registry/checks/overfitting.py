# ruff: noqa: RUF001, RUF002  (formulas are written with their mathematical symbols)
"""Overfitting checks: purged and embargoed k-fold CV, PBO by CSCV, the probabilistic and deflated Sharpe ratios.

References:

* M. López de Prado (2018), *Advances in Financial Machine Learning*, Wiley, ch. 7
  ("Cross-validation in finance"): purging and embargo.
* D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The probability of
  backtest overfitting", *Journal of Computational Finance* 20(4) (SSRN 2326253, 2013/2015):
  combinatorially symmetric cross-validation (CSCV).
* D. H. Bailey, M. López de Prado (2012), "The Sharpe ratio efficient frontier", *Journal of
  Risk* 15(2): the probabilistic Sharpe ratio (PSR).
* D. H. Bailey, M. López de Prado (2014), "The deflated Sharpe ratio: correcting for
  selection bias, backtest overfitting and non-normality", *Journal of Portfolio
  Management* 40(5): the deflated Sharpe ratio (DSR).

Sharpe ratios in PSR and DSR are per period (not annualised), as in the papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kurtosis as _kurtosis
from scipy.stats import norm
from scipy.stats import skew as _skew
from sklearn.model_selection import BaseCrossValidator

from models_registry.checks._json import jsonable, with_reasons
from models_registry.checks.errors import InvalidParameter, InvalidValues, NonMonotonicTimestamps
from models_registry.checks.inputs import check_min_rows, check_nan_fraction

EULER_GAMMA = 0.5772156649015329


# --- Purged and embargoed k-fold (López de Prado 2018, ch. 7) -----------------------------------


class PurgedKFold(BaseCrossValidator):
    """K-fold without shuffling, with purging of overlapping labels and an embargo after each test fold.

    Each sample i has a label that spans [t0ᵢ, t1ᵢ]: ``t1`` is a Series whose index holds the
    start times t0 (non-decreasing, one per row of X, in the same order) and whose values are
    the end times t1 ≥ t0. The test fold is a contiguous block of rows; its span is
    [min t0, max t1] over the fold. A training sample is kept only if its label does not
    overlap the test span (purging): t1ᵢ < test start, or t0ᵢ > test end. After the test span
    the first h = ⌊embargo · n⌋ samples with t0ᵢ > test end are also dropped (the embargo),
    because serial correlation lets features just after the test period carry its labels'
    information. (The book's snippet 7.3 keeps a left sample whose t1 equals the test
    start; here the comparison is strict.)

    Works with scikit-learn's ``cross_val_score``/``GridSearchCV`` as ``cv=PurgedKFold(...)``.
    """

    def __init__(self, n_splits: int = 5, *, t1: pd.Series, embargo: float = 0.0) -> None:
        if not isinstance(n_splits, int | np.integer) or n_splits < 2:
            raise InvalidParameter(f"n_splits must be an integer of at least 2, not {n_splits!r}")
        if not 0.0 <= embargo < 1.0:
            raise InvalidParameter(f"embargo is a fraction of the samples in [0, 1), not {embargo}")
        if not isinstance(t1, pd.Series):
            raise InvalidValues("t1 must be a pandas Series: index = label start times, values = label end times")
        starts = t1.index.to_numpy()
        ends = t1.to_numpy()
        if pd.isna(starts).any() or pd.isna(ends).any():
            raise InvalidValues("t1 must not contain missing start or end times")
        decreasing = np.flatnonzero(starts[1:] < starts[:-1])
        if decreasing.size:
            p = int(decreasing[0]) + 1
            raise NonMonotonicTimestamps(
                position=p, value=starts[p], previous=starts[p - 1], what="the label start times (t1's index)"
            )
        before = np.flatnonzero(ends < starts)
        if before.size:
            raise InvalidValues(
                f"label {int(before[0])} ends ({ends[before[0]]}) before it starts ({starts[before[0]]})"
            )
        self.n_splits = int(n_splits)
        self.t1 = t1
        self.embargo = float(embargo)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[np.ndarray]:
        n = len(self.t1)
        yield from np.array_split(np.arange(n), self.n_splits)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(X)
        if n != len(self.t1):
            raise InvalidValues(f"X has {n} rows but t1 has {len(self.t1)} labels")
        check_min_rows(n, self.n_splits, "the data to split")
        starts = self.t1.index.to_numpy()
        ends = self.t1.to_numpy()
        h = int(self.embargo * n)
        positions = np.arange(n)
        for test in np.array_split(positions, self.n_splits):
            test_start, test_end = starts[test[0]], ends[test].max()
            left = positions[: test[0]][ends[: test[0]] < test_start]
            first_after = int(np.searchsorted(starts, test_end, side="right"))
            right = positions[max(first_after + h, test[-1] + 1) :]
            yield np.concatenate([left, right]), test


def purged_cross_validation(
    estimator: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    t1: pd.Series,
    n_splits: int = 5,
    embargo: float = 0.01,
    scoring: str = "accuracy",
) -> dict[str, Any]:
    """Scores of a fresh clone of ``estimator`` on each purged, embargoed fold (JSON-safe)."""
    from sklearn.model_selection import cross_val_score

    cv = PurgedKFold(n_splits, t1=t1, embargo=embargo)
    scores = cross_val_score(estimator, X, y, cv=cv, scoring=scoring, error_score="raise")
    return jsonable(
        {
            "scoring": scoring,
            "n_splits": n_splits,
            "embargo": embargo,
            "scores": scores,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
        }
    )


# --- Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado, Zhu) ---------


def _block_sharpe(
    centred_sums: np.ndarray, centred_sumsq: np.ndarray, shift: np.ndarray, counts: np.ndarray, masks: np.ndarray
) -> np.ndarray:
    """Sharpe ratio (mean / std, ddof=1) of each column over the union of the blocks selected by each mask row.

    The block sums are of the data minus a per-column ``shift`` (its overall mean): the
    variance is shift-invariant and computing it from centred sums avoids the cancellation of
    Σx² − n·x̄². A column with zero variance and zero mean (a configuration that never trades)
    has a Sharpe ratio of 0; with zero variance and a non-zero mean it is undefined (NaN).
    """
    n = (masks @ counts)[:, None]  # (C, 1)
    total = masks @ centred_sums  # (C, N)
    var = np.maximum(masks @ centred_sumsq - total**2 / n, 0.0) / (n - 1)
    mean = total / n + shift
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / np.sqrt(var)
    return np.where((var == 0) & (mean == 0), 0.0, sharpe)


def probability_of_backtest_overfitting(
    performance: np.ndarray | pd.DataFrame,
    n_partitions: int = 16,
    *,
    metric: str | Callable[[np.ndarray], np.ndarray] = "sharpe",
    include_logits: bool = True,
) -> dict[str, Any]:
    """PBO of selecting the best of N configurations, by combinatorially symmetric cross-validation.

    ``performance`` is T×N: the per-period returns (or P&L) of each of the N configurations
    tried, over the same T periods. CSCV (Bailey et al. 2017, §2):

    1. Split the rows into S = ``n_partitions`` (even) contiguous blocks of equal size (the
       oldest T mod S rows are dropped).
    2. For each of the C(S, S/2) ways of choosing S/2 blocks as the in-sample set J (the other
       half J̄ out of sample): compute the performance statistic (``metric``: the Sharpe
       ratio mean/std, or the mean, or a callable rows×N → N) of every configuration on J and
       on J̄; n* = the configuration best in sample; ω̄_c = its out-of-sample rank among the N
       divided by (N + 1) (rank 1 = worst, mid-ranks for ties); λ_c = ln(ω̄_c / (1 − ω̄_c)).
    3. PBO = the share of combinations with λ_c ≤ 0: the estimated probability that the
       configuration chosen in sample does no better than the median out of sample.

    Performance degradation (§2.4): the least-squares line of the OOS statistic of n* on its
    IS statistic across combinations (slope, intercept, R²), and the probability of loss
    P[OOS statistic of n* < 0]. A PBO near 0 means selection generalises; near 0.5 or above,
    the selection is no better than chance.
    """
    frame = performance if isinstance(performance, pd.DataFrame) else pd.DataFrame(np.asarray(performance))
    if frame.ndim != 2:
        raise InvalidValues("the performance matrix must be two-dimensional (T periods × N configurations)")
    if not isinstance(n_partitions, int | np.integer) or n_partitions < 2 or n_partitions % 2:
        raise InvalidParameter(f"n_partitions must be an even integer of at least 2, not {n_partitions!r}")
    t, n_configs = frame.shape
    if n_configs < 2:
        raise InvalidValues(f"PBO needs at least 2 configurations, not {n_configs}")
    check_min_rows(t, 2 * n_partitions, "the performance matrix")
    check_nan_fraction(frame, 0.0, "the performance matrix")
    values = frame.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InvalidValues("the performance matrix must be finite")
    values = values[t % n_partitions :]
    size = len(values) // n_partitions
    blocks = values.reshape(n_partitions, size, n_configs)
    combos = np.array(list(combinations(range(n_partitions), n_partitions // 2)))
    masks = np.zeros((len(combos), n_partitions))
    np.put_along_axis(masks, combos, 1.0, axis=1)
    if callable(metric):
        is_stat = np.empty((len(masks), n_configs))
        oos_stat = np.empty_like(is_stat)
        for c, mask in enumerate(masks.astype(bool)):
            is_stat[c] = metric(blocks[mask].reshape(-1, n_configs))
            oos_stat[c] = metric(blocks[~mask].reshape(-1, n_configs))
        metric_name = getattr(metric, "__name__", "custom")
    elif metric in ("sharpe", "mean"):
        shift = values.mean(axis=0)  # centring keeps the variance accurate (see _block_sharpe)
        centred = blocks - shift
        sums, sumsq = centred.sum(axis=1), (centred**2).sum(axis=1)
        counts = np.full(n_partitions, float(size))
        if metric == "mean":
            is_stat = masks @ sums / (masks @ counts)[:, None] + shift
            oos_stat = (1 - masks) @ sums / ((1 - masks) @ counts)[:, None] + shift
        else:
            is_stat = _block_sharpe(sums, sumsq, shift, counts, masks)
            oos_stat = _block_sharpe(sums, sumsq, shift, counts, 1 - masks)
        metric_name = metric
    else:
        raise InvalidParameter(f"unknown metric {metric!r} (sharpe, mean, or a callable)")
    if not (np.isfinite(is_stat).all() and np.isfinite(oos_stat).all()):
        bad = sorted({int(j) for j in np.flatnonzero(~(np.isfinite(is_stat) & np.isfinite(oos_stat)).all(axis=0))})
        raise InvalidValues(
            f"the performance statistic is undefined on some partition for configurations {bad} "
            "(constant non-zero returns?)",
            configurations=bad,
        )
    rows = np.arange(len(masks))
    best = np.argmax(is_stat, axis=1)
    best_is = is_stat[rows, best]
    best_oos = oos_stat[rows, best]
    below = (oos_stat < best_oos[:, None]).sum(axis=1)
    ties = (oos_stat == best_oos[:, None]).sum(axis=1)
    rank = below + (ties + 1) / 2.0  # mid-rank among N, 1 = worst
    omega = rank / (n_configs + 1)
    logits = np.log(omega / (1.0 - omega))
    slope, intercept = np.polyfit(best_is, best_oos, 1) if np.ptp(best_is) > 0 else (np.nan, np.nan)
    r2 = np.corrcoef(best_is, best_oos)[0, 1] ** 2 if np.ptp(best_is) > 0 and np.ptp(best_oos) > 0 else np.nan
    reasons = {}
    if not np.isfinite(slope):
        reasons["degradation_slope"] = reasons["degradation_intercept"] = "the in-sample statistic is constant"
    if not np.isfinite(r2):
        reasons["degradation_r2"] = "a statistic is constant across combinations"
    result = with_reasons(
        {
            "pbo": float(np.mean(logits <= 0)),
            "n_partitions": int(n_partitions),
            "n_combinations": len(masks),
            "n_configurations": int(n_configs),
            "n_periods_used": len(values),
            "metric": metric_name,
            "logit_mean": float(logits.mean()),
            "logit_median": float(np.median(logits)),
            "degradation_slope": slope,
            "degradation_intercept": intercept,
            "degradation_r2": r2,
            "probability_oos_loss": float(np.mean(best_oos < 0)),
            "is_best_mean": float(best_is.mean()),
            "oos_of_is_best_mean": float(best_oos.mean()),
            "selected_configurations": np.bincount(best, minlength=n_configs),
        },
        reasons,
    )
    if include_logits:
        result["logits"] = jsonable(logits)
    return result


# --- Probabilistic and deflated Sharpe ratios (Bailey & López de Prado 2012, 2014) ------------------


def sharpe_moments(returns: np.ndarray | pd.Series) -> dict[str, float]:
    """Per-period Sharpe ratio (mean/std, ddof=1), skewness and Pearson (non-excess) kurtosis of a return series."""
    r = np.asarray(returns, dtype=float)
    r = r[~np.isnan(r)]
    check_min_rows(len(r), 3, "the return series")
    std = float(np.std(r, ddof=1))
    if np.ptp(r) == 0:
        raise InvalidValues("the returns are constant: the Sharpe ratio is undefined")
    return {
        "sharpe_ratio": float(r.mean() / std),
        "skew": float(_skew(r, bias=False)),
        "kurtosis": float(_kurtosis(r, fisher=False, bias=False)),
        "n_obs": len(r),
    }


def _psr_z(observed_sr: float, benchmark_sr: float, n_obs: float, skew: float, kurtosis: float) -> float:
    if n_obs < 2:
        raise InvalidParameter(f"n_obs must be at least 2, not {n_obs}")
    if kurtosis < 1:
        raise InvalidParameter(f"kurtosis is Pearson's (3 for normal returns) and at least 1, not {kurtosis}")
    variance_term = 1.0 - skew * observed_sr + (kurtosis - 1.0) / 4.0 * observed_sr**2
    if variance_term <= 0:
        raise InvalidParameter(
            f"1 − skew·SR + (kurtosis − 1)/4·SR² = {variance_term:.4g} is not positive for these moments"
        )
    return (observed_sr - benchmark_sr) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)


def probabilistic_sharpe_ratio(
    observed_sr: float, *, benchmark_sr: float = 0.0, n_obs: float, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR(SR*) = Φ( (SR̂ − SR*) · √(T − 1) / √(1 − γ₃·SR̂ + (γ₄ − 1)/4 · SR̂²) )  (Bailey & López de Prado 2012).

    SR̂ and SR* per period; T = ``n_obs`` returns; γ₃ skewness; γ₄ Pearson kurtosis (3 normal).
    The probability that the true Sharpe ratio exceeds SR*, given the estimate's non-normal
    standard error (Mertens 2002).
    """
    return float(norm.cdf(_psr_z(observed_sr, benchmark_sr, n_obs, skew, kurtosis)))


def min_track_record_length(
    observed_sr: float, *, benchmark_sr: float = 0.0, skew: float = 0.0, kurtosis: float = 3.0, confidence: float = 0.95
) -> float | None:
    """MinTRL = 1 + (1 − γ₃·SR̂ + (γ₄ − 1)/4 · SR̂²) · (z_α / (SR̂ − SR*))²  (Bailey & López de Prado 2012).

    The number of observations needed for PSR(SR*) to reach ``confidence``; None when
    SR̂ ≤ SR* (no track record is long enough).
    """
    if not 0.0 < confidence < 1.0:
        raise InvalidParameter(f"confidence must be in (0, 1), not {confidence}")
    if observed_sr <= benchmark_sr:
        return None
    variance_term = 1.0 - skew * observed_sr + (kurtosis - 1.0) / 4.0 * observed_sr**2
    return float(1.0 + variance_term * (norm.ppf(confidence) / (observed_sr - benchmark_sr)) ** 2)


def expected_maximum_sharpe(n_trials: int, variance_of_trial_srs: float) -> float:
    """SR₀ = √V[SRₙ] · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))), γ Euler–Mascheroni (Bailey & López de Prado 2014).

    The expected maximum of N independent Sharpe ratio estimates whose true value is zero
    (False Strategy Theorem); 0 for a single trial.
    """
    if n_trials < 1:
        raise InvalidParameter(f"n_trials must be at least 1, not {n_trials}")
    if variance_of_trial_srs < 0:
        raise InvalidParameter(
            f"the variance of the trials' Sharpe ratios must be non-negative, not {variance_of_trial_srs}"
        )
    if n_trials == 1:
        return 0.0
    z1 = norm.ppf(1.0 - 1.0 / n_trials)
    z2 = norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(variance_of_trial_srs) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(
    observed_sr: float,
    n_trials: int,
    variance_of_trial_srs: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> dict[str, Any]:
    """DSR = PSR(SR₀), SR₀ the expected maximum Sharpe of ``n_trials`` null strategies (Bailey & López de Prado 2014).

    All Sharpe ratios per period (divide an annualised one by √periods_per_year, and its
    variance by periods_per_year). Returns the DSR (probability that the selected strategy's
    true Sharpe ratio is positive after accounting for the number of trials, skewness and
    kurtosis), SR₀, and the PSR against zero for comparison.
    """
    sr0 = expected_maximum_sharpe(n_trials, variance_of_trial_srs)
    return jsonable(
        {
            "deflated_sharpe_ratio": probabilistic_sharpe_ratio(
                observed_sr, benchmark_sr=sr0, n_obs=n_obs, skew=skew, kurtosis=kurtosis
            ),
            "expected_max_sharpe": sr0,
            "probabilistic_sharpe_ratio": probabilistic_sharpe_ratio(
                observed_sr, benchmark_sr=0.0, n_obs=n_obs, skew=skew, kurtosis=kurtosis
            ),
            "observed_sharpe": float(observed_sr),
            "n_trials": int(n_trials),
            "variance_of_trial_srs": float(variance_of_trial_srs),
            "n_obs": int(n_obs),
            "skew": float(skew),
            "kurtosis": float(kurtosis),
        }
    )
