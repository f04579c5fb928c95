"""policy_activate, policy_test, policy_replay and policy_impact."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from governance import services
from governance.models import PolicyDecision, PolicySet
from governance.policy import loader
from models_registry import services as registry_services

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of a command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return out.getvalue(), err.getvalue(), exc.returncode
    return out.getvalue(), err.getvalue(), 0


def test_policy_activate(compliance, tmp_path):
    out, _, code = run("policy_activate", "--user", "chloe", "--reason", "first set")
    policy_set = PolicySet.objects.get(is_active=True)
    shipped = len(loader.read_directories([loader.DEFAULT_DIRECTORY]))
    assert code == 0
    assert out.strip() == (
        f"Activated policy set {policy_set.content_hash}: {len(policy_set.rule_ids)} rules from {shipped} files "
        "(previous: none)."
    )
    out, _, code = run("policy_activate", "--user", "chloe")
    assert code == 0 and "already in force; nothing changed" in out

    broken = tmp_path / "broken"
    shutil.copytree(loader.DEFAULT_DIRECTORY, broken)
    (broken / "approval.yaml").write_text(
        (broken / "approval.yaml").read_text().replace("count: 1}", "count: 1, quorum: 2}", 1)
    )
    out, err, code = run("policy_activate", "--user", "chloe", "--policy-dir", str(broken))
    assert code == 1 and out == ""
    assert (
        f"{broken}/approval.yaml: rule APPROVE-BASE-01: field 'approval.quorum': Extra inputs are not permitted" in err
    )
    assert f"policy set {policy_set.content_hash} stays in force" in err
    assert PolicySet.objects.get(is_active=True) == policy_set


def test_policy_activate_refuses_unknown_and_unauthorised_users(owner):
    assert run("policy_activate", "--user", "nobody")[1:] == ("no user named 'nobody'", 1)
    _, err, code = run("policy_activate", "--user", owner.username)
    assert code == 1 and "may not activate policy sets" in err
    assert not PolicySet.objects.exists()


def test_policy_test_passes_on_the_shipped_set():
    out, _, code = run("policy_test")
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[-1].endswith(" passed, 0 failed") and int(lines[-1].split()[0]) >= 70
    assert len(lines) == 1  # no failing case lines


def test_policy_test_prints_failing_cases_and_exits_1(tmp_path):
    directory = tmp_path / "mine"
    shutil.copytree(loader.DEFAULT_DIRECTORY, directory)
    (directory / "tests" / "test_extra.yaml").write_text(
        "version: 1\nbase: base_input.yaml\ncases:\n"
        "  - name: wrong expectation\n    trigger: validated->approved\n"
        "    expect: {APPROVE-BASE-01: deny, NO-SUCH-01: pass}\n"
        "  - name: right expectation\n    trigger: validated->approved\n    overall: allow\n"
    )
    out, err, code = run("policy_test", str(directory))
    lines = out.strip().splitlines()
    assert code == 1 and "policy test(s) failed" in err
    assert lines[:-1] == [
        f"FAIL {directory}/tests/test_extra.yaml: wrong expectation: APPROVE-BASE-01: expected deny, got pass "
        "(Approving eq-direction 1.0.0 needs a risk manager's sign-off.); "
        "NO-SUCH-01: no such rule in the set"
    ]
    passed = int(lines[-1].split()[0])
    assert lines[-1] == f"{passed} passed, 1 failed"


def test_policy_test_on_a_set_that_does_not_load(write_policies):
    directory = write_policies({"bad.yaml": "version: 1\nrules:\n  - id: X-01\n    title: t\n"})
    out, _, code = run("policy_test", str(directory))
    assert code == 1
    assert out.startswith(f"REFUSED {directory}/bad.yaml: rule X-01: field 'description': Field required")
    assert out.strip().splitlines()[-1].endswith(" failed") and out.strip().splitlines()[-1].startswith("0 passed")


@pytest.fixture
def decision(active_set, validated_version, risk_manager):
    return services.policy_evaluate(actor=risk_manager, version=validated_version, trigger="validated->approved")


def test_policy_replay_gives_the_same_result(decision):
    out, _, code = run("policy_replay", str(decision.pk))
    assert code == 0
    assert f"Decision {decision.pk} (validated->approved on eq-policy 1.0.0" in out
    assert (
        f"policy set {decision.policy_set_hash} and input {decision.input_sha256}: same result, require_approval" in out
    )
    out, _, code = run("policy_replay", str(decision.pk), "--json")
    assert code == 0 and json.loads(out)["same"] is True and json.loads(out)["differences"] == []


def test_policy_replay_after_the_rules_on_disk_changed_still_uses_the_stored_set(decision, compliance, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(loader.DEFAULT_DIRECTORY, changed)
    text = (
        (changed / "approval.yaml")
        .read_text()
        .replace("roles: [risk manager], count: 1}", "roles: [risk manager], count: 2}", 1)
    )
    (changed / "approval.yaml").write_text(text)
    services.policy_set_activate(actor=compliance, directories=[changed])
    assert run("policy_replay", str(decision.pk))[2] == 0


def _raw_update(table: str, column: str, value: str, pk: int) -> None:
    """Tampering behind the application's back (what the replay must notice)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])


