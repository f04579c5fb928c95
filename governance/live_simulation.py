"""Live trading days for a deployed model, bootstrapped from the real price series.

``manage.py simulate_live`` and ``benchmarks/monitoring_detection.py`` feed the monitor with
these days (docs/simulation.md). **A bootstrap of the real series, not invented data:** every
decision is a real row of a registered dataset (real features, the deployed model's own
prediction from its real artifact, the real next-day outcome and return); a simulated day
draws K such decisions, with a seeded RNG, from the trailing real trading days (default 500)
of the replayed date, for every instrument replayed. What is simulated is only the number of
decisions per day and the timestamps; injections (an accuracy drop, a losing streak) then
change some predictions on purpose, and say so.

One real decision per instrument per day cannot show a 10-point accuracy drop within a week
(docs/simulation.md gives the numbers), which is why a live day is K decisions.

The sampling and injections work on arrays (``Pool``, ``replay``) without a database, so the
benchmark can call them; ``pool_for_deployment`` builds the pool from a deployment through
the registry's own loaders (skops artifacts, feature pipelines).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from governance.models import Deployment
    from models_registry.models import Dataset

DEFAULT_DECISIONS_PER_DAY = 200
DEFAULT_WINDOW_DAYS = 500
DEFAULT_DROP_SIZE = 0.10
DEFAULT_STREAK_LENGTH = 15
# US equities' regular session in UTC (standard time): decisions are spread over it and the
# last one of a day is at the close, 21:00.
SESSION_OPEN = dt.time(14, 30)
SESSION_CLOSE = dt.time(21, 0)
CENT = Decimal("0.01")


class SimulationError(ValueError):
    """Input the simulation cannot work with; the message names the field and the reason."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- injections -----------------------------------------------------------------------------

InjectionKind = Literal["accuracy_drop", "losing_streak"]
_INJECTION = re.compile(r"^(?P<kind>[a-z_]+)@(?P<day>[^:]*)(?::(?P<size>.*))?$")


@dataclass(frozen=True)
class Injection:
    """``accuracy_drop`` from ``day`` on (size: points of accuracy lost, a fraction) or a
    ``losing_streak`` on ``day`` (size: the number of consecutive losing trades). Days count
    from 1."""

    kind: InjectionKind
    day: int
    size: float

    def __str__(self) -> str:
        size = f"{self.size:g}" if self.kind == "accuracy_drop" else str(int(self.size))
        return f"{self.kind}@{self.day}:{size}"


def parse_injection(text: str, *, days: int | None = None) -> Injection:
    """``accuracy_drop@DAY[:SIZE]`` or ``losing_streak@DAY[:LENGTH]``; ``days`` bounds DAY."""
    match = _INJECTION.match(text.strip())
    usage = "expected accuracy_drop@DAY[:SIZE] or losing_streak@DAY[:LENGTH], e.g. accuracy_drop@20:0.10"
    if match is None:
        raise SimulationError(f"--inject {text!r}: {usage}", field="inject")
    kind = match["kind"]
    if kind not in ("accuracy_drop", "losing_streak"):
        raise SimulationError(f"--inject {text!r}: unknown injection {kind!r}; {usage}", field="inject")
    try:
        day = int(match["day"])
    except ValueError:
        raise SimulationError(
            f"--inject {text!r}: DAY must be a whole number, not {match['day']!r}", field="inject"
        ) from None
    if day < 1 or (days is not None and day > days):
        bound = f"1..{days}" if days is not None else ">= 1"
        raise SimulationError(f"--inject {text!r}: day {day} is out of range ({bound})", field="inject")
    raw = match["size"]
    if kind == "accuracy_drop":
        size = DEFAULT_DROP_SIZE
        if raw is not None:
            try:
                size = float(raw)
            except ValueError:
                raise SimulationError(
                    f"--inject {text!r}: SIZE must be a number, not {raw!r}", field="inject"
                ) from None
            if not 0 < size < 1:
                raise SimulationError(
                    f"--inject {text!r}: SIZE is the accuracy lost as a fraction, in (0, 1), e.g. 0.10 for 10 points",
                    field="inject",
                )
        return Injection("accuracy_drop", day, size)
    length = DEFAULT_STREAK_LENGTH
    if raw is not None:
        try:
            length = int(raw)
        except ValueError:
            raise SimulationError(
                f"--inject {text!r}: LENGTH must be a whole number, not {raw!r}", field="inject"
            ) from None
        if length < 1:
            raise SimulationError(f"--inject {text!r}: LENGTH must be at least 1", field="inject")
    return Injection("losing_streak", day, float(length))


