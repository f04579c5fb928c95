"""Activating policy sets and evaluating them: audited, permission-checked, all-or-nothing."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import rfc8785
from django.core.exceptions import ValidationError

from audit.models import Event
from audit.services import SystemActor
from audit.verify import verify_log
from governance import services
from governance.errors import NotPermitted
from governance.models import PolicyDecision, PolicySet
from governance.policy import loader, store
from governance.policy.loader import PolicyLoadError
from models_registry import services as registry_services

pytestmark = pytest.mark.django_db


def _state() -> tuple[int, int, int]:
    return PolicySet.objects.count(), PolicyDecision.objects.count(), Event.objects.count()


def test_a_compliance_officer_activates_the_shipped_set(compliance):
    policy_set, changed = services.policy_set_activate(actor=compliance, reason="initial rules")
    expected = loader.load_directories()
    assert changed and policy_set.is_active
    assert policy_set.content_hash == expected.content_hash
    assert policy_set.rule_ids == expected.rule_ids
    assert policy_set.activated_by == compliance and policy_set.activated_by_label == "chloe"
    stored = {f["name"]: f for f in policy_set.files}
    text = (loader.DEFAULT_DIRECTORY / "validation.yaml").read_text()
    assert stored["validation.yaml"]["text"] == text
    assert stored["validation.yaml"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert stored["validation.yaml"]["directory"] == "governance/policies"
    event = Event.objects.get(action="policy_set.activated")
    assert event.policy_set_hash == policy_set.content_hash
    assert event.object_id == str(policy_set.pk) and event.reason == "initial rules"
    assert event.after["rule_ids"] == expected.rule_ids and event.after["previous"] is None
    assert "text" not in event.after["files"][0]
    # Again: nothing changes and nothing is recorded.
    before = _state()
    assert services.policy_set_activate(actor=compliance) == (policy_set, False)
    assert _state() == before
    assert verify_log().ok


@pytest.mark.parametrize("who", ["owner", "validator", "system"])
def test_only_a_compliance_officer_may_activate(who, request):
    actor = SystemActor("cron") if who == "system" else request.getfixturevalue(who)
    before = _state()
    with pytest.raises(NotPermitted, match="activat"):
        services.policy_set_activate(actor=actor)
    assert _state() == before


def test_a_broken_set_is_refused_and_the_set_in_force_stays(compliance, write_policies, tmp_path):
    in_force, _ = services.policy_set_activate(actor=compliance)
    broken = tmp_path / "broken"
    shutil.copytree(loader.DEFAULT_DIRECTORY, broken)
    text = (
        (broken / "deployment.yaml").read_text().replace("decimal_cmp(input.deployment.capital_limit, '0') > 0", "0 <")
    )
    (broken / "deployment.yaml").write_text(text)
    before = _state()
    with pytest.raises(PolicyLoadError) as caught:
        services.policy_set_activate(actor=compliance, directories=[broken])
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{broken}/deployment.yaml: rule DEPLOY-CAPITAL-01: condition does not compile")
    assert caught.value.status == 400 and caught.value.detail["problems"] == [str(problem)]
    assert _state() == before
    assert PolicySet.objects.get(is_active=True) == in_force


def test_a_new_set_replaces_the_old_one_and_the_old_one_can_come_back(compliance, write_policies, tmp_path):
    first, _ = services.policy_set_activate(actor=compliance)
    changed_dir = tmp_path / "changed"
    shutil.copytree(loader.DEFAULT_DIRECTORY, changed_dir)
    params = (changed_dir / "parameters.yaml").read_text().replace('"1": "10000000"', '"1": "8000000"')
    (changed_dir / "parameters.yaml").write_text(params)
    second, changed = services.policy_set_activate(actor=compliance, directories=[changed_dir])
    assert changed and second.pk != first.pk and second.content_hash != first.content_hash
    first.refresh_from_db()
    assert not first.is_active and second.is_active
    deactivated = Event.objects.get(action="policy_set.deactivated")
    assert deactivated.object_id == str(first.pk) and deactivated.policy_set_hash == first.content_hash
    assert Event.objects.filter(action="policy_set.activated").latest("seq").after["previous"] == first.content_hash
    again, changed = services.policy_set_activate(actor=compliance)
    assert changed and again.pk == first.pk and again.is_active
    assert PolicySet.objects.count() == 2
    assert verify_log().ok


def test_an_evaluation_stores_the_decision_and_its_audit_event(active_set, validated_version, risk_manager):
    decision = services.policy_evaluate(actor=risk_manager, version=validated_version, trigger="validated->approved")
    assert decision.outcome == "require_approval"
    assert decision.policy_set == active_set and decision.policy_set_hash == active_set.content_hash
    assert (decision.model_id, decision.version_id) == (validated_version.model_id, validated_version.pk)
    assert decision.actor == risk_manager and decision.schema_version == 1
    outcomes = {r["id"]: r["outcome"] for r in decision.results}
    assert outcomes["VAL-INDEP-02"] == "pass" and outcomes["DATA-SPLIT-01"] == "pass"
    assert outcomes["APPROVE-BASE-01"] == "require_approval"
    assert outcomes["PERF-EVIDENCE-02"] == "require_approval"  # tier 3 without a risk assessment yet
    assert [a["rule"] for a in decision.required_approvals] == ["APPROVE-BASE-01", "PERF-EVIDENCE-02"]
    # The input hash is SHA-256 of the RFC 8785 canonical JSON, checked here with the reference package.
    stored = PolicyDecision.objects.get(pk=decision.pk)
    assert stored.input_sha256 == hashlib.sha256(rfc8785.dumps(stored.input_document)).hexdigest()
    assert stored.input_document["requested_by"]["username"] == "rhea"
    event = Event.objects.get(action="policy.decided", object_id=str(decision.pk))
    assert event.policy_set_hash == active_set.content_hash
    assert event.object_type == "governance.policydecision" and event.object_id == str(decision.pk)
    assert event.after["outcome"] == "require_approval" and event.after["input_sha256"] == stored.input_sha256
    assert event.after["rules"]["APPROVE-BASE-01"] == "require_approval"
    assert verify_log().ok


def test_approvals_passed_in_by_the_sign_off_workflow_allow_the_transition(
    active_set, validated_version, risk_manager, compliance, owner
):
    signoff = {
        "transition": "validated->approved",
        "requested_by": {"id": owner.pk, "username": owner.username, "roles": ["model owner"]},
        "justification": "validated",
        "submitted_at": "2026-06-01T09:00:00Z",
        "approvals": [
            {
                "user_id": risk_manager.pk,
                "username": "rhea",
                "roles": ["risk manager"],
                "decided_at": "2026-06-02T09:00:00Z",
            },
            {
                "user_id": compliance.pk,
                "username": "chloe",
                "roles": ["compliance officer"],
                "decided_at": "2026-06-02T10:00:00Z",
            },
        ],
    }
    decision = services.policy_evaluate(
        actor=risk_manager, version=validated_version, trigger="validated->approved", signoff=signoff
    )
    assert decision.allowed
    assert all(a["satisfied"] for a in decision.required_approvals)
    assert decision.reasons() == []


def test_a_version_without_a_problem_definition_is_denied_at_submission(
    active_set, make_version, owner, split_datasets
):
    version = make_version(
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=split_datasets["test"],
    )
    version = registry_services.model_version_transition(actor=owner, version=version, to_status="in_development")
    decision = services.policy_evaluate(
        actor=owner, version=version, trigger="in_development->submitted_for_validation"
    )
    assert decision.outcome == "deny"
    (reason,) = decision.reasons()
    assert reason["id"] == "DEV-PROBLEM-01"
    assert reason["message"] == (
        "eq-direction has no complete problem definition: missing objectives, success_criteria, constraints."
    )
    assert "PRA SS1/23 Principle 3" in reason["references"]


def test_evaluating_without_a_set_in_force_is_refused(validated_version, risk_manager):
    before = _state()
    with pytest.raises(store.NoActivePolicySet) as caught:
        services.policy_evaluate(actor=risk_manager, version=validated_version, trigger="validated->approved")
    assert caught.value.status == 409
    assert _state() == before


def test_bad_input_changes_nothing(active_set, validated_version, risk_manager, outsider):
    before = _state()
    with pytest.raises(NotPermitted, match="not in scope"):
        services.policy_evaluate(actor=outsider, version=validated_version, trigger="validated->approved")
    with pytest.raises(ValidationError, match="starts from approved"):
        services.policy_evaluate(actor=risk_manager, version=validated_version, trigger="approved->deployed")
    with pytest.raises(ValidationError, match="deployment"):
        services.policy_evaluate(
            actor=risk_manager, version=validated_version, trigger="periodic", deployment={"phase": 1}
        )
    assert _state() == before
