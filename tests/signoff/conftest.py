from __future__ import annotations

import pytest

from governance.roles import Role
from tests.factories import UserFactory

EVIDENCE = [{"title": "Validation report", "reference": "VAL-2026-014 (validation-report-14.pdf)"}]


@pytest.fixture
def second_risk_manager(db):
    return UserFactory(username="rory", roles=[Role.RISK_MANAGER])


@pytest.fixture
def approvable(validated_version, active_set):
    """A validated version of a low-complexity tier 3 model, with the shipped set in force."""
    return validated_version


@pytest.fixture
def approved_version(approvable, owner, risk_manager, compliance):
    from governance import services

    request = services.signoff_submit(
        actor=owner, version=approvable, to_status="approved", justification="Validated.", evidence=EVIDENCE
    )
    services.signoff_respond(actor=risk_manager, request=request, verdict="approve", comment="Risk: fine.")
    services.signoff_respond(actor=compliance, request=request, verdict="approve", comment="Compliance: fine.")
    approvable.refresh_from_db()
    assert approvable.status == "approved"
    return approvable


def deployment(**overrides):
    proposal = {
        "phase": "phase_1",
        "capital_limit": "5000000.00",
        "instruments": ["NVDA"],
        "rollback_plan": "Switch off with the kill switch; positions unwound by the desk within the day.",
    }
    proposal.update(overrides)
    return proposal