# --- the pool of real rows --------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """The real rows a replay draws from: one per instrument and real trading date, with the
    deployed model's prediction and the real outcome and next-day return. Rows are sorted by
    date."""

    instrument: np.ndarray  # str
    date: np.ndarray  # datetime64[D]: the real trading date of the row
    features: np.ndarray  # (n, f) float: the model's inputs
    feature_names: tuple[str, ...]
    predicted: np.ndarray  # int 0/1: the model's prediction
    probability: np.ndarray  # float: the model's probability of class 1
    outcome: np.ndarray  # int 0/1: the real label
    next_return: np.ndarray  # float: the real simple return from the row's close to the next close

    def __post_init__(self) -> None:
        n = len(self.date)
        for name in ("instrument", "features", "predicted", "probability", "outcome", "next_return"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Pool.{name} has {len(getattr(self, name))} rows, not {n}")
        if n and np.any(np.diff(self.date) < np.timedelta64(0, "D")):
            raise ValueError("Pool rows must be sorted by date")

    def __len__(self) -> int:
        return len(self.date)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.outcome

    @property
    def dates(self) -> np.ndarray:
        """The distinct real trading dates, in order."""
        return np.unique(self.date)


def predictions(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's class (0/1) and probability of class 1 for each row of ``X``.

    A classifier without ``predict_proba`` (e.g. an SVC trained without probabilities) gives
    1.0 or 0.0: its prediction, not a made-up calibration."""
    from sklearn.base import is_classifier

    if not is_classifier(model):
        raise SimulationError(
            f"simulate_live replays classifiers of a 0/1 direction; the artifact is a {type(model).__name__}",
            field="model",
        )
    classes = [int(c) for c in getattr(model, "classes_", [])]
    if sorted(classes) != [0, 1]:
        raise SimulationError(f"the model's classes are {classes}, not 0 and 1", field="model")
    predicted = np.asarray(model.predict(X)).astype(int)
    if hasattr(model, "predict_proba"):
        probability = np.asarray(model.predict_proba(X))[:, classes.index(1)].astype(float)
    else:
        probability = predicted.astype(float)
    return predicted, probability


def pool_from_frame(
    *,
    instrument: str,
    dates: Sequence[Any],
    features: pd.DataFrame,
    outcome: Sequence[int],
    next_return: Sequence[float],
    model: Any,
) -> Pool:
    """One instrument's real rows with ``model``'s predictions on them."""
    outcome_arr = np.asarray(outcome).astype(int)
    if not set(np.unique(outcome_arr)) <= {0, 1}:
        raise SimulationError(f"{instrument}: the target is not a 0/1 label", field="target")
    predicted, probability = predictions(model, features)
    day = pd.DatetimeIndex(dates).tz_localize(None) if pd.DatetimeIndex(dates).tz else pd.DatetimeIndex(dates)
    return Pool(
        instrument=np.full(len(outcome_arr), instrument, dtype=object),
        date=day.to_numpy().astype("datetime64[D]"),
        features=features.to_numpy(dtype=float),
        feature_names=tuple(str(c) for c in features.columns),
        predicted=predicted,
        probability=probability,
        outcome=outcome_arr,
        next_return=np.asarray(next_return, dtype=float),
    )


