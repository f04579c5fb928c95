# ruff: noqa: RUF002, RUF003  (formulas are written with their mathematical symbols)
"""Anomaly detectors on live monitoring data: pure functions of arrays, no database, no clock.

Every detector reads a series in time order (oldest first) and returns a ``Detection``:

* ``rule``: the detector's name (``accuracy_drop``, ``losing_trades``, ``trade_count``,
  ``drawdown``, ``daily_loss``, ``feature_drift``);
* ``breached``: whether the alarm fired anywhere in the series;
* ``statistic`` and ``threshold``: the decision statistic at its most extreme over the series
  and the value it is compared with (for ``losing_trades`` the smaller probability, which
  breaches when *below* the threshold; for the others, above);
* ``at_index``: the index of the first observation at which the alarm fires (``None`` when it
  does not, and for ``feature_drift``, which compares two samples rather than a sequence);
* ``detail``: a JSON-safe dict of what the statistic is made of.

A sequential detector fires at the first observation that breaches and keeps that answer for
the rest of the series, so a caller that wants "since the last resolved alert" passes only the
observations since then. Bad parameters raise ``ValueError`` naming the parameter; bad values
in a series (NaN, infinities) too. The detectors are the stable API of
``governance.anomaly_services`` and of the detection-quality benchmark; docs/monitoring.md
("Anomaly rules and alerts") explains the choices.

References:

* E. S. Page (1954), "Continuous inspection schemes", Biometrika 41(1/2), 100–115 (CUSUM).
* M. R. Reynolds and Z. G. Stoumbos (1999), "A CUSUM chart for monitoring a proportion when
  inspecting continuously", Journal of Quality Technology 31(1), 87–108 (Bernoulli CUSUM).
* D. V. Hinkley (1971), "Inference about the change-point from cumulative sum tests",
  Biometrika 58(3), 509–523; J. Gama et al. (2014), "A survey on concept drift adaptation",
  ACM Computing Surveys 46(4), §3.2 (Page–Hinkley test).
* W. Feller (1968), An Introduction to Probability Theory and Its Applications, vol. 1,
  ch. XIII §7; M. F. Schilling (1990), "The longest run of heads", The College Mathematics
  Journal 21(3), 196–207 (longest run).
* F. R. Hampel (1974), "The influence curve and its role in robust estimation", JASA 69,
  383–393; P. J. Rousseeuw and C. Croux (1993), JASA 88, 1273–1283 (median and MAD, 1.4826).
* N. Siddiqi (2006), Credit Risk Scorecards, Wiley; B. Yurdakul (2018), "Statistical
  properties of population stability index", PhD thesis, Western Michigan University (PSI).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
from scipy import stats

from models_registry.checks.data_quality import population_stability_index, psi_level

RULES = ("accuracy_drop", "losing_trades", "trade_count", "drawdown", "daily_loss", "feature_drift")
# 1 / Φ⁻¹(3/4): makes the MAD a consistent estimator of σ for normal data.
MAD_SCALE = 1.482602218505602


@dataclass(frozen=True)
class Detection:
    """The outcome of one detector on one series (see the module docstring)."""

    rule: str
    breached: bool
    statistic: float
    threshold: float
    at_index: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: a statistic that could not be computed (NaN) is ``None``."""
        return {
            "rule": self.rule,
            "breached": self.breached,
            "statistic": _finite_or_none(self.statistic),
            "threshold": _finite_or_none(self.threshold),
            "at_index": self.at_index,
            "detail": self.detail,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _require(condition: bool, name: str, reason: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {reason}")


def _fraction(value: float, name: str, *, open_interval: bool = True) -> float:
    _require(isinstance(value, int | float) and not isinstance(value, bool), name, "must be a number")
    value = float(value)
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    _require(ok, name, f"must be in {'(0, 1)' if open_interval else '[0, 1]'}, not {value}")
    return value


def _positive(value: float, name: str) -> float:
    _require(isinstance(value, int | float) and not isinstance(value, bool), name, "must be a number")
    _require(math.isfinite(value) and value > 0, name, f"must be a positive number, not {value}")
    return float(value)


def _positive_int(value: int, name: str) -> int:
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name, "must be an integer >= 1")
    return value


def _array(values: Any, name: str, *, dtype: Any = float) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    _require(array.ndim == 1, name, "must be a one-dimensional series")
    if dtype is float:
        _require(bool(np.all(np.isfinite(array))), name, "holds NaN or infinite values")
    return array


def _empty(rule: str, threshold: float, reason: str, **detail: Any) -> Detection:
    return Detection(rule, False, float("nan"), float(threshold), None, {"n": 0, "reason": reason, **detail})


# Accuracy ------------------------------------------------------------------------------------


def accuracy_drop(
    correct: np.ndarray | Sequence[bool],
    *,
    baseline: float,
    shift: float,
    threshold: float,
    method: Literal["cusum", "page_hinkley"] = "cusum",
) -> Detection:
    """A drop of the hit rate below the validation baseline, one prediction at a time.

    ``correct[t]`` is 1 when prediction t was right. Both methods are one-sided (a drop only)
    and restart at zero, so a long good stretch does not bank credit against a later drop.

    ``cusum`` (Page 1954, Bernoulli form of Reynolds & Stoumbos 1999): the log-likelihood
    ratio of p₁ = baseline − shift against p₀ = baseline for each observation,

        wₜ = xₜ·ln(p₁/p₀) + (1 − xₜ)·ln((1 − p₁)/(1 − p₀)),   Sₜ = max(0, Sₜ₋₁ + wₜ),

    alarm at the first t with Sₜ ≥ h (``threshold``). It is the sequential probability ratio
    test restarted at every renewal: optimal (Lorden 1971) for detecting a change to exactly p₁.

    ``page_hinkley`` (Hinkley 1971; Gama et al. 2014) with the known in-control mean μ₀ =
    baseline and tolerance δ = shift / 2:

        Uₜ = max(0, Uₜ₋₁ + (μ₀ − δ − xₜ)),   alarm at the first t with Uₜ ≥ λ (``threshold``).

    Pass the threshold of the method: a CUSUM threshold is in log-likelihood units, a
    Page–Hinkley threshold in accuracy points (an excess of wrong answers).
    ``statistic`` is the largest Sₜ (or Uₜ), ``detail`` the accuracy observed, the value at
    the end and, for an alarm, the accuracy of the observations since the last restart before it.
    """
    baseline = _fraction(baseline, "baseline")
    shift = _positive(shift, "shift")
    _require(shift < baseline, "shift", f"must be below the baseline ({baseline}), not {shift}")
    threshold = _positive(threshold, "threshold")
    _require(method in ("cusum", "page_hinkley"), "method", f"must be cusum or page_hinkley, not {method!r}")
    x = _array(correct, "correct").astype(float)
    _require(bool(np.all((x == 0) | (x == 1))), "correct", "must hold booleans (1 right, 0 wrong)")
    base = {"method": method, "baseline": baseline, "shift": shift}
    if x.size == 0:
        return _empty("accuracy_drop", threshold, "no predictions with a known outcome", **base)
    p0, p1 = baseline, baseline - shift
    cusum_steps = x * math.log(p1 / p0) + (1 - x) * math.log((1 - p1) / (1 - p0))
    steps = cusum_steps if method == "cusum" else (p0 - shift / 2) - x
    path = np.empty_like(steps)
    since = np.empty(steps.size, dtype=int)  # where the current excursion started
    level, start = 0.0, 0
    for t, step in enumerate(steps):
        if level == 0.0:
            start = t
        level = max(0.0, level + float(step))
        path[t], since[t] = level, start
    hits = np.flatnonzero(path >= threshold)
    at = int(hits[0]) if hits.size else None
    detail = {
        **base,
        "n": int(x.size),
        "accuracy": float(x.mean()),
        "last": float(path[-1]),
    }
    if at is not None:
        detail["run_start"] = int(since[at])
        detail["run_length"] = int(at + 1 - since[at])
        detail["run_accuracy"] = float(x[since[at] : at + 1].mean())
    return Detection("accuracy_drop", at is not None, float(path.max()), threshold, at, detail)


# Losing trades ---------------------------------------------------------------------------------


def longest_run_probability(n: int, length: int, p: float) -> float:
    """P(a run of at least ``length`` successes in ``n`` Bernoulli(p) trials), exactly.

    Dynamic programming over the length of the current run (Feller 1968, XIII.7): qᵢ(j) is the
    probability that after i trials no run of ``length`` occurred and the current run is j < ``length``;
    q₀ = (1, 0, …); qᵢ₊₁(0) = (1 − p)·Σⱼ qᵢ(j); qᵢ₊₁(j + 1) = p·qᵢ(j). The answer is 1 − Σⱼ qₙ(j).
    O(n·length) operations.
    """
    _require(isinstance(n, int) and n >= 0, "n", "must be a non-negative integer")
    _require(isinstance(length, int) and length >= 0, "length", "must be a non-negative integer")
    p = _fraction(p, "p", open_interval=False)
    if length == 0:
        return 1.0
    if length > n:
        return 0.0
    state = np.zeros(length)
    state[0] = 1.0
    for _ in range(n):
        total = state.sum()
        state[1:] = p * state[:-1]
        state[0] = (1 - p) * total
    return float(min(1.0, max(0.0, 1.0 - state.sum())))


def losing_trades(
    pnl: np.ndarray | Sequence[float],
    *,
    baseline_loss_rate: float,
    max_probability: float,
    window: int,
    max_streak_probability: float | None = None,
) -> Detection:
    """A spike in losing trades: a losing streak, or a losing ratio, that the baseline makes unlikely.

    A trade loses when its P&L is below zero. At each trade t, over the last ``window`` trades
    (n = min(t + 1, window)) with q = ``baseline_loss_rate``:

    * the current losing streak r (at most n): P_run = P(longest run of losses ≥ r in n
      trials) by ``longest_run_probability`` (exact);
    * the losing count k: P_ratio = P(X ≥ k), X ~ Binomial(n, q), the one-sided binomial tail
      (``scipy.stats.binom.sf``).

    The alarm fires at the first t where P_ratio < ``max_probability`` or P_run <
    ``max_streak_probability`` (default: the same limit). Checking the current streak at every
    trade is enough: the longest streak of a window ended at some earlier trade, where n was no
    larger and so its probability no larger. These are per-check probabilities, not corrected
    for being checked at every trade: the limits set the per-trade false-alarm rate, and the
    ratio test, whose tail moves with every trade of the window, needs a smaller one than the
    streak test (docs/anomaly-rules.md). ``statistic`` is the smallest of P_ratio /
    ``max_probability`` and P_run / ``max_streak_probability`` seen, so that it breaches below
    ``threshold`` 1 (with one limit for both, it is the smallest probability over that limit);
    ``detail`` gives the streak and ratio of the last window and, for an alarm, at the alarm.
    """
    q = _fraction(baseline_loss_rate, "baseline_loss_rate")
    alpha = _fraction(max_probability, "max_probability")
    alpha_streak = (
        alpha if max_streak_probability is None else _fraction(max_streak_probability, "max_streak_probability")
    )
    window = _positive_int(window, "window")
    values = _array([float(v) for v in pnl], "pnl")
    base = {"baseline_loss_rate": q, "window": window, "max_probability": alpha, "max_streak_probability": alpha_streak}
    if values.size == 0:
        return _empty("losing_trades", 1.0, "no trades with a P&L", **base)
    losing = values < 0
    n_t = np.minimum(np.arange(1, values.size + 1), window)
    cumulative = np.concatenate([[0], np.cumsum(losing)])
    k_t = cumulative[1:] - cumulative[np.maximum(0, np.arange(1, values.size + 1) - window)]
    p_ratio = stats.binom.sf(k_t - 1, n_t, q)
    streak = np.zeros(values.size, dtype=int)
    run = 0
    for t, lost in enumerate(losing):
        run = run + 1 if lost else 0
        streak[t] = min(run, n_t[t])
    cache: dict[tuple[int, int], float] = {}
    p_run = np.ones(values.size)
    for t in np.flatnonzero(streak):
        key = (int(n_t[t]), int(streak[t]))
        if key not in cache:
            cache[key] = longest_run_probability(key[0], key[1], q)
        p_run[t] = cache[key]
    relative = np.minimum(p_run / alpha_streak, p_ratio / alpha)
    hits = np.flatnonzero(relative < 1.0)
    at = int(hits[0]) if hits.size else None
    last = values.size - 1
    window_losses = losing[max(0, values.size - window) :]
    longest, run = 0, 0
    for lost in window_losses:
        run = run + 1 if lost else 0
        longest = max(longest, run)
    detail: dict[str, Any] = {
        **base,
        "n": int(values.size),
        "window_trades": int(n_t[last]),
        "losing": int(k_t[last]),
        "losing_ratio": float(k_t[last] / n_t[last]),
        "longest_streak": longest,
        "streak_probability": longest_run_probability(int(n_t[last]), longest, q),
        "ratio_probability": float(p_ratio[last]),
    }
    if at is not None:
        detail["alarm"] = {
            "streak": int(streak[at]),
            "streak_probability": float(p_run[at]),
            "losing": int(k_t[at]),
            "window_trades": int(n_t[at]),
            "ratio_probability": float(p_ratio[at]),
            "cause": "streak" if p_run[at] / alpha_streak <= p_ratio[at] / alpha else "ratio",
        }
    return Detection("losing_trades", at is not None, float(relative.min()), 1.0, at, detail)


# Trade count -------------------------------------------------------------------------------------


def trade_count(daily_counts: np.ndarray | Sequence[int], *, window: int, threshold: float) -> Detection:
    """A day's trade count far from its trailing norm, in either direction.

    Robust z-score against the previous ``window`` days W (Hampel 1974):

        zₜ = (cₜ − median(W)) / s,   s = max(1.4826 · MAD(W), √max(median(W), 1)),

    alarm at the first day with |zₜ| > ``threshold``. Why median and MAD rather than a Poisson
    or negative-binomial tail: trade counts are over-dispersed and bursty (a Poisson tail would
    alarm on ordinary busy days), a fitted negative binomial needs more days than a trailing
    window gives, and the median and MAD ignore an earlier anomalous day inside the window
    (breakdown point 50 %), where a mean and standard deviation would be inflated by it. The
    floor √median is the Poisson standard deviation of a count: a window of identical days
    (MAD 0) must not make any change an infinite z. Days before the first full window are not
    tested. ``statistic`` is the largest |z|; ``detail`` gives the day's count, the norm and
    the direction (``high`` or ``low``) at the alarm and for the last day.
    """
    window = _positive_int(window, "window")
    _require(window >= 3, "window", "must be at least 3 days for a median and MAD")
    threshold = _positive(threshold, "threshold")
    counts = _array(daily_counts, "daily_counts")
    _require(bool(np.all(counts >= 0)), "daily_counts", "counts cannot be negative")
    base = {"window": window, "n": int(counts.size)}
    if counts.size <= window:
        return _empty("trade_count", threshold, f"needs more than {window} days, has {counts.size}", **base)
    windows = np.lib.stride_tricks.sliding_window_view(counts[:-1], window)  # windows[i] precedes day i + window
    medians = np.median(windows, axis=1)
    mads = np.median(np.abs(windows - medians[:, None]), axis=1)
    scales = np.maximum(MAD_SCALE * mads, np.sqrt(np.maximum(medians, 1.0)))
    today = counts[window:]
    z = (today - medians) / scales
    hits = np.flatnonzero(np.abs(z) > threshold)
    at = int(hits[0]) + window if hits.size else None

    def day(index: int) -> dict[str, Any]:
        i = index - window
        return {
            "index": index,
            "count": float(counts[index]),
            "median": float(medians[i]),
            "scale": float(scales[i]),
            "z": float(z[i]),
            "direction": "high" if z[i] > 0 else "low",
        }

    detail = {**base, "last": day(counts.size - 1)}
    if at is not None:
        detail["alarm"] = day(at)
    return Detection("trade_count", at is not None, float(np.abs(z).max()), threshold, at, detail)


# Money: drawdown and daily loss (exact decimals) -------------------------------------------------


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not an amount")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{name}: {value!r} is not a decimal amount") from exc
    if not amount.is_finite():
        raise ValueError(f"{name}: {value!r} is not a finite amount")
    return amount


