"""manage.py simulate_live end to end: a deployed model on real NVDA data fed day by day through
the monitoring ingest; an injected accuracy drop is detected and the model stopped; a clean
run raises nothing; bad input is refused with the reason and feeds nothing."""

from __future__ import annotations

import io
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from audit.models import Event
from governance import selectors, services
from governance.models import Deployment, MonitoringAlert, MonitoringBatch, MonitoringSample
from models_registry import features
from tests.factories import force_fields
from tests.signoff.conftest import EVIDENCE, deployment
from tests.simulation.conftest import dataset_csv

pytestmark = pytest.mark.django_db(transaction=True)

# The replayed test dataset (2009-2011) gives about 700 feature rows: a 60-day window fits.
BASE = ["--window-days", "60", "--decisions-per-day", "200"]


def _deploy(owner, approver, version, **proposal):
    # No risk assessment runs here: the validation accuracy (0.5, the model's real one) is set.
    request = services.signoff_submit(
        actor=owner,
        version=version,
        to_status="deployed",
        justification="Phase plan agreed with the desk.",
        evidence=EVIDENCE,
        deployment=deployment(monitoring_parameters={"accuracy": {"baseline": 0.5}}, **proposal),
    )
    services.signoff_respond(actor=approver, request=request, verdict="approve", comment="Limits agreed.")
    version.refresh_from_db()
    assert version.status == "deployed"
    return version


@pytest.fixture
def deployed(approved_version, owner, second_risk_manager):
    return _deploy(owner, second_risk_manager, approved_version)


@pytest.fixture
def deployed_with_target(approved_version, make_version, split_datasets, owner, second_risk_manager):
    """Version 1.1.0 deployed with the approved 1.0.0 as its rollback target."""
    datasets = {f"{role}_dataset": dataset for role, dataset in split_datasets.items()}
    newer = make_version(model=approved_version.model, version="1.1.0", **datasets)
    newer = force_fields(newer, status="approved")
    target = {"version_id": approved_version.pk, "label": approved_version.version}
    return _deploy(owner, second_risk_manager, newer, rollback_target=target)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("simulate_live", *args, stdout=out)
    return out.getvalue()


def _fails(*args: str, match: str, code: int = 2) -> None:
    with pytest.raises(CommandError, match=match) as caught:
        call_command("simulate_live", *args, stdout=StringIO())
    assert caught.value.returncode == code


def test_an_injected_accuracy_drop_is_detected_and_the_model_stopped(deployed):
    model = deployed.model
    out = StringIO()
    with pytest.raises(CommandError, match="stopped after day") as caught:
        call_command(
            "simulate_live",
            model.name,
            "--days",
            "12",
            "--inject",
            "accuracy_drop@4:0.2",
            "--seed",
            "1",
            *BASE,
            stdout=out,
        )
    assert caught.value.returncode == 1
    text = out.getvalue()
    alert = MonitoringAlert.objects.get(model=model, rule_id="MON-ACCURACY-01")
    assert "suspend" in alert.actions
    assert "ALERT MON-ACCURACY-01" in text and "may no longer trade" in text
    fed = MonitoringBatch.objects.filter(model=model).count()
    assert 4 <= fed < 12  # detected after the drop began, and the feeding stopped there
    permission = selectors.trading_permission(model_id=model.pk)
    assert permission["allowed"] is False
    assert Deployment.objects.get(model=model).status == "suspended"
    # Every step is in the audit log, by the simulation's system actor.
    events = Event.objects.filter(action="monitoring.batch_ingested")
    assert events.count() == fed and {e.actor_label for e in events} == {"system:simulate_live"}
    assert Event.objects.filter(action="kill_switch.engaged").exists()


def test_with_a_rollback_target_the_drop_rolls_the_model_back_and_the_replay_stops(deployed_with_target):
    model = deployed_with_target.model
    out = StringIO()
    with pytest.raises(CommandError, match="rolled back") as caught:
        call_command("simulate_live", str(model.pk), "--days", "10", "--inject", "accuracy_drop@3", *BASE, stdout=out)
    assert caught.value.returncode == 1
    rolled = Deployment.objects.get(model=model, version=deployed_with_target)
    restored = Deployment.objects.get(model=model, status="active")
    assert rolled.status == "rolled_back" and restored.version.version == "1.0.0"
    assert "does not feed another version" in out.getvalue()
    # Nothing was fed after the rollback: every batch belongs to the rolled-back deployment.
    assert set(MonitoringBatch.objects.values_list("deployment", flat=True)) == {rolled.pk}
    assert Event.objects.filter(action="deployment.rolled_back").count() == 1
    assert selectors.trading_permission(model_id=model.pk)["version"] == "1.0.0"