def merge_pools(pools: Sequence[Pool]) -> Pool:
    """Several instruments' rows in one pool, sorted by date (stable: instrument order kept)."""
    if not pools:
        raise SimulationError("nothing to replay: no dataset", field="dataset")
    names = pools[0].feature_names
    for pool in pools[1:]:
        if pool.feature_names != names:
            raise SimulationError("the replayed datasets give different features", field="dataset")
    date = np.concatenate([p.date for p in pools])
    order = np.argsort(date, kind="stable")

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in pools])[order]

    return Pool(
        instrument=cat("instrument"),
        date=date[order],
        features=np.concatenate([p.features for p in pools])[order],
        feature_names=names,
        predicted=cat("predicted"),
        probability=cat("probability"),
        outcome=cat("outcome"),
        next_return=cat("next_return"),
    )


# --- one replayed day -------------------------------------------------------------------------


@dataclass(frozen=True)
class DayDraw:
    """Day ``day`` (from 1) of a replay: the pool rows drawn and the decisions after injections."""

    day: int
    real_date: np.datetime64  # the replayed real trading date (the window ends on it)
    window_accuracy: float  # the model's real accuracy over the window: what a draw expects
    rows: np.ndarray  # indices into the pool
    predicted: np.ndarray
    probability: np.ndarray
    outcome: np.ndarray
    next_return: np.ndarray
    injected: np.ndarray  # bool: the decision was changed by an injection
    injections: tuple[str, ...] = field(default=())

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.outcome

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def position(self) -> np.ndarray:
        """+1 long when the model predicts up, -1 short otherwise: every decision is a trade."""
        return np.where(self.predicted == 1, 1.0, -1.0)

    @property
    def trade_return(self) -> np.ndarray:
        return self.position * self.next_return


def _rng(seed: int, day: int, stream: int) -> np.random.Generator:
    # One stream per (day, purpose): the same seed draws the same rows with or without an
    # injection, so an injected run differs from its clean twin only where it was injected.
    return np.random.default_rng([seed, day, stream])