def test_policy_replay_reports_a_tampered_input_document(decision):
    document = dict(decision.input_document)
    document["model"] = {**document["model"], "risk_tier": 1}
    _raw_update("governance_policydecision", "input_document", json.dumps(document), decision.pk)
    out, err, code = run("policy_replay", str(decision.pk))
    assert code == 1 and "does not replay to the same result" in err
    assert f"Decision {decision.pk} (validated->approved on eq-policy 1.0.0): the replay differs:" in out
    assert "input document: stored SHA-256" in out and "(the stored document was altered)" in out
    assert "rule PERF-EVIDENCE-01: now applies (deny), was not evaluated" not in out  # tier 1 is a precondition
    assert "rule PERF-EVIDENCE-01: outcome was 'not_applicable', now 'deny'" in out
    assert "outcome: was require_approval, now deny" in out


def test_policy_replay_reports_a_tampered_stored_policy_set(decision):
    policy_set = decision.policy_set
    files = [dict(f) for f in PolicySet.objects.get(pk=policy_set.pk).files]
    files[0]["text"] = files[0]["text"].replace("count: 1}", "count: 3}", 1)
    _raw_update("governance_policyset", "files", json.dumps(files), policy_set.pk)
    out, _, code = run("policy_replay", str(decision.pk))
    assert code == 1
    assert f"policy set {policy_set.content_hash}: the stored files of policy set" in out and "was altered" in out


def test_policy_replay_of_an_unknown_decision():
    assert run("policy_replay", "999") == ("", "no policy decision 999", 2)


def test_policy_impact_lists_what_a_proposed_set_changes(
    active_set, make_model, make_version, validated_version, split_datasets, owner, tmp_path
):
    # A second model in development without a problem definition: denied at submission today.
    draft = make_version(
        model=make_model(name="eq-draft"),
        training_dataset=split_datasets["training"],
        validation_dataset=split_datasets["validation"],
        test_dataset=split_datasets["test"],
    )
    registry_services.model_version_transition(actor=owner, version=draft, to_status="in_development")
    proposed = tmp_path / "proposed"
    shutil.copytree(loader.DEFAULT_DIRECTORY, proposed)
    text = (proposed / "development.yaml").read_text()
    text = text.replace("    effect: deny\n", "    effect: warn\n", 1)  # DEV-PROBLEM-01 only warns
    (proposed / "development.yaml").write_text(text)
    out, _, code = run("policy_impact", "--policy-dir", str(proposed))
    assert code == 0
    assert out.splitlines()[0].startswith("Proposed policy set ") and active_set.content_hash in out.splitlines()[0]
    assert (
        f"  eq-draft 1.0.0 (version {draft.pk}, in_development) in_development->submitted_for_validation: "
        "deny -> allow [DEV-PROBLEM-01 deny -> warn]"
    ) in out.splitlines()
    assert "eq-policy" not in out  # its problem definition is complete: nothing changes for it
    assert out.splitlines()[-1].startswith("2 versions, ") and "1 would change outcome" in out
    report = json.loads(run("policy_impact", "--policy-dir", str(proposed), "--json")[0])
    assert [c["version_id"] for c in report["outcome_changes"]] == [draft.pk]
    assert report["active_policy_set"] == active_set.content_hash
    only = json.loads(run("policy_impact", "--policy-dir", str(proposed), "--trigger", "periodic", "--json")[0])
    assert only["outcome_changes"] == [] and only["evaluated"] == 2  # one periodic check per version


def test_policy_impact_refuses_a_broken_proposal_and_a_bad_trigger(write_policies, tmp_path):
    broken = write_policies({"x.yaml": "version: 1\nrules: [1]\n"})
    _, err, code = run("policy_impact", "--policy-dir", str(broken))
    assert code == 1 and f"{broken}/x.yaml: rule rules[0]: a rule is a mapping of fields" in err
    _, err, code = run("policy_impact", "--policy-dir", str(loader.DEFAULT_DIRECTORY), "--trigger", "approve")
    assert code == 1 and "'approve' is not a trigger" in err
    assert not PolicyDecision.objects.exists()
