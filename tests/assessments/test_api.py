"""The risk-assessment API (/api/assessments/): a thin adapter over the selector and the services."""

from __future__ import annotations

import io
from typing import Any

import pytest
from celery import current_app
from django.core.management import call_command

from audit.models import Event
from governance.roles import Role
from models_registry import assessment_services, services
from models_registry.models import RiskAssessment
from tests.assessments.conftest import FAST
from tests.assessments.test_rating import outcome
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/assessments/"
CLOSED_PORT = "redis://127.0.0.1:1/0"


@pytest.fixture
def stub_pipeline(monkeypatch):
    """The pipeline returns ``outcome(**metrics)`` at once (the adapter is what is tested here)."""

    def use(**metrics: Any) -> None:
        monkeypatch.setattr(assessment_services.pipeline, "run", lambda inputs, progress: outcome(**metrics))

    use()
    return use


@pytest.fixture
def finished(assessable, owner, stub_pipeline):
    """A full assessment run to success (stubbed outcome) on a new or given version."""

    def run(version: Any = None, parameters: dict[str, Any] | None = None, **metrics: Any) -> RiskAssessment:
        stub_pipeline(**metrics)
        assessment, _ = services.assessment_request(
            actor=owner, version=version or assessable(), parameters=parameters or FAST
        )
        return assessment_services.assessment_execute(assessment_id=assessment.pk)

    return run


def test_detail_shows_progress_results_rating_and_the_findings_raised(api, owner, active_set, finished):
    assessment = finished(drifted_features=2)
    body = api(owner).get(f"{URL}{assessment.pk}/").json()
    assert body["status"] == "succeeded" and body["progress_percent"] == 100 and body["current_step"] == "done"
    assert body["kind"] == "full" and body["version"] == assessment.version_id
    assert body["metrics"]["pbo"] == 0.2 and body["metrics"]["drifted_features"] == 2
    assert body["results"]["backtest"]["equity_curve"]["strategy"] == [1.0, 1.1]
    assert body["overfitting"]["passed"] is True and body["explainability"]["method"] == "permutation_importance"
    assert body["rating"] == "amber" and body["rating_decision"] == assessment.rating_decision_id
    assert [rule["id"] for rule in body["rating_rules"]] == ["ASSESS-DRIFT-01"]
    assert body["rating_rules"][0]["references"]
    [finding] = body["findings"]
    assert finding["severity"] == "medium" and finding["status"] == "open" and finding["title"] == "Drift"
    assert body["inputs"]["artifact_sha256"] == assessment.version.artifact_sha256
    assert body["inputs_key"] == assessment.inputs_key and body["random_seed"] == FAST.get("random_seed", 7)
    assert set(body["environment"]) >= {"python", "numpy", "scikit-learn"}
    assert body["parameters"]["pbo_partitions"] == FAST["pbo_partitions"]
    assert body["requested_by"] == "olivia" and body["error"] is None and body["attempts"] == 1
    assert body["queued_at"] and body["started_at"] and body["finished_at"] and body["duration_seconds"] >= 0


def test_a_failed_assessment_shows_its_error(api, owner, assessable):
    assessment, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    assessment_services.assessment_fail(actor=owner, assessment=assessment, code="bad_data", message="no rows")
    body = api(owner).get(f"{URL}{assessment.pk}/").json()
    assert body["status"] == "failed" and body["error"]["code"] == "bad_data" and body["error"]["message"] == "no rows"
    assert body["metrics"] is None and body["rating"] is None and body["findings"] == []