def replay(
    pool: Pool,
    *,
    days: int,
    decisions_per_day: int = DEFAULT_DECISIONS_PER_DAY,
    seed: int = 0,
    injections: Sequence[Injection] = (),
    window_days: int = DEFAULT_WINDOW_DAYS,
    start: int | None = None,
) -> Iterator[DayDraw]:
    """Draw ``days`` days of ``decisions_per_day`` decisions each.

    Day d replays the real trading date ``dates[start + d - 1]`` and draws, with replacement,
    from the rows of the ``window_days`` real dates ending on it. ``start`` (an index into the
    pool's distinct dates) defaults to the first date with a full window.
    """
    if days < 1:
        raise SimulationError(f"--days must be at least 1, not {days}", field="days")
    if decisions_per_day < 1:
        raise SimulationError(f"--decisions-per-day must be at least 1, not {decisions_per_day}", field="decisions")
    if window_days < 1:
        raise SimulationError(f"the window must be at least 1 day, not {window_days}", field="window")
    dates = pool.dates
    first = window_days - 1 if start is None else start
    if first < 0 or first + days > len(dates):
        raise SimulationError(
            f"the replay needs {days} real trading days after a window of {window_days} "
            f"but the datasets hold {len(dates)} dates"
            + (f" ({dates[0]} to {dates[-1]})" if len(dates) else "")
            + (f"; at most {max(len(dates) - first, 0)} days from this start" if len(dates) else "")
            + " (a smaller --window-days or a longer dataset fits more)",
            field="days",
        )
    for injection in injections:
        if not 1 <= injection.day <= days:
            raise SimulationError(f"--inject {injection}: day {injection.day} is out of range (1..{days})", "inject")
        if injection.kind == "losing_streak" and injection.size > decisions_per_day:
            raise SimulationError(
                f"--inject {injection}: a streak of {int(injection.size)} does not fit in "
                f"{decisions_per_day} decisions a day",
                field="inject",
            )
    # Row ranges per date: rows are sorted by date, so each window is one slice.
    starts = np.searchsorted(pool.date, dates, side="left")
    ends = np.searchsorted(pool.date, dates, side="right")
    correct = pool.correct
    for day in range(1, days + 1):
        at = first + day - 1
        low, high = starts[max(at - window_days + 1, 0)], ends[at]
        rows = _rng(seed, day, 0).integers(low, high, size=decisions_per_day)
        predicted = pool.predicted[rows].copy()
        probability = pool.probability[rows].copy()
        outcome = pool.outcome[rows]
        next_return = pool.next_return[rows]
        injected = np.zeros(decisions_per_day, dtype=bool)
        window_accuracy = float(correct[low:high].mean())
        applied: list[str] = []
        for injection in injections:
            if injection.kind == "accuracy_drop" and day >= injection.day:
                # Flipping each correct decision with probability q lowers the expected
                # accuracy from a to a * (1 - q): q = size / a removes exactly `size`.
                if injection.size > window_accuracy:
                    raise SimulationError(
                        f"--inject {injection}: the model's real accuracy on day {day} is "
                        f"{window_accuracy:.3f}, it cannot lose {injection.size:g}",
                        field="inject",
                    )
                flip_rng = _rng(seed, day, 1)
                flip = (predicted == outcome) & (flip_rng.random(decisions_per_day) < injection.size / window_accuracy)
                predicted[flip] = 1 - predicted[flip]
                probability[flip] = 1.0 - probability[flip]
                injected |= flip
                applied.append(str(injection))
            elif injection.kind == "losing_streak" and day == injection.day:
                length = int(injection.size)
                streak_rng = _rng(seed, day, 2)
                begin = int(streak_rng.integers(0, decisions_per_day - length + 1))
                # A losing trade needs a price move: redraw the streak from the window's rows
                # whose next-day return is not zero, then take the wrong side of each.
                moving = np.flatnonzero(pool.next_return[low:high] != 0) + low
                if not len(moving):
                    raise SimulationError(f"--inject {injection}: no price moved in the window of day {day}", "inject")
                chosen = moving[streak_rng.integers(0, len(moving), size=length)]
                span = slice(begin, begin + length)
                rows[span] = chosen
                outcome = pool.outcome[rows]
                next_return = pool.next_return[rows]
                wrong = np.where(next_return[span] > 0, 0, 1)
                predicted[span] = wrong
                chosen_p = pool.probability[chosen]
                probability[span] = np.where(wrong == 1, np.maximum(chosen_p, 0.5), np.minimum(chosen_p, 0.5))
                injected[span] = True
                applied.append(str(injection))
        yield DayDraw(
            day=day,
            real_date=dates[at],
            window_accuracy=window_accuracy,
            rows=rows,
            predicted=predicted,
            probability=probability,
            outcome=outcome,
            next_return=next_return,
            injected=injected,
            injections=tuple(applied),
        )


# --- calendar and samples ---------------------------------------------------------------------


def _next_business_day(day: dt.date) -> dt.date:
    # The day after, rolled forward to a weekday: Friday and Saturday both give Monday.
    return np.busday_offset(np.datetime64(day, "D") + 1, 0, roll="forward").astype(dt.date)


def _close(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, SESSION_CLOSE, tzinfo=dt.UTC)


