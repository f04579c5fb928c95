from __future__ import annotations

import pytest

from governance.policy import triggers


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("validated->approved", "validated->approved"),
        (" validated -> approved ", "validated->approved"),
        ("deployment:phase_1", "deployment:phase_1"),
        ("periodic", "periodic"),
        ("dataset_use", "dataset_use"),
    ],
)
def test_parse(text, name):
    assert triggers.parse(text).name == name


@pytest.mark.parametrize(
    "text", ["", "approve", "validated->nowhere", "deployment:Phase 1", "*->approved", "deployment:*"]
)
def test_bad_or_wildcard_triggers_are_refused_for_evaluations(text):
    with pytest.raises(triggers.TriggerError):
        triggers.parse(text)


@pytest.mark.parametrize(
    ("pattern", "trigger", "matches"),
    [
        ("*->approved", "validated->approved", True),
        ("validated->*", "validated->rejected", True),
        ("validated->*", "submitted_for_validation->rejected", False),
        ("deployment:*", "deployment:phase_2", True),
        ("deployment:phase_1", "deployment:phase_2", False),
        ("periodic", "periodic", True),
        ("periodic", "dataset_use", False),
        ("*->*", "deployment:phase_1", False),
    ],
)
def test_patterns(pattern, trigger, matches):
    assert triggers.parse(pattern, allow_wildcard=True).matches(triggers.parse(trigger)) is matches


def test_the_trigger_in_the_document():
    assert triggers.parse("approved->deployed").as_document() == {
        "name": "approved->deployed",
        "kind": "transition",
        "from": "approved",
        "to": "deployed",
        "phase": None,
    }