def test_list_filters_and_scope(api, owner, outsider, active_set, finished, assessable):
    green = finished()
    red = finished(version=assessable(model={"name": "nvda-other"}), pbo=0.9)
    queued, _ = services.assessment_request(actor=owner, version=green.version, kind="performance", parameters=FAST)

    def ids(**query: Any) -> list[int]:
        response = api(owner).get(URL, query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [queued.pk, red.pk, green.pk]  # newest first
    assert ids(rating="red") == [red.pk] and ids(rating="green") == [green.pk] and ids(rating="none") == [queued.pk]
    assert ids(status="queued") == [queued.pk] and ids(kind="performance") == [queued.pk]
    assert ids(version=green.version_id) == [queued.pk, green.pk] and ids(model=red.model_id) == [red.pk]
    row = api(owner).get(URL, {"rating": "red"}).json()["results"][0]
    assert row["model_name"] == "nvda-other" and row["status"] == "succeeded" and "results" not in row
    assert api(owner).get(URL, {"status": "nonsense"}).status_code == 400
    # Out of scope: nothing listed, 404 on read and cancel, and a filter on its version is refused.
    assert api(outsider).get(URL).json()["results"] == []
    assert api(outsider).get(f"{URL}{green.pk}/").status_code == 404
    assert api(outsider).post(f"{URL}{queued.pk}/cancel/").status_code == 404
    assert api(outsider).get(URL, {"version": green.version_id}).status_code == 400
    assert api().get(URL).status_code == 401


def test_sight_of_the_version_without_the_permission_shows_nothing(api, owner, finished, outsider):
    assessment = finished()
    services.model_access_grant(actor=owner, user=outsider, model=assessment.model, permission="view_model")
    assert api(outsider).get(f"/api/versions/{assessment.version_id}/").status_code == 200
    assert not outsider.has_perm("models_registry.view_riskassessment")
    assert api(outsider).get(URL).json()["results"] == []
    assert api(outsider).get(f"{URL}{assessment.pk}/").status_code == 404


def test_findings_are_shown_only_to_those_who_may_see_findings(api, active_set, finished):
    assessment = finished(drifted_features=1)
    auditor = UserFactory(username="ian", roles=[Role.INTERNAL_AUDITOR])
    body = api(auditor).get(f"{URL}{assessment.pk}/").json()
    expected = 1 if auditor.has_perm("governance.view_finding") else 0
    assert len(body["findings"]) == expected


def test_the_list_costs_the_same_few_queries_for_many_rows(
    api, owner, assessable, stub_pipeline, django_assert_max_num_queries
):
    version = assessable()
    for cost in range(5):
        services.assessment_request(actor=owner, version=version, parameters={**FAST, "cost_bps": cost})
    client = api(owner)
    with django_assert_max_num_queries(8):
        response = client.get(URL)
    assert len(response.json()["results"]) == 5


def test_request_creates_then_answers_with_the_same_one(api, owner, assessable, stub_pipeline):
    version = assessable()
    payload = {"version": version.pk, "kind": "full", "parameters": FAST}
    first = api(owner).post(URL, payload, format="json")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["status"] == "queued" and body["requested_by"] == "olivia" and body["celery_task_id"]
    again = api(owner).post(URL, payload, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert RiskAssessment.objects.count() == 1
    assert Event.objects.filter(action="risk_assessment.requested").count() == 1
    # The kind defaults to full; other parameters are another assessment.
    other = api(owner).post(URL, {"version": version.pk, "parameters": {**FAST, "cost_bps": 9}}, format="json")
    assert other.status_code == 201 and other.json()["kind"] == "full"


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        ({"kind": "everything"}, "kind", "everything"),
        ({"parameters": {"pbo_partitions": 3}}, "parameters", "pbo_partitions"),
        ({"parameters": {"colour": "red"}}, "parameters", "colour: unknown parameter"),
        ({"parameters": [1, 2]}, "parameters", "JSON object"),
        ({"version": 999999}, "version", "does not exist"),
    ],
)
def test_bad_requests_name_the_cause_and_change_nothing(api, owner, assessable, payload, field, text):
    version = assessable()
    response = api(owner).post(URL, {"version": version.pk, **payload}, format="json")
    assert response.status_code == 400, response.json()
    assert text in str(response.json()[field])
    assert not RiskAssessment.objects.exists()


def test_a_version_not_ready_is_refused_with_the_reason(api, owner, make_version):
    version = make_version()  # no target, no feature pipeline's data
    response = api(owner).post(URL, {"version": version.pk}, format="json")
    assert response.status_code == 400 and "no target" in str(response.json()["version"])
    assert not RiskAssessment.objects.exists()