def _amounts(values: Any, name: str) -> list[Decimal]:
    return [_decimal(value, f"{name}[{index}]") for index, value in enumerate(values)]


def drawdown(
    period_pnl: np.ndarray | Sequence[Decimal | float],
    *,
    capital: Decimal,
    limit_fraction: float,
) -> Detection:
    """Peak-to-trough fall of cumulative P&L, relative to the capital limit.

    With Cₜ = Σᵢ≤ₜ pnlᵢ and the peak Pₜ = max(0, C₀, …, Cₜ) (the deployment starts at its
    capital, a cumulative P&L of 0), the drawdown is Dₜ = Pₜ − Cₜ. The alarm fires at the first
    t with Dₜ > ``limit_fraction`` · ``capital``, compared exactly in decimals (a float P&L is
    read through its shortest repr). ``statistic`` is max Dₜ / capital; ``detail`` the maximum
    drawdown, the limit in money, and where the peak and the trough were.
    """
    capital = _decimal(capital, "capital")
    _require(capital > 0, "capital", f"must be positive, not {capital}")
    fraction = _positive(limit_fraction, "limit_fraction")
    amounts = _amounts(period_pnl, "period_pnl")
    limit = capital * _decimal(fraction, "limit_fraction")
    base = {"capital": str(capital), "limit_fraction": fraction, "limit": str(limit)}
    if not amounts:
        return _empty("drawdown", fraction, "no periods with a P&L", **base)
    cumulative, peak, peak_at = Decimal(0), Decimal(0), None
    worst, worst_at, worst_peak_at, at = Decimal(0), None, None, None
    for t, amount in enumerate(amounts):
        cumulative += amount
        if cumulative > peak:
            peak, peak_at = cumulative, t
        fall = peak - cumulative
        if fall > worst:
            worst, worst_at, worst_peak_at = fall, t, peak_at
        if at is None and fall > limit:
            at = t
    detail = {
        **base,
        "n": len(amounts),
        "max_drawdown": str(worst),
        "peak_index": worst_peak_at,
        "trough_index": worst_at,
        "cumulative_pnl": str(cumulative),
    }
    return Detection("drawdown", at is not None, float(worst / capital), fraction, at, detail)


