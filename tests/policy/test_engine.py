"""Evaluation semantics: applicability, fail-closed errors, approvals, overall outcome, messages."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal

import pytest

from governance.policy import engine, loader, testing, triggers
from governance.policy.engine import SourceFile

HEADER = "version: 1\nparameters: {limit: '100.00'}\nrules:\n"


def _set(*rules: str) -> engine.CompiledPolicySet:
    return loader.compile_files([SourceFile("tests", "rules.yaml", HEADER + "".join(rules))])


def _rule(rule_id: str, *, effect: str = "deny", condition: str | None = "true", **extra: str) -> str:
    lines = [
        f"  - id: {rule_id}",
        "    title: A rule",
        "    description: For tests.",
        f"    applies_to: [{extra.pop('applies_to', 'validated->approved')}]",
        f"    effect: {effect}",
        f"    message: {extra.pop('message', 'fired')!r}",
        "    references: [RTS 6 Art. 5]",
    ]
    if condition is not None:
        lines.append(f"    condition: {condition!r}")
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def _doc(trigger: str = "validated->approved", **sections: object) -> dict:
    document = {
        "trigger": triggers.parse(trigger).as_document(),
        "model": {"name": "m", "risk_tier": 2},
        "people": {"developer_ids": [1, 2]},
        "signoff": None,
    }
    document.update(sections)
    return document


def _outcomes(evaluation: engine.Evaluation) -> dict[str, str]:
    return {rule.id: rule.outcome for rule in evaluation.rules}


def test_only_rules_for_the_trigger_are_evaluated():
    policy_set = _set(
        _rule("T-A-01"), _rule("T-B-01", applies_to="'deployment:*'"), _rule("T-C-01", applies_to="'*->approved'")
    )
    assert _outcomes(engine.evaluate(policy_set, _doc())) == {"T-A-01": "pass", "T-C-01": "pass"}
    assert _outcomes(engine.evaluate(policy_set, _doc("deployment:phase_3"))) == {"T-B-01": "pass"}
    assert engine.evaluate(policy_set, _doc("periodic")).outcome == "allow"


def test_precondition_condition_and_effects():
    policy_set = _set(
        _rule("T-NA-01", precondition="'input.model.risk_tier == 1'", condition="false"),
        _rule("T-DENY-01", condition="input.model.risk_tier == 1", message="tier {{ input.model.risk_tier }}"),
        _rule("T-WARN-01", effect="warn", condition="false"),
    )
    evaluation = engine.evaluate(policy_set, _doc())
    assert _outcomes(evaluation) == {"T-NA-01": "not_applicable", "T-DENY-01": "deny", "T-WARN-01": "warn"}
    assert evaluation.outcome == "deny"
    deny = evaluation.by_outcome("deny")[0]
    assert deny.message == "tier 2"
    assert deny.references == ("RTS 6 Art. 5",)
    assert engine.evaluate(_set(_rule("T-WARN-01", effect="warn", condition="false")), _doc()).outcome == "allow"


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ("input.model.missing == 1", "field 'missing' is missing from the input document"),
        ("input.model.name > 1", "TypeError: No such overload"),
        ("input.model.risk_tier", "the expression gave int 2, not true or false"),
        ("input.model.name.matches('[')", "RuntimeError"),
    ],
)
def test_an_expression_that_cannot_be_evaluated_fails_closed(condition, error):
    evaluation = engine.evaluate(_set(_rule("T-ERR-01", condition=condition)), _doc())
    (result,) = evaluation.rules
    assert result.outcome == "deny"
    assert evaluation.outcome == "deny"
    assert error in result.error
    assert result.message.startswith("fired [the rule could not be evaluated (condition: ")
    assert result.message.endswith("and fails closed]")


def test_a_failing_precondition_fails_closed_too():
    (result,) = engine.evaluate(_set(_rule("T-ERR-01", precondition="input.nope", effect="warn")), _doc()).rules
    assert result.outcome == "warn"
    assert result.error.startswith("precondition: field 'nope'")


def test_has_guards_optional_fields():
    policy_set = _set(_rule("T-HAS-01", condition="!has(input.model.override) || input.model.override == 1"))
    assert engine.evaluate(policy_set, _doc()).outcome == "allow"


def _approval(user_id: int, username: str, *roles: str) -> dict:
    return {"user_id": user_id, "username": username, "roles": list(roles), "decided_at": "2026-01-01T00:00:00Z"}


def test_approvals_are_distinct_eligible_people_holding_a_role():
    policy_set = _set(
        _rule(
            "T-APP-01",
            effect="require_approval",
            condition=None,
            approval="{roles: [risk manager, validator], count: 2}",
        )
    )
    signoff = {
        "requested_by": {"id": 7, "username": "req"},
        "approvals": [
            _approval(3, "rhea", "risk manager"),
            _approval(3, "rhea", "risk manager"),  # the same person twice counts once
            _approval(1, "dev", "risk manager"),  # a developer of the model never counts
            _approval(7, "req", "validator"),  # nor the requester
            _approval(8, "olga", "model owner"),  # nor someone without the roles
        ],
    }
    evaluation = engine.evaluate(policy_set, _doc(signoff=signoff))
    (result,) = evaluation.rules
    assert result.outcome == "require_approval"
    assert evaluation.outcome == "require_approval"
    assert result.approval == {
        "roles": ["risk manager", "validator"],
        "count": 2,
        "approved_by": ["rhea"],
        "satisfied": False,
    }
    signoff["approvals"].append(_approval(9, "vera", "validator"))
    evaluation = engine.evaluate(policy_set, _doc(signoff=signoff))
    assert evaluation.outcome == "allow"
    assert evaluation.required_approvals == [
        {
            "rule": "T-APP-01",
            "roles": ["risk manager", "validator"],
            "count": 2,
            "approved_by": ["rhea", "vera"],
            "satisfied": True,
        }
    ]


def test_a_require_approval_rule_whose_condition_holds_needs_no_approval():
    policy_set = _set(
        _rule(
            "T-APP-01",
            effect="require_approval",
            condition="input.model.risk_tier > 1",
            approval="{roles: [risk manager], count: 1}",
        )
    )
    evaluation = engine.evaluate(policy_set, _doc())
    assert evaluation.outcome == "allow"
    assert evaluation.required_approvals == []


def test_deny_wins_over_require_approval():
    policy_set = _set(
        _rule("T-APP-01", effect="require_approval", condition=None, approval="{roles: [risk manager], count: 1}"),
        _rule("T-DENY-01", condition="false"),
    )
    assert engine.evaluate(policy_set, _doc()).outcome == "deny"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("100.00", "100", 0), ("100.01", "100", 1), ("99999999999999999.99", "100000000000000000", -1), (5, "4.5", 1)],
)
def test_decimal_cmp_is_exact(a, b, expected):
    assert engine.decimal_cmp(a, b) == expected
    assert Decimal(str(a)).compare(Decimal(str(b))) == expected


def test_decimal_cmp_in_a_rule_and_its_errors():
    policy_set = _set(_rule("T-CAP-01", condition="decimal_cmp(input.limit, params.limit) <= 0"))
    assert engine.evaluate(policy_set, _doc(limit="100.00")).outcome == "allow"
    assert engine.evaluate(policy_set, _doc(limit="100.001")).outcome == "deny"
    (result,) = engine.evaluate(policy_set, _doc(limit="lots")).rules
    assert result.outcome == "deny" and "not a decimal number" in result.error


def test_messages_render_values_and_never_fail():
    policy_set = _set(
        _rule(
            "T-MSG-01",
            condition="false",
            message="{{ input.model.name }} {{ [1, 2.5] }} {{ input.nothing }} {{ true }} {{ duration('48h') }}",
        )
    )
    (result,) = engine.evaluate(policy_set, _doc()).rules
    assert result.message == "m 1, 2.5 (unknown) true 2 days"


def test_pruned_documents_give_the_same_results_as_whole_ones():
    """Rules see only the parts of the document they read; reading the whole document
    instead must change nothing, on every shipped test case."""
    policy_set = loader.load_directories()
    whole = dataclasses.replace(policy_set, _by_trigger={})
    whole.rules = tuple(dataclasses.replace(rule, paths=None, message_paths=None) for rule in policy_set.rules)
    run = testing.run_tests(policy_set, loader.configured_directories())
    assert run.ok and len(run.results) > 50
    base = loader.parse_yaml((loader.DEFAULT_DIRECTORY / "tests" / "base_input.yaml").read_text())
    for result in run.results:
        assert result.evaluation is not None
    for trigger in (
        "validated->approved",
        "approved->deployed",
        "in_development->submitted_for_validation",
        "periodic",
    ):
        for patch in (
            {},
            {"risk_assessment": None, "signoff": None, "deployment": None},
            {"findings": [{"id": 1, "severity": "high", "status": "open", "title": "x"}]},
        ):
            document = testing.deep_merge(copy.deepcopy(base), patch)
            document["trigger"] = triggers.parse(trigger).as_document()
            assert engine.evaluate(policy_set, document) == engine.evaluate(whole, document)