def business_days(*, days: int, after: dt.datetime | None, now: dt.datetime) -> list[dt.date]:
    """The ``days`` consecutive business days (Monday to Friday, UTC) to place a replay on.

    They start on the first business day after the date of ``after`` (the deployment's last
    stored sample) or, with nothing stored, end on the last business day whose close is not
    after ``now``. Refused when the last day's close would be in the future."""
    if now.tzinfo is None or (after is not None and after.tzinfo is None):
        raise ValueError("business_days takes timezone-aware datetimes")
    now = now.astimezone(dt.UTC)
    last_fitting = np.busday_offset(np.datetime64(now.date(), "D"), 0, roll="backward").astype(dt.date)
    if _close(last_fitting) > now:
        last_fitting = np.busday_offset(np.datetime64(last_fitting, "D"), -1, roll="backward").astype(dt.date)
    if after is None:
        end = np.datetime64(last_fitting, "D")
        return [np.busday_offset(end, -i, roll="backward").astype(dt.date) for i in range(days - 1, -1, -1)]
    first = _next_business_day(after.astimezone(dt.UTC).date())
    placed = [np.busday_offset(np.datetime64(first, "D"), i).astype(dt.date) for i in range(days)]
    if _close(placed[-1]) > now:
        fit = int(np.busday_count(np.datetime64(first, "D"), np.datetime64(last_fitting, "D") + 1))
        raise SimulationError(
            f"--days {days}: the deployment's last sample is at {after.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC, so the "
            f"days would run from {first} to {placed[-1]} (close {SESSION_CLOSE:%H:%M} UTC), after now "
            f"({now:%Y-%m-%d %H:%M} UTC); samples are never in the future: at most {max(fit, 0)} days fit",
            field="days",
        )
    return placed


def timestamps(day: dt.date, count: int) -> list[dt.datetime]:
    """``count`` aware UTC timestamps spread evenly over the session of ``day``, the last at the close."""
    start = dt.datetime.combine(day, SESSION_OPEN, tzinfo=dt.UTC)
    session = _close(day) - start
    return [start + session * (i + 1) / count for i in range(count)]


def notional_per_decision(capital_limit: Decimal, decisions_per_day: int) -> Decimal:
    """A day's decisions together use at most the deployment's capital limit."""
    return (Decimal(capital_limit) / decisions_per_day).quantize(CENT, rounding=ROUND_DOWN)