def test_people_out_of_scope_or_without_the_permission_are_refused(api, owner, outsider, assessable):
    version = assessable()
    # Out of scope: the version "does not exist" for them (no existence oracle).
    response = api(outsider).post(URL, {"version": version.pk}, format="json")
    assert response.status_code == 400 and "does not exist" in str(response.json()["version"])
    # In scope but without request_riskassessment (a developer): 403 naming the permission.
    developer = UserFactory(username="dev", roles=[Role.MODEL_DEVELOPER])
    services.model_access_grant(actor=owner, user=developer, model=version.model, permission="view_model")
    response = api(developer).post(URL, {"version": version.pk}, format="json")
    assert response.status_code == 403 and "request_riskassessment" in response.json()["detail"]
    assert not RiskAssessment.objects.exists()


def test_cancel(api, owner, assessable, active_set, finished):
    queued, _ = services.assessment_request(actor=owner, version=assessable(), parameters=FAST)
    response = api(owner).post(f"{URL}{queued.pk}/cancel/", {"reason": "wrong data"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    event = Event.objects.get(action="risk_assessment.cancelled", object_id=str(queued.pk))
    assert event.reason == "wrong data"
    # Already finished: 409 with the reason, nothing changed.
    again = api(owner).post(f"{URL}{queued.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    done = finished(version=queued.version, parameters={**FAST, "cost_bps": 3})
    assert api(owner).post(f"{URL}{done.pk}/cancel/").status_code == 409
    # A running one is asked to stop.
    running, _ = services.assessment_request(actor=owner, version=done.version, parameters={**FAST, "cost_bps": 1})
    assessment_services.assessment_start(actor=owner, assessment=running)
    body = api(owner).post(f"{URL}{running.pk}/cancel/").json()
    assert body["status"] == "running" and body["cancel_requested"] is True


@pytest.fixture
def unreachable_broker(settings):
    """A broker on a closed port, as when Redis is down: publishing fails at once. The app's
    pools are forgotten both ways, since a pool keeps the URL it was made with.

    Celery reads its conf through to the Django settings, so what is put back is its own
    layer of changes as it was (not values read while the settings were overridden, which
    would leave every later test non-eager)."""
    from governance.celery import app

    changes = app.conf.changes
    keys = ("task_always_eager", "broker_url", "broker_write_url", "task_publish_retry", "broker_transport_options")
    saved = {key: changes[key] for key in keys if key in changes}
    pools = (app._pool, app.amqp._producer_pool)

    def forget_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = CLOSED_PORT
    app.conf.update(
        task_always_eager=False,
        broker_url=CLOSED_PORT,
        broker_write_url=CLOSED_PORT,
        task_publish_retry=False,
        broker_transport_options={"max_retries": 0},
    )
    forget_pools()
    try:
        assert current_app.conf.task_always_eager is False  # what the service reads
        yield
    finally:
        for key in keys:
            changes.pop(key, None)
        changes.update(saved)
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool, app.amqp._producer_pool = pools


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_answers_503_and_leaves_nothing_queued(api, owner, assessable, unreachable_broker):
    version = assessable()
    response = api(owner).post(URL, {"version": version.pk, "parameters": FAST}, format="json")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["error"] == "service_unavailable" and "job queue is unavailable" in body["detail"]
    assert not RiskAssessment.objects.filter(status__in=["queued", "running"]).exists()
    failed = RiskAssessment.objects.get()
    assert failed.status == "failed" and failed.error["code"] == "broker_unavailable"
    # Asking again (broker still down) is a fresh attempt, refused the same way.
    assert api(owner).post(URL, {"version": version.pk, "parameters": FAST}, format="json").status_code == 503
    assert not RiskAssessment.objects.filter(status="queued").exists()


def test_the_openapi_schema_is_valid_and_describes_the_api(api):
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    document = api().get("/api/schema/", {"format": "json"}).json()
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/assessments/"])
    assert "post" in paths["/api/assessments/{id}/cancel/"]
    assert {"200", "201", "503"} <= set(paths["/api/assessments/"]["post"]["responses"])
    assert "AssessmentStatusEnum" in document["components"]["schemas"]
