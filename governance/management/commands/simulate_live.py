"""python manage.py simulate_live MODEL --days N [--inject accuracy_drop@DAY] [--inject losing_streak@DAY] ..."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SystemActor
from governance import live_simulation as ls
from governance import selectors
from governance.errors import DomainError
from governance.models import Deployment, MonitoringAlert
from models_registry.models import Dataset, Model

EXIT_STOPPED = 1
EXIT_BAD_INPUT = 2
ACTOR = SystemActor("simulate_live")


class Command(BaseCommand):
    help = (
        "Replay real prices through a deployed model and feed the monitor, one ingest batch per simulated "
        "trading day, as the system actor 'simulate_live'. This is a bootstrap of the real series, not invented "
        "data: each of the K decisions of a day (--decisions-per-day) is a real row of a registered dataset (by "
        "default the version's test dataset; --dataset INSTRUMENT=DATASET, repeatable, names others), drawn with "
        "a seeded RNG (--seed) from the trailing --window-days real trading days of the replayed date; its "
        "prediction is the deployed artifact's own on the row's real features, its outcome the real label, its "
        "P&L the position (long if the model predicts up, else short) x the real next-day return x the capital "
        "limit / K. Only the number of decisions and the timestamps (consecutive business days ending now, or "
        "after the deployment's last sample; never in the future) are simulated. --inject accuracy_drop@DAY[:SIZE] "
        "flips correct predictions from day DAY on so that the expected accuracy falls by SIZE (default 0.10); "
        "--inject losing_streak@DAY[:LENGTH] puts a run of LENGTH losing trades (default 15) on day DAY. Prints "
        "each day, every alert the anomaly rules raised and the trading permission after it, and stops once the "
        "model may no longer trade (unless --continue-after-suspension) or its deployment was rolled back. "
        "Exit status: 0 all days fed, 1 stopped early (suspended or rolled back), 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="Model id or name.")
        parser.add_argument("--days", type=int, required=True, help="Trading days to simulate.")
        parser.add_argument(
            "--inject",
            action="append",
            default=[],
            metavar="KIND@DAY[:SIZE]",
            help="accuracy_drop@DAY[:SIZE] or losing_streak@DAY[:LENGTH]; repeatable. Days count from 1.",
        )
        parser.add_argument(
            "--decisions-per-day",
            type=int,
            default=ls.DEFAULT_DECISIONS_PER_DAY,
            help=f"Decisions (samples) per day (default {ls.DEFAULT_DECISIONS_PER_DAY}; docs/simulation.md says why).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the draws and injections (default 0).")
        parser.add_argument(
            "--window-days",
            type=int,
            default=ls.DEFAULT_WINDOW_DAYS,
            help=f"Real trading days a day draws from (default {ls.DEFAULT_WINDOW_DAYS}).",
        )
        parser.add_argument(
            "--dataset",
            action="append",
            default=[],
            metavar="INSTRUMENT=DATASET",
            help="Replay this registered dataset (id or name) as INSTRUMENT; repeatable. Default: the version's "
            "test dataset as the deployment's first instrument.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="Seconds to wait for a Celery worker to evaluate the anomaly rules after each day (default 60; "
            "without a broker they run at once).",
        )
        parser.add_argument(
            "--continue-after-suspension",
            action="store_true",
            help="Keep feeding a suspended deployment (the ingest accepts it) instead of stopping.",
        )

    def _fail(self, message: str) -> CommandError:
        return CommandError(message, returncode=EXIT_BAD_INPUT)

    def _model(self, ref: str) -> Model:
        model = Model.objects.filter(pk=int(ref)).first() if ref.isascii() and ref.isdigit() and len(ref) < 19 else None
        if model is None:
            model = Model.objects.filter(name=ref).first()
        if model is None:
            raise self._fail(f"no model {ref!r} (give its id or its name)")
        return model

    def _datasets(self, specs: list[str], deployment: Deployment) -> dict[str, Dataset] | None:
        if not specs:
            return None
        chosen: dict[str, Dataset] = {}
        for spec in specs:
            instrument, sep, ref = spec.partition("=")
            instrument, ref = instrument.strip(), ref.strip()
            if not sep or not instrument or not ref:
                raise self._fail(f"--dataset {spec!r}: expected INSTRUMENT=DATASET, e.g. NVDA=42 or 'NVDA=NVDA prices'")
            if deployment.instruments and instrument not in deployment.instruments:
                raise self._fail(
                    f"--dataset {spec!r}: the deployment may not trade {instrument} "
                    f"(instruments: {', '.join(deployment.instruments)})"
                )
            dataset = Dataset.objects.filter(pk=int(ref)).first() if ref.isascii() and ref.isdigit() else None
            dataset = dataset or Dataset.objects.filter(name=ref).first()
            if dataset is None:
                raise self._fail(f"--dataset {spec!r}: no dataset {ref!r} (give its id or its name)")
            chosen[instrument] = dataset
        return chosen

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days < 1:
            raise self._fail(f"--days must be at least 1, not {days}")
        try:
            injections = [ls.parse_injection(text, days=days) for text in options["inject"]]
        except ls.SimulationError as exc:
            raise self._fail(str(exc)) from exc
        model = self._model(options["model"])
        deployment = (
            Deployment.objects.filter(model=model, status__in=Deployment.LIVE_STATUSES)
            .select_related("version", "version__test_dataset")
            .first()
        )
        if deployment is None:
            raise self._fail(f"{model.name} is not deployed: there is no live deployment to feed")
        permission = self._permission(model)
        if not permission["allowed"] and not options["continue_after_suspension"]:
            raise CommandError(
                f"{model.name} may not trade ({permission['reason']}): nothing fed; "
                "--continue-after-suspension feeds it anyway",
                returncode=EXIT_STOPPED,
            )
        datasets = self._datasets(options["dataset"], deployment)
        k = options["decisions_per_day"]
        try:
            replay = ls.plan(
                deployment,
                days=days,
                injections=injections,
                decisions_per_day=k,
                seed=options["seed"],
                window_days=options["window_days"],
                datasets=datasets,
            )
        except ls.SimulationError as exc:
            raise self._fail(str(exc)) from exc
        except (ValidationError, DomainError) as exc:  # a dataset or artifact the registry refuses
            raise self._fail(getattr(exc, "message", None) or "; ".join(exc.messages)) from exc
        pool = replay.pool
        self.stdout.write(
            f"{model.name}: deployment {deployment.pk} (version {deployment.version.version}, phase "
            f"{deployment.phase}); {days} days x {k} decisions, bootstrap of {len(pool)} real rows "
            f"({', '.join(sorted(set(pool.instrument)))}, {pool.dates[0]} to {pool.dates[-1]}), trailing "
            f"{options['window_days']} real days, seed {options['seed']}, notional {replay.notional} "
            f"{deployment.currency} per decision"
            + (f"; injections: {', '.join(str(i) for i in injections)}" if injections else "")
        )
        fed = replay.feed(
            actor=ACTOR, wait=options["wait"], continue_after_suspension=options["continue_after_suspension"]
        )
        while True:
            try:
                day = next(fed, None)
            except (ValidationError, DomainError) as exc:
                raise self._fail(f"the ingest refused a batch: {getattr(exc, 'message', None) or exc}") from exc
            if day is None:
                break
            if not day.evaluated:
                self.stdout.write(
                    f"  (no evaluation of the anomaly rules within {options['wait']} s of day {day.draw.day}'s "
                    "ingest: is a Celery worker running? The alerts below may come later)"
                )
            self._day_line(day.draw, day.day, day.samples, day.permission, deployment.currency)
            for alert in day.alerts:
                self._alert_line(alert)
            if day.stopped == "rolled back":
                deployment.refresh_from_db()
                current = Deployment.objects.filter(model=model, status__in=Deployment.LIVE_STATUSES).first()
                now_live = f"deployment {current.pk} of version {current.version.version}" if current else "nothing"
                self.stdout.write(
                    f"stopped after day {day.draw.day} of {days}: deployment {deployment.pk} is "
                    f"{deployment.get_status_display().lower()}; now live: {now_live}. The replay was of "
                    f"version {deployment.version.version}'s predictions, so it does not feed another version."
                )
                raise CommandError(f"stopped after day {day.draw.day} of {days}: rolled back", returncode=EXIT_STOPPED)
            if day.stopped:
                self.stdout.write(
                    f"stopped after day {day.draw.day} of {days}: {model.name} may no longer trade "
                    f"({day.permission['reason']}); --continue-after-suspension keeps feeding"
                )
                raise CommandError(
                    f"stopped after day {day.draw.day} of {days}: not allowed to trade", returncode=EXIT_STOPPED
                )
        self.stdout.write(f"done: {days} days fed; trading permission: {self._describe(self._permission(model))}")

    def _permission(self, model: Model) -> dict[str, Any]:
        selectors.forget_trading_permission(model.pk)  # the state after this day's ingest, not a cached one
        return selectors.trading_permission(model_id=model.pk)

    @staticmethod
    def _describe(permission: dict[str, Any]) -> str:
        return f"{'allowed' if permission['allowed'] else 'NOT allowed'} ({permission['reason']})"

    def _day_line(
        self, draw: ls.DayDraw, day: dt.date, samples: list[dict[str, Any]], permission: dict[str, Any], currency: str
    ) -> None:
        pnl = sum((s["pnl"] for s in samples), Decimal(0))
        losing = sum(1 for s in samples if s["pnl"] < 0)
        injected = f", injected: {', '.join(draw.injections)} ({int(draw.injected.sum())} decisions)"
        self.stdout.write(
            f"day {draw.day:>3} {day} (real {draw.real_date}): {len(samples)} samples, accuracy {draw.accuracy:.3f} "
            f"(window {draw.window_accuracy:.3f}), losing {losing}, P&L {pnl:+,.2f} {currency}"
            f"{injected if draw.injections else ''}; permission: {self._describe(permission)}"
        )

    def _alert_line(self, alert: MonitoringAlert) -> None:
        results = "; ".join(
            f"{r.get('action')}: {r.get('status')} ({r.get('detail')})" if isinstance(r, dict) else str(r)
            for r in alert.action_results
        )
        self.stdout.write(
            f"  ALERT {alert.rule_id} ({alert.severity}): {alert.message} | actions: "
            f"{', '.join(alert.actions) or 'none'}" + (f" -> {results}" if results else "")
        )
