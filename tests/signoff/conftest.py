from __future__ import annotations

from tests.conftest import EVIDENCE  # noqa: F401  (used by the sign-off tests)


def deployment(**overrides):
    proposal = {
        "phase": "shadow",
        "capital_limit": "5000000.00",
        "instruments": ["NVDA"],
        "rollback_plan": "Switch off with the kill switch; positions unwound by the desk within the day.",
    }
    proposal.update(overrides)
    return proposal