def test_an_injected_losing_streak_is_caught_on_its_day(deployed):
    model = deployed.model
    out = StringIO()
    with pytest.raises(CommandError, match="stopped after day 2 of 4"):
        call_command("simulate_live", model.name, "--days", "4", "--inject", "losing_streak@2", *BASE, stdout=out)
    alert = MonitoringAlert.objects.get(model=model)
    assert alert.rule_id == "MON-LOSING-01" and alert.detection
    assert "injected: losing_streak@2:15 (15 decisions)" in out.getvalue()
    assert MonitoringBatch.objects.filter(model=model).count() == 2


def test_a_clean_run_feeds_every_day_and_raises_nothing(deployed):
    model = deployed.model
    text = _run(model.name, "--days", "5", "--seed", "3", *BASE)
    assert MonitoringBatch.objects.filter(model=model).count() == 5
    assert MonitoringSample.objects.filter(model=model).count() == 1000
    assert not MonitoringAlert.objects.filter(model=model).exists()
    assert text.count("; permission: allowed") == 5 and "done: 5 days fed" in text
    # A second run continues after the stored samples: nothing fits before now unless time has passed.
    _fails(model.name, "--days", "5", *BASE, match="samples are never in the future")


def test_another_registered_dataset_can_be_replayed(deployed, split_datasets):
    validation = split_datasets["validation"]  # 2008: about 200 feature rows
    text = _run(deployed.model.name, "--days", "2", "--dataset", f"NVDA={validation.pk}", "--window-days", "20")
    assert "2008-" in text and MonitoringSample.objects.count() == 400


def test_samples_are_the_models_real_decisions(deployed):
    _run(deployed.model.name, "--days", "1", "--seed", "2", *BASE)
    samples = list(MonitoringSample.objects.filter(model=deployed.model))
    assert len(samples) == 200
    assert {s.instrument for s in samples} == {"NVDA"}
    assert {s.predicted for s in samples} <= {0, 1} and {s.outcome for s in samples} <= {0, 1}
    assert all(s.predicted == int(s.probability > 0.5) for s in samples)
    # Each sample is a real row of the registered test dataset, with that row's real label.
    real = features.build_features(pd.read_csv(io.BytesIO(dataset_csv("test")), parse_dates=["Date"]))
    label = {
        tuple(round(float(v), 8) for v in row[features.FEATURES]): int(row["next_up"]) for _, row in real.iterrows()
    }
    assert all(label[tuple(s.features[name] for name in features.FEATURES)] == s.outcome for s in samples)
    assert all(
        set(s.features) == {"ret_1", "ret_5", "ret_20", "vol_20", "ma_gap_10", "ma_gap_50", "volume_z_20"}
        for s in samples
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["nope", "--days", "3"], "no model 'nope'"),
        (["{model}", "--days", "0"], "--days must be at least 1"),
        (["{model}", "--days", "3", "--inject", "accuracy_drop"], "expected accuracy_drop@DAY"),
        (["{model}", "--days", "3", "--inject", "accuracy_drop@4"], r"day 4 is out of range \(1..3\)"),
        (["{model}", "--days", "3", "--inject", "surge@1"], "unknown injection 'surge'"),
        (["{model}", "--days", "3", "--dataset", "ORCL=nvda-test"], "the deployment may not trade ORCL"),
        (["{model}", "--days", "3", "--dataset", "NVDA=missing"], "no dataset 'missing'"),
        (["{model}", "--days", "3", "--dataset", "NVDA"], "expected INSTRUMENT=DATASET"),
        (["{model}", "--days", "3", "--window-days", "5000"], "the datasets hold"),
    ],
)
def test_bad_input_is_refused_and_feeds_nothing(deployed, args, match):
    _fails(*[a.format(model=deployed.model.name) for a in args], match=match)
    assert not MonitoringBatch.objects.exists()


def test_a_model_that_is_not_deployed_is_refused(approved_version):
    _fails(approved_version.model.name, "--days", "3", match="is not deployed")
    _fails(str(approved_version.model.pk), "--days", "3", match="is not deployed")


def test_a_suspended_model_is_not_fed_unless_asked(deployed):
    from audit.services import SystemActor

    services.kill_switch_engage(actor=SystemActor("tests"), model=deployed.model, reason="Desk review.")
    _fails(deployed.model.name, "--days", "2", *BASE, match="may not trade", code=1)
    assert not MonitoringBatch.objects.exists()
    _run(deployed.model.name, "--days", "2", "--continue-after-suspension", *BASE)
    assert MonitoringBatch.objects.count() == 2