def daily_loss(daily_pnl: np.ndarray | Sequence[Decimal | float], *, limit: Decimal) -> Detection:
    """A day whose loss is beyond the deployment's maximum daily loss.

    The loss of a day is −pnl; the alarm fires at the first day with −pnl > ``limit``, compared
    exactly in decimals (a loss equal to the limit is within it). ``statistic`` is the largest
    daily loss (0 when no day lost), ``detail`` it and the limit as decimal strings.
    """
    limit = _decimal(limit, "limit")
    _require(limit > 0, "limit", f"must be positive, not {limit}")
    amounts = _amounts(daily_pnl, "daily_pnl")
    if not amounts:
        return _empty("daily_loss", float(limit), "no days with a P&L", limit=str(limit))
    losses = [-amount for amount in amounts]
    worst = max(max(losses), Decimal(0))
    at = next((t for t, loss in enumerate(losses) if loss > limit), None)
    detail = {
        "n": len(amounts),
        "limit": str(limit),
        "worst_loss": str(worst),
        "worst_index": losses.index(max(losses)) if worst > 0 else None,
        "days_beyond": sum(1 for loss in losses if loss > limit),
    }
    return Detection("daily_loss", at is not None, float(worst), float(limit), at, detail)


# Feature drift -----------------------------------------------------------------------------------