def day_samples(
    pool: Pool,
    draw: DayDraw,
    *,
    day: dt.date,
    notional: Decimal,
    feature_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The ingest samples of one day (see ``governance.monitoring_services.monitoring_ingest``)."""
    names = list(feature_names) if feature_names is not None else list(pool.feature_names)
    columns = [pool.feature_names.index(n) for n in names]
    values = pool.features[np.ix_(draw.rows, columns)] if columns else np.empty((len(draw.rows), 0))
    times = timestamps(day, len(draw.rows))
    samples = []
    for i, row in enumerate(draw.rows):
        trade_return = Decimal(f"{draw.trade_return[i]:.10f}")
        samples.append(
            {
                "at": times[i],
                "instrument": str(pool.instrument[row]),
                "predicted": int(draw.predicted[i]),
                "probability": round(float(draw.probability[i]), 6),
                "outcome": int(draw.outcome[i]),
                "trade_count": 1,
                "pnl": (notional * trade_return).quantize(CENT, rounding=ROUND_HALF_EVEN),
                "pnl_kind": "trade",
                "features": {name: round(float(values[i, j]), 8) for j, name in enumerate(names)},
            }
        )
    return samples


# --- from a deployment (database) ---------------------------------------------------------------


def _dataset_rows(dataset: Dataset, *, pipeline: str, target: str, feature_names: list[str] | None) -> Any:
    """A registered dataset's real rows through the version's feature pipeline, as the risk
    assessment builds them: declared cleansing, UTC times, the pipeline's features and target,
    plus the real simple return to the next row's close."""
    from models_registry import datasets, features
    from models_registry.services import read_dataset_frame

    rules = datasets.parse_rules(dataset.rules)
    cleansed, _ = datasets.apply_cleansing(read_dataset_frame(dataset), rules, dataset.time_column)
    if not dataset.time_column or dataset.time_column not in cleansed.columns:
        raise SimulationError(f"dataset {dataset.name!r} has no time column: a replay needs dated rows", "dataset")
    times = datasets.parse_times(cleansed, dataset.time_column)
    if times.isna().any():
        raise SimulationError(f"dataset {dataset.name!r} has unreadable times in {dataset.time_column!r}", "dataset")
    built = features.build(pipeline, cleansed, times.rename(dataset.time_column), target=target, expected=feature_names)
    price_column = next((c for c in ("Adj Close", "Close") if c in cleansed.columns), None)
    if price_column is None:
        raise SimulationError(
            f"dataset {dataset.name!r} has no 'Adj Close' or 'Close' column: the P&L needs real prices", "dataset"
        )
    # Indexed like the pipeline's rows: naive UTC dates (models_registry.features).
    closes = pd.Series(
        cleansed[price_column].astype(float).to_numpy(), index=pd.DatetimeIndex(times.to_numpy()).tz_localize(None)
    )
    next_return = (closes.shift(-1) / closes - 1.0).reindex(built.dates)
    keep = (built.features.notna().all(axis=1) & built.target.notna()).to_numpy() & next_return.notna().to_numpy()
    return built, next_return, keep


def pool_for_deployment(deployment: Deployment, *, datasets: dict[str, Dataset] | None = None) -> Pool:
    """The deployed version's predictions on the real rows of ``datasets`` (instrument ->
    registered dataset), by default its test dataset for the deployment's first instrument."""
    from models_registry import artifacts

    version = deployment.version
    if datasets is None:
        if version.test_dataset is None:
            raise SimulationError(f"version {version} has no test dataset to replay; name one", field="dataset")
        instrument = deployment.instruments[0] if deployment.instruments else version.model.name
        datasets = {instrument: version.test_dataset}
    if not version.target:
        raise SimulationError(f"version {version} names no target: the outcomes are unknown", field="target")
    with version.artifact.open("rb") as handle:
        content = handle.read()
    if hashlib.sha256(content).hexdigest() != version.artifact_sha256:
        raise SimulationError(f"the stored artifact of {version} no longer matches its recorded SHA-256", "model")
    model = artifacts.load_artifact(content)
    pools = []
    for instrument, dataset in datasets.items():
        built, next_return, keep = _dataset_rows(
            dataset,
            pipeline=version.feature_pipeline,
            target=version.target,
            feature_names=version.feature_names or None,
        )
        if not keep.any():
            raise SimulationError(f"dataset {dataset.name!r} gives no complete row to replay", field="dataset")
        pools.append(
            pool_from_frame(
                instrument=instrument,
                dates=built.dates[keep],
                features=built.features.loc[keep],
                outcome=built.target.loc[keep].to_numpy(),
                next_return=next_return.to_numpy()[keep],
                model=model,
            )
        )
    return merge_pools(pools)


# --- feeding the monitor (the command and the demo) ---------------------------------------------


@dataclass
class FedDay:
    """One simulated day fed to the monitor, and what followed it."""

    draw: DayDraw
    day: dt.date
    samples: list[dict[str, Any]]
    batch_id: str
    evaluated: bool  # the anomaly rules were evaluated after the ingest (a worker may lag)
    permission: dict[str, Any]  # the trading permission after the day
    alerts: list[Any]  # the MonitoringAlert rows raised since the previous day
    stopped: str | None = None  # why feeding stopped after this day ("rolled back", "not allowed to trade")


@dataclass
class Plan:
    """A replay checked in full before anything is fed: days placed, rows drawn, notional set."""

    deployment: Deployment
    pool: Pool
    draws: list[DayDraw]
    placed: list[dt.date]
    notional: Decimal
    seed: int

    def feed(self, *, actor: Any, wait: float = 60.0, continue_after_suspension: bool = False) -> Iterator[FedDay]:
        """Ingest one batch per day through ``monitoring_ingest`` as ``actor`` (the anomaly
        rules run after each, on commit) and yield what followed; stops after a day that left
        the model rolled back (the replay is of this version's predictions) or, unless told
        to continue, not allowed to trade. Ingest refusals propagate (nothing of that day is stored)."""
        from governance import selectors
        from governance.models import Deployment as DeploymentModel
        from governance.models import MonitoringAlert
        from governance.monitoring_services import monitoring_ingest

        deployment = self.deployment
        model = deployment.model
        seen = MonitoringAlert.objects.filter(model=model).order_by("-pk").values_list("pk", flat=True).first() or 0
        for draw, day in zip(self.draws, self.placed, strict=True):
            samples = day_samples(self.pool, draw, day=day, notional=self.notional)
            batch_id = f"simulate_live:{deployment.pk}:{day.isoformat()}:s{self.seed}"
            result = monitoring_ingest(actor=actor, model=model, batch_id=batch_id, samples=samples)
            evaluated = _evaluated(deployment, result.batch.received_at, wait)
            selectors.forget_trading_permission(model.pk)  # the state after this day, not a cached answer
            permission = selectors.trading_permission(model_id=model.pk)
            alerts = list(MonitoringAlert.objects.filter(model=model, pk__gt=seen).order_by("pk"))
            seen = alerts[-1].pk if alerts else seen
            live = DeploymentModel.objects.filter(model=model, status__in=DeploymentModel.LIVE_STATUSES).first()
            stopped = None
            if live is None or live.pk != deployment.pk:
                stopped = "rolled back"
            elif not permission["allowed"] and not continue_after_suspension:
                stopped = "not allowed to trade"
            yield FedDay(draw, day, samples, batch_id, evaluated, permission, alerts, stopped)
            if stopped:
                return


def plan(
    deployment: Deployment,
    *,
    days: int,
    injections: Sequence[Injection] = (),
    decisions_per_day: int = DEFAULT_DECISIONS_PER_DAY,
    seed: int = 0,
    window_days: int = DEFAULT_WINDOW_DAYS,
    datasets: dict[str, Dataset] | None = None,
    until: dt.datetime | None = None,
) -> Plan:
    """Place and draw a replay of ``days`` days for a live deployment, without feeding it.

    The days follow the model's last stored sample, or end at ``until`` (default now; never
    later than now) when nothing is stored: the demo places an earlier phase's days before a
    later one's this way."""
    from django.utils import timezone

    from governance.models import MonitoringSample

    now = timezone.now()
    until = min(until or now, now)
    last = MonitoringSample.objects.filter(model=deployment.model).order_by("-at").values_list("at", flat=True).first()
    placed = business_days(days=days, after=last, now=until)
    pool = pool_for_deployment(deployment, datasets=datasets)
    draws = list(
        replay(
            pool,
            days=days,
            decisions_per_day=decisions_per_day,
            seed=seed,
            injections=injections,
            window_days=window_days,
        )
    )
    notional = notional_per_decision(deployment.capital_limit, decisions_per_day)
    return Plan(deployment, pool, draws, placed, notional, seed)


def _evaluated(deployment: Deployment, since: dt.datetime, wait: float) -> bool:
    """Whether the anomaly rules were evaluated after ``since``. The ingest enqueues the
    evaluation on commit: eager Celery has run it already, a worker may take a moment."""
    import time

    from celery import current_app

    from governance import anomaly_services
    from governance.models import PolicyDecision

    if current_app.conf.task_always_eager:  # what the ingest's enqueueing reads
        wait = 0.0  # the evaluation ran (or failed and was logged) when the ingest committed
    deadline = time.monotonic() + wait
    while True:
        decided = PolicyDecision.objects.filter(
            version_id=deployment.version_id, trigger=anomaly_services.TRIGGER, decided_at__gte=since
        ).exists()
        if decided or time.monotonic() >= deadline:
            return decided
        time.sleep(0.2)
