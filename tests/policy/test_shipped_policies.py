"""The default policy set shipped in governance/policies/: complete, referenced, tested."""

from __future__ import annotations

import re
from typing import Any

import pytest

from governance.policy import document, loader, testing

EXPECTATIONS = {
    # The reference article's and supervisors' expectations (issue 6) -> the rules encoding them.
    "problem definition before development ends": {"DEV-PROBLEM-01"},
    "three datasets registered, validated, not overlapping": {
        "DATA-REGISTERED-01",
        "DATA-VALIDATED-01",
        "DATA-SPLIT-01",
    },
    "validation by someone other than the developer": {"VAL-INDEP-01", "VAL-INDEP-02"},
    "metric thresholds per purpose and tier": {"PERF-CLASSIFICATION-01", "PERF-BACKTEST-01", "PERF-EVIDENCE-01"},
    "overfitting check passed": {"OVERFIT-01"},
    "high complexity: explainability and more approvers": {"EXPLAIN-01", "APPROVE-COMPLEX-01"},
    "deployment: rollback plan and capital within the tier's maximum": {"DEPLOY-ROLLBACK-01", "DEPLOY-CAPITAL-01"},
    "revalidation within 12 months for tier 1": {"REVAL-TIER1-01"},
    "phased deployment: per-phase capital, daily loss, instruments, duration, exit criteria; rollback before live": {
        "DEPLOY-PHASE-01",
        "DEPLOY-PHASE-CAPITAL-01",
        "DEPLOY-DAILYLOSS-01",
        "DEPLOY-INSTRUMENTS-01",
        "DEPLOY-DURATION-01",
        "DEPLOY-DURATION-02",
        "DEPLOY-EXIT-01",
        "DEPLOY-EXIT-02",
        "DEPLOY-ROLLBACK-02",
    },
    "open high-severity findings block approval": {"FINDINGS-01"},
}
# Texts of ../shared/reference/regulatory-map.md that references may cite.
KNOWN_TEXTS = re.compile(
    r"^(SR 11-7 §(IV|V|VI) / SR 26-2 §(IV|V|VI)|PRA SS1/23 Principle [1-5]"
    r"|MiFID II RTS 6 Art\. \d+|EU AI Act Art\. \d+ \(voluntary)"
)


@pytest.fixture(scope="module")
def shipped():
    return loader.load_directories([loader.DEFAULT_DIRECTORY])


def test_the_shipped_set_encodes_the_expectations(shipped):
    ids = set(shipped.rule_ids)
    for expectation, rules in EXPECTATIONS.items():
        assert rules <= ids, expectation


def test_every_rule_cites_the_regulatory_texts(shipped):
    for rule in shipped.rules:
        assert rule.spec.references, rule.id
        for reference in rule.spec.references:
            assert KNOWN_TEXTS.match(reference), f"{rule.id}: {reference}"


def test_every_rule_has_passing_allow_and_effect_cases(shipped):
    directories = [loader.DEFAULT_DIRECTORY]
    run = testing.run_tests(shipped, directories)
    assert run.ok, [r.failures for r in run.results if not r.passed] + [str(p) for p in run.problems]
    covered = testing.coverage(shipped, run, directories)
    for rule in shipped.rules:
        assert "pass" in covered[rule.id], f"{rule.id} has no allowing case"
        assert rule.spec.effect in covered[rule.id], f"{rule.id} has no {rule.spec.effect} case"


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_shape(value[0])]
    return type(value).__name__ if value is not None else None


@pytest.mark.django_db
def test_the_test_base_document_has_the_builders_shape(validated_version, risk_manager):
    """The documents the tests use and the ones the builder makes have the same fields."""
    base = loader.parse_yaml((loader.DEFAULT_DIRECTORY / "tests" / "base_input.yaml").read_text())
    built = document.build_input_document(
        version=validated_version,
        trigger="validated->approved",
        requested_by=risk_manager,
        risk_assessment=base["risk_assessment"],
        findings=[{"id": 1, "severity": "low", "status": "open", "title": "x", "due_date": None}],
        signoff=base["signoff"],
        deployment=base["deployment"],
    )
    base["findings"] = built["findings"]
    # A version with no deployment: their shapes are compared in tests/signoff/test_deployment_phases.py.
    base["live_deployment"], base["rollback_candidates"] = built["live_deployment"], built["rollback_candidates"]

    def keys(value: Any, prefix: str = "") -> set[str]:
        if not isinstance(value, dict):
            return set()
        out = set()
        for key, item in value.items():
            out.add(prefix + key)
            if key not in ("hyperparameters", "details"):
                out |= keys(item, f"{prefix}{key}.")
                if isinstance(item, list) and item and isinstance(item[0], dict):
                    out |= keys(item[0], f"{prefix}{key}[].")
        return out

    assert keys(base) == keys(built)


def test_configured_directories(settings, tmp_path):
    assert loader.configured_directories() == [loader.DEFAULT_DIRECTORY]
    settings.GOVERNANCE_POLICY_DIRS = [tmp_path]
    assert loader.configured_directories() == [loader.DEFAULT_DIRECTORY, tmp_path]
    settings.GOVERNANCE_POLICY_DEFAULT_SET = False
    assert loader.configured_directories() == [tmp_path]