def feature_drift(
    reference: Mapping[str, np.ndarray | Sequence[float]],
    current: Mapping[str, np.ndarray | Sequence[float]],
    *,
    threshold: float,
    bins: int,
    min_samples: int = 100,
) -> Detection:
    """Population stability index per feature of ``current`` against ``reference``.

    PSI = Σᵢ (qᵢ − pᵢ)·ln(qᵢ/pᵢ) on ``bins`` equal-frequency bins of the reference (the risk
    checks' ``population_stability_index``, models_registry/checks/data_quality.py, reused
    as is). A feature drifts when its PSI > ``threshold`` (0.25 by convention, Siddiqi 2006).
    PSI is biased upwards on small samples (about (bins − 1)·(1/n + 1/m), Yurdakul 2018), so a
    feature with fewer than ``min_samples`` finite values on either side is reported as
    ``insufficient`` and not tested. ``statistic`` is the largest PSI; ``at_index`` is always
    None (two samples, not a sequence).
    """
    threshold = _positive(threshold, "threshold")
    bins = _positive_int(bins, "bins")
    _require(bins >= 2, "bins", "must be at least 2")
    min_samples = _positive_int(min_samples, "min_samples")
    features: dict[str, Any] = {}
    insufficient: list[str] = []
    for name in sorted(set(reference) & set(current)):
        x = np.asarray(reference[name], dtype=float)
        y = np.asarray(current[name], dtype=float)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if min(x.size, y.size) < min_samples:
            insufficient.append(name)
            continue
        psi = population_stability_index(x, y, n_bins=bins)["psi"]
        features[name] = {"psi": psi, "level": psi_level(psi), "n_reference": int(x.size), "n_current": int(y.size)}
    drifted = sorted(name for name, item in features.items() if item["psi"] > threshold)
    detail = {
        "bins": bins,
        "min_samples": min_samples,
        "features": features,
        "drifted": drifted,
        "insufficient": sorted(insufficient),
        "missing": sorted(set(reference) ^ set(current)),
    }
    if not features:
        return Detection("feature_drift", False, float("nan"), threshold, None, {**detail, "n": 0})
    statistic = max(item["psi"] for item in features.values())
    return Detection("feature_drift", bool(drifted), float(statistic), threshold, None, {**detail, "n": len(features)})
