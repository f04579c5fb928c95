"""The monitoring trigger, the rules' ``actions`` field and the shipped anomaly rules."""

from __future__ import annotations

import pytest

from governance.policy import engine, loader, testing, triggers
from governance.policy.engine import SourceFile

RULE = """
version: 1
rules:
  - id: MON-TEST-01
    title: test
    description: test
    applies_to: {applies_to}
    condition: "!input.monitoring.detections.trade_count.breached"
    effect: {effect}
    actions: {actions}
    message: fired
    references: [MiFID II RTS 6 Art. 16]
"""


def _compile(applies_to="[monitoring]", effect="warn", actions="[alert]"):
    text = RULE.format(applies_to=applies_to, effect=effect, actions=actions)
    return loader.compile_files([SourceFile(directory="firm", name="mon.yaml", text=text)])


def test_monitoring_is_a_trigger():
    parsed = triggers.parse("monitoring")
    assert parsed.kind == triggers.MONITORING and parsed.as_document()["name"] == "monitoring"


def test_a_rule_lists_its_actions():
    compiled = _compile(actions="[alert, suspend, rollback]")
    assert compiled.rules[0].spec.actions == ["alert", "suspend", "rollback"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"actions": "[alert, explode]"}, "unknown action(s) 'explode'; actions are alert, revalidate, suspend"),
        ({"actions": "[alert, alert]"}, "an action is listed twice"),
        ({"actions": "[]"}, "list at least one of"),
        ({"applies_to": "[monitoring, periodic]"}, "'actions' work only on the monitoring trigger"),
    ],
)
def test_bad_actions_are_refused_naming_the_file_and_the_rule(kwargs, reason):
    with pytest.raises(loader.PolicyLoadError) as caught:
        _compile(**kwargs)
    (problem,) = caught.value.problems
    assert (problem.file, problem.rule) == ("firm/mon.yaml", "MON-TEST-01")
    assert reason in problem.reason


def test_the_actions_are_part_of_the_sets_identity():
    assert _compile(actions="[alert]").content_hash != _compile(actions="[alert, suspend]").content_hash


def test_the_shipped_anomaly_rules_and_their_cases():
    shipped = loader.load_directories([loader.DEFAULT_DIRECTORY])
    rules = {rule.id: rule for rule in shipped.rules if rule.id.startswith("MON-")}
    assert {rule_id: rule.spec.actions for rule_id, rule in rules.items()} == {
        "MON-ACCURACY-01": ["alert", "suspend", "rollback"],
        "MON-DAILYLOSS-01": ["alert", "suspend"],
        "MON-DRAWDOWN-01": ["alert", "suspend"],
        "MON-DRIFT-01": ["alert", "revalidate"],
        "MON-LOSING-01": ["alert", "suspend"],
        "MON-TRADES-01": ["alert"],
    }
    assert all(rule.patterns == (triggers.parse("monitoring"),) for rule in rules.values())
    assert shipped.parameters["monitoring"]["drift"]["psi_threshold"] == 0.25
    run = testing.run_tests(shipped, [loader.DEFAULT_DIRECTORY])
    mine = [result for result in run.results if result.file.endswith("test_monitoring.yaml")]
    assert len(mine) >= 12 and all(result.passed for result in mine), [r.failures for r in mine if not r.passed]


def test_a_rule_that_fires_renders_the_detection_in_its_message():
    shipped = loader.load_directories([loader.DEFAULT_DIRECTORY])
    document = testing._read_base(loader.DEFAULT_DIRECTORY / "tests", "monitoring_input.yaml")
    document["trigger"] = triggers.parse("monitoring").as_document()
    document["monitoring"]["detections"]["daily_loss"].update(
        breached=True, at="2026-11-18T00:00:00.000000Z", detail={"worst_loss": "100000.01", "limit": "100000.00"}
    )
    evaluation = engine.evaluate(shipped, document)
    fired = {rule.id: rule for rule in evaluation.rules if rule.outcome == "deny"}
    assert list(fired) == ["MON-DAILYLOSS-01"]
    assert fired["MON-DAILYLOSS-01"].message == (
        "eq-direction 1.0.0: a daily loss of 100000.01 USD is beyond the maximum daily loss 100000.00 "
        "(first on 2026-11-18T00:00:00.000000Z)."
    )
