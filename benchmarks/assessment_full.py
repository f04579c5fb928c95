"""Full risk assessment speed (issue 7): one classifier on 100,000 rows x 50 features in at most 60 s.

    .venv/bin/python benchmarks/assessment_full.py [--rows 100000] [--features 50] [--json FILE]

Builds a benchmark database of its own (SQLite under ``var/bench/``, recreated each run;
``BENCH_DATABASE_URL=postgres://...`` for PostgreSQL; never the test database), then through
the services, as a real user would: a desk, an owner and a validator; three datasets cut in
time order from 100,000 synthetic daily rows (training 60 %, validation 20 %, test 20 %);
a LogisticRegression (``--model forest`` for a 50-tree random forest of depth 8) trained on
the training rows and registered as a version with the ``columns`` feature pipeline and target
``next_up``. The rows: 50 standard normal features, the next day's log return driven by a
planted linear signal in five of them plus noise, ``next_up`` its sign and ``Close`` the
price path those returns make (so the backtest trades what the target predicts).

Then one full assessment with the default parameters (what a validator requests) runs in this
process (Celery eager) and is timed: wall-clock and process CPU per pipeline step (from its
progress reports), loading the inputs before the first step and storing the results after
the last. Prints JSON with the machine and the load average before and after.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 60.0


def _configure(url: str | None) -> None:
    bench = ROOT / "var" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0000000000")
    os.environ["GOVERNANCE_VAR_DIR"] = str(bench / "assessment_full")
    os.environ.pop("CELERY_BROKER_URL", None)  # the job runs here, so its CPU time is ours
    if url:
        os.environ["DATABASE_URL"] = url
    else:
        db = bench / "assessment_full.sqlite3"
        db.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "governance.settings"
    import django

    django.setup()


def _frame(rows: int, n_features: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    features = rng.standard_normal((rows, n_features))
    signal = features[:, :5] @ np.array([0.5, -0.4, 0.3, 0.2, -0.2])
    next_return = 0.002 * signal + 0.01 * rng.standard_normal(rows)
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(next_return[:-1])]))
    frame = pd.DataFrame(features, columns=[f"f{i:02d}" for i in range(n_features)])
    frame.insert(0, "Date", pd.bdate_range("1800-01-01", periods=rows))
    frame["Close"] = close
    frame["next_up"] = (next_return > 0).astype(int)
    return frame


def _csv(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, date_format="%Y-%m-%d", float_format="%.6f")
    return buffer.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--model", choices=["logistic", "forest"], default="logistic")
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    _configure(os.environ.get("BENCH_DATABASE_URL"))

    import skops.io as sio
    from checks_common import machine
    from django.core.management import call_command
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from audit.services import SystemActor
    from governance import services as org
    from governance.roles import Role
    from models_registry import assessment as pipeline
    from models_registry import services as registry

    before = machine()
    call_command("migrate", interactive=False, verbosity=0)
    system = SystemActor("benchmark")
    desk = org.desk_create(actor=system, code="bench", name="Benchmark desk")
    password = "benchmark-password-0123456789"
    owner = org.user_create(
        actor=system, username="owner", password=password, roles=[Role.MODEL_OWNER, Role.MODEL_DEVELOPER], desk=desk
    )
    validator = org.user_create(actor=system, username="validator", password=password, roles=[Role.VALIDATOR])

    started = time.perf_counter()
    frame = _frame(args.rows, args.features, seed=7)
    cut = [0, int(args.rows * 0.6), int(args.rows * 0.8), args.rows]
    rules = {"required_columns": ["Date", "Close", "next_up"], "monotonic_timestamps": True, "unique": ["Date"]}
    datasets = {}
    for role, (low, high) in zip(("training", "validation", "test"), itertools.pairwise(cut), strict=True):
        datasets[role] = registry.dataset_register(
            actor=owner,
            name=f"synthetic-{role}",
            source_kind="internal",
            collection_policy="Synthetic benchmark data.",
            storage_location="var/bench",
            classification="internal",
            owner=owner,
            desk=desk,
            content=_csv(frame.iloc[low:high]),
            time_column="Date",
            rules=rules,
        )
    names = [c for c in frame.columns if c.startswith("f")]
    train = frame.iloc[: cut[1]]
    estimator = (
        LogisticRegression(C=1.0, max_iter=1000)
        if args.model == "logistic"
        else RandomForestClassifier(n_estimators=50, max_depth=8, min_samples_leaf=50, random_state=7, n_jobs=1)
    )
    estimator.fit(train[names], train["next_up"])
    model = registry.model_create(
        actor=owner,
        name="bench-classifier",
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="logistic_regression" if args.model == "logistic" else "random_forest",
        materiality="1000000.00",
    )
    version = registry.model_version_create(
        actor=owner,
        model=model,
        version="1.0.0",
        artifact=sio.dumps(estimator),
        training_dataset=datasets["training"],
        validation_dataset=datasets["validation"],
        test_dataset=datasets["test"],
        feature_pipeline="columns",
        target="next_up",
    )
    registry.validation_assign(actor=system, model=model, validator=validator)
    setup_s = time.perf_counter() - started

    marks: list[tuple[str, float, float]] = []
    original = pipeline.run

    def timed_run(inputs, progress):
        def report(percent: int, step: str) -> None:
            marks.append((step, time.perf_counter(), time.process_time()))
            progress(percent, step)

        outcome = original(inputs, report)
        marks.append(("storing results and findings", time.perf_counter(), time.process_time()))
        return outcome

    pipeline.run = timed_run
    wall0, cpu0 = time.perf_counter(), time.process_time()
    assessment, _ = registry.assessment_request(actor=validator, version=version)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    pipeline.run = original
    assessment.refresh_from_db()

    points = [("request, start, reading the artifact and datasets", wall0, cpu0), *marks, ("end", wall1, cpu1)]
    steps = {
        name: {"wall_s": round(points[i + 1][1] - at, 2), "cpu_s": round(points[i + 1][2] - cpu, 2)}
        for i, (name, at, cpu) in enumerate(points[:-1])
    }
    total = wall1 - wall0
    report = {
        "target_s": TARGET_S,
        "rows": args.rows,
        "features": args.features,
        "model": type(estimator).__name__,
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "status": assessment.status,
        "error": assessment.error,
        "parameters": assessment.parameters,
        "setup_s": round(setup_s, 2),
        "total_wall_s": round(total, 2),
        "total_cpu_s": round(cpu1 - cpu0, 2),
        "steps": steps,
        "metrics": {k: assessment.metrics.get(k) for k in ("accuracy", "sharpe_ratio", "pbo", "deflated_sharpe_ratio")}
        if assessment.metrics
        else None,
        "machine": before,
        "load_average_after": machine()["load_average"],
        "met": assessment.status == "succeeded" and total <= TARGET_S,
    }
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
