"""monitoring_ingest: validation of every field, all or nothing, idempotency by batch id, the
deployment it reports on, who may push, and the one audit event per batch."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit import canonical
from audit.models import Event
from audit.scope import UnauditedWriteError
from audit.services import SystemActor
from governance import monitoring_services, selectors, services
from governance.errors import Conflict, NotPermitted
from governance.models import Deployment, MonitoringBatch, MonitoringSample
from governance.monitoring_services import NotDeployed, NotVisible, monitoring_ingest
from governance.roles import Role
from tests.factories import UserFactory, force_fields
from tests.monitoring.conftest import T0, sample, samples

pytestmark = pytest.mark.django_db


def _ingest(actor, deployed, batch_id="b-1", rows=None):
    return monitoring_ingest(actor=actor, model=deployed.model, batch_id=batch_id, samples=rows or samples(3))


def _nothing_stored():
    assert not MonitoringBatch.objects.exists()
    assert not MonitoringSample.objects.exists()
    assert not Event.objects.filter(action="monitoring.batch_ingested").exists()


def test_a_batch_is_stored_with_exact_values_and_one_event(deployed, gateway):
    rows = samples(3)
    rows[1].update(pnl="1000000.25", pnl_kind="period", predicted=None, probability=None, instrument="")
    rows[2]["at"] = "2026-11-02T15:32:00+01:00"  # 14:32 UTC, with its offset
    result = _ingest(gateway, deployed, rows=rows)

    assert result.created and result.status == "created"
    batch = MonitoringBatch.objects.get()
    assert (batch.batch_id, batch.sample_count, batch.deployment, batch.version_id) == (
        "b-1",
        3,
        deployed,
        deployed.version_id,
    )
    assert (batch.first_at, batch.last_at) == (T0, T0 + dt.timedelta(minutes=2))
    assert batch.trade_count_total == 9
    assert batch.pnl_total == Decimal("999759.25")
    stored = list(MonitoringSample.objects.order_by("pk"))
    assert [s.at for s in stored] == [T0 + dt.timedelta(minutes=i) for i in range(3)]
    assert stored[1].pnl == Decimal("1000000.25") and stored[1].pnl_kind == "period"
    assert stored[1].predicted is None and stored[1].probability is None and stored[1].instrument == ""
    assert stored[0].features == {"ret_1d": 0.012, "vol_20d": 0.31}
    assert {s.model_id for s in stored} == {deployed.model_id}
    assert {s.batch_id for s in stored} == {batch.pk}

    event = Event.objects.get(action="monitoring.batch_ingested")
    assert event.object_id == str(batch.pk)
    assert event.after["sample_count"] == 3
    assert event.after["pnl_total"] == "999759.25"
    assert event.after["trade_count_total"] == 9
    assert event.after["first_at"] == "2026-11-02T14:30:00Z"
    assert event.after["content_sha256"] == batch.content_sha256
    # The hash binds the rows: recomputed from what is stored, it matches the event.
    recomputed = hashlib.sha256(canonical.dumps(monitoring_services.canonical_samples(batch))).hexdigest()
    assert recomputed == batch.content_sha256
    assert len(batch.content_sha256) == 64


def test_the_same_batch_again_is_a_replay_and_stores_nothing(deployed, gateway):
    first = _ingest(gateway, deployed)
    again = _ingest(gateway, deployed)
    assert not again.created and again.status == "replayed"
    assert again.batch.pk == first.batch.pk
    assert again.as_dict() | {"status": "created"} == first.as_dict()
    assert MonitoringSample.objects.count() == 3
    assert Event.objects.filter(action="monitoring.batch_ingested").count() == 1


def test_a_replay_is_recognised_whatever_the_offset_or_number_form(deployed, gateway):
    _ingest(gateway, deployed, rows=[sample(0, pnl="5.5")])
    again = _ingest(gateway, deployed, rows=[sample(0, at="2026-11-02T09:30:00-05:00", pnl=Decimal("5.50"))])
    assert not again.created


def test_the_same_batch_id_with_other_content_is_a_conflict_naming_it(deployed, gateway):
    _ingest(gateway, deployed)
    with pytest.raises(Conflict, match=r"batch 'b-1'.*already received with other content"):
        _ingest(gateway, deployed, rows=samples(3, pnl="-120.51"))
    assert MonitoringSample.objects.count() == 3
    assert Event.objects.filter(action="monitoring.batch_ingested").count() == 1


def test_batch_ids_are_per_model(deployed, gateway):
    _ingest(gateway, deployed, batch_id="day-1")
    _ingest(gateway, deployed, batch_id="day-2", rows=samples(2, start=10))
    assert list(MonitoringBatch.objects.order_by("pk").values_list("batch_id", flat=True)) == ["day-1", "day-2"]


@pytest.mark.parametrize("batch_id", ["", "a" * 101, "has space", "slash/no", "é", None, 7])
def test_a_bad_batch_id_is_refused(deployed, gateway, batch_id):
    with pytest.raises(ValidationError) as error:
        _ingest(gateway, deployed, batch_id=batch_id)
    assert "batch_id" in error.value.message_dict
    _nothing_stored()


BAD_SAMPLES = [
    ({"colour": "red"}, "sample 1: unknown field(s) colour"),
    ({"at": None}, "sample 1: 'at' must be an ISO 8601 timestamp"),
    ({"at": "yesterday"}, "sample 1: 'at' is not an ISO 8601 timestamp"),
    ({"at": "2026-11-02T14:31:00"}, "sample 1: 'at' has no UTC offset"),
    ({"at": "2099-01-01T00:00:00Z"}, "sample 1: 'at' 2099-01-01T00:00:00Z is in the future"),
    ({"at": "2026-11-02T14:29:00Z"}, "sample 1: out of order"),
    ({"probability": 1.5}, "sample 1: 'probability' must be between 0 and 1"),
    ({"probability": -0.01}, "sample 1: 'probability' must be between 0 and 1"),
    ({"probability": "0.5"}, "sample 1: 'probability' must be a number or null"),
    ({"probability": float("nan")}, "sample 1: 'probability' must be a number or null"),
    ({"predicted": 0.5}, "sample 1: 'predicted' must be an integer class label"),
    ({"predicted": True}, "sample 1: 'predicted' must be an integer class label"),
    ({"outcome": "1"}, "sample 1: 'outcome' must be an integer class label"),
    ({"trade_count": -1}, "sample 1: 'trade_count' must be an integer >= 0"),
    ({"trade_count": 2.0}, "sample 1: 'trade_count' must be an integer >= 0"),
    ({"pnl": "1e3"}, "sample 1: 'pnl' must be a decimal with at most 2 places"),
    ({"pnl": "NaN"}, "sample 1: 'pnl' must be a decimal with at most 2 places"),
    ({"pnl": "Infinity"}, "sample 1: 'pnl' must be a decimal with at most 2 places"),
    ({"pnl": "12.345"}, "sample 1: 'pnl' must be a decimal with at most 2 places"),
    ({"pnl": "1,000.00"}, "sample 1: 'pnl' must be a decimal with at most 2 places"),
    ({"pnl": 0.1}, "sample 1: 'pnl' must be a decimal string or an exact JSON number, not a binary float"),
    ({"pnl": Decimal("NaN")}, "sample 1: 'pnl' must be a finite amount"),
    ({"pnl": Decimal("0.001")}, "sample 1: 'pnl' has more than 2 decimal places"),
    ({"pnl": Decimal("1e30")}, "sample 1: 'pnl' is out of range"),
    ({"pnl": [1]}, "sample 1: 'pnl' must be a decimal string"),
    ({"pnl_kind": "daily"}, "sample 1: 'pnl_kind' must be one of trade, period"),
    ({"currency": "EUR"}, "sample 1: 'currency' EUR is not the deployment's currency USD"),
    ({"currency": "usd"}, "sample 1: 'currency' must be a 3-letter ISO 4217 code"),
    ({"instrument": 5}, "sample 1: 'instrument' must be text"),
    ({"instrument": "X" * 51}, "sample 1: 'instrument' must be text"),
    ({"features": [1, 2]}, "sample 1: 'features' must be an object"),
    ({"features": {"ret": "high"}}, "sample 1: 'features' 'ret' must map a name to a finite number"),
    ({"features": {"ret": float("inf")}}, "sample 1: 'features' 'ret' must map a name to a finite number"),
]


@pytest.mark.parametrize(("change", "message"), BAD_SAMPLES, ids=[m for _, m in BAD_SAMPLES])
def test_one_bad_sample_rejects_the_whole_batch_naming_index_and_field(deployed, gateway, change, message):
    rows = samples(3)
    rows[1].update(change)
    with pytest.raises(ValidationError) as error:
        _ingest(gateway, deployed, rows=rows)
    problems = error.value.message_dict["samples"]
    assert any(p.startswith(message) for p in problems), problems
    _nothing_stored()


def test_a_missing_timestamp_and_a_non_object_are_named(deployed, gateway):
    rows = samples(3)
    del rows[0]["at"]
    rows[2] = "not a sample"
    with pytest.raises(ValidationError) as error:
        _ingest(gateway, deployed, rows=rows)
    assert error.value.message_dict["samples"] == ["sample 0: 'at' is required", "sample 2: must be an object"]


def test_a_small_clock_skew_is_allowed(deployed, gateway, settings):
    settings.GOVERNANCE_MONITORING_CLOCK_SKEW = 30
    soon = (timezone.now() + dt.timedelta(seconds=10)).isoformat()
    assert _ingest(gateway, deployed, rows=[sample(0, at=soon)]).created
    settings.GOVERNANCE_MONITORING_CLOCK_SKEW = 0
    later = (timezone.now() + dt.timedelta(seconds=10)).isoformat()
    with pytest.raises(ValidationError, match="in the future"):
        _ingest(gateway, deployed, batch_id="b-2", rows=[sample(0, at=later)])


def test_equal_timestamps_are_in_order(deployed, gateway):
    assert _ingest(gateway, deployed, rows=[sample(0), sample(0, instrument="AMD")]).created


def test_a_batch_before_the_last_stored_sample_is_out_of_order(deployed, gateway):
    _ingest(gateway, deployed, batch_id="b-1", rows=samples(3, start=10))
    with pytest.raises(ValidationError, match=r"sample 0: out of order.*before the last stored sample"):
        _ingest(gateway, deployed, batch_id="b-2", rows=samples(3, start=11))
    assert MonitoringBatch.objects.count() == 1
    # Starting at the last stored timestamp is fine.
    assert _ingest(gateway, deployed, batch_id="b-3", rows=samples(3, start=12)).created


@pytest.mark.parametrize("rows", [[], "samples", None, {"at": "x"}])
def test_samples_must_be_a_non_empty_list(deployed, gateway, rows):
    with pytest.raises(ValidationError) as error:
        monitoring_ingest(actor=gateway, model=deployed.model, batch_id="b-1", samples=rows)
    assert error.value.message_dict["samples"] == ["a non-empty list of samples is required"]
    _nothing_stored()


def test_a_batch_beyond_the_limit_is_refused(deployed, gateway, settings):
    settings.GOVERNANCE_MONITORING_MAX_BATCH = 5
    with pytest.raises(ValidationError, match=r"at most 5 samples per batch.*got 6"):
        _ingest(gateway, deployed, rows=samples(6))
    _nothing_stored()
    assert _ingest(gateway, deployed, rows=samples(5)).created


def test_a_model_that_is_not_deployed_is_404(approved_version, owner):
    with pytest.raises(NotDeployed, match="is not deployed") as error:
        monitoring_ingest(actor=owner, model=approved_version.model, batch_id="b-1", samples=samples(2))
    assert error.value.status == 404
    _nothing_stored()


def test_a_suspended_deployment_still_accepts_samples(deployed, gateway, owner):
    services.kill_switch_engage(actor=owner, model=deployed.model, reason="limit breached")
    assert Deployment.objects.get().status == "suspended"
    result = _ingest(gateway, deployed)
    assert result.created
    assert Event.objects.get(action="monitoring.batch_ingested").after["deployment_status"] == "suspended"


def test_a_replay_after_the_deployment_ended_still_answers_the_batch(deployed, gateway, owner):
    _ingest(gateway, deployed)
    force_fields(deployed, status="ended")
    assert not _ingest(gateway, deployed).created
    with pytest.raises(NotDeployed):
        _ingest(gateway, deployed, batch_id="b-2", rows=samples(1, start=50))


def test_only_holders_of_ingest_monitoring_in_scope_may_push(deployed, gateway, outsider, owner):
    auditor = UserFactory(username="ian", roles=[Role.INTERNAL_AUDITOR])  # sees every model
    with pytest.raises(NotPermitted, match=r"needs governance.ingest_monitoring"):
        _ingest(auditor, deployed)
    stranger = UserFactory(username="other-gateway", roles=[Role.TRADING_SYSTEM])
    with pytest.raises(NotVisible, match=r"no model \d+ that other-gateway can see"):
        _ingest(stranger, deployed)
    with pytest.raises(NotVisible):  # scope first: an outsider is not told that the model exists
        _ingest(outsider, deployed)
    _nothing_stored()
    assert _ingest(owner, deployed, batch_id="by-owner").created


def test_a_system_actor_may_push(deployed):
    result = _ingest(SystemActor("manage.py simulate_live"), deployed)
    assert result.batch.received_by_label == "system:manage.py simulate_live"


def test_the_event_is_in_the_same_transaction_as_the_rows(deployed, gateway, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(monitoring_services, "record_event", broken)
    with pytest.raises(RuntimeError):
        _ingest(gateway, deployed)
    _nothing_stored()


def test_hooks_run_after_commit_for_new_batches_only(
    deployed, gateway, monkeypatch, django_capture_on_commit_callbacks
):
    seen: list[int] = []
    monkeypatch.setattr(monitoring_services, "after_ingest_hooks", [seen.append])
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(gateway, deployed)
    assert seen == [deployed.pk]
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(gateway, deployed)  # a replay
    assert seen == [deployed.pk]


def test_a_failing_hook_neither_undoes_the_ingest_nor_stops_the_others(
    deployed, gateway, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    seen: list[int] = []

    def broken(deployment_id: int) -> None:
        raise RuntimeError("evaluator down")

    monkeypatch.setattr(monitoring_services, "after_ingest_hooks", [broken, seen.append])
    with django_capture_on_commit_callbacks(execute=True):
        result = _ingest(gateway, deployed)
    assert result.created and MonitoringBatch.objects.count() == 1
    assert seen == [deployed.pk]
    assert "after_ingest_hooks[" in caplog.text and "broken" in caplog.text


def test_samples_are_written_only_by_the_service(deployed, gateway):
    _ingest(gateway, deployed)
    row = MonitoringSample.objects.first()
    with pytest.raises(UnauditedWriteError):
        MonitoringSample.objects.bulk_create(
            [MonitoringSample(batch=row.batch, deployment=deployed, model=row.model, at=T0)]
        )
    with pytest.raises(UnauditedWriteError):
        MonitoringSample.objects.filter(pk=row.pk).update(pnl=0)
    with pytest.raises(UnauditedWriteError):
        MonitoringSample.objects.all().delete()
    with pytest.raises(UnauditedWriteError):
        row.save()
    assert MonitoringSample.objects.count() == 3


def test_monitoring_series_gives_columns_in_time_order(deployed, gateway):
    rows = samples(3)
    rows[1].update(pnl=None, probability=None, outcome=None)
    _ingest(gateway, deployed, rows=rows)
    series = selectors.monitoring_series(deployment=deployed)
    assert series["trade_count"].tolist() == [3, 3, 3]
    assert series["probability"][1] != series["probability"][1]  # NaN for a null
    assert series["pnl"][0] == -120.5
    assert series["pnl_exact"] == [Decimal("-120.50"), None, Decimal("-120.50")]
    assert str(series["at"][0]) == "2026-11-02T14:30:00.000000"
    later = selectors.monitoring_series(deployment=deployed.pk, since=T0 + dt.timedelta(minutes=1))
    assert later["outcome"].tolist()[1:] == [0.0]
    assert len(later["id"]) == 2
    empty = selectors.monitoring_series(deployment=deployed, since=T0 + dt.timedelta(days=1))
    assert len(empty["at"]) == 0 and empty["pnl_exact"] == []
