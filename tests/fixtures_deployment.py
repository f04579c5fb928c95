"""Deployed-model fixtures shared by tests/anomaly, tests/monitoring, tests/reports and
tests/signoff (loaded by tests/conftest.py as a plugin): a version deployed through the
sign-off of its phase plan, and a newer version deployed with the approved one as its
rollback target. The helpers (``deployment``, ``deployment_request``, ``deploy``) are
imported by the tests that build their own proposals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance import services
from governance.models import Deployment, SignOffRequest
from tests.factories import force_fields

EVIDENCE = [{"title": "Validation report", "reference": "VAL-2026-014 (validation-report-14.pdf)"}]


def deployment(**overrides: Any) -> dict[str, Any]:
    """A deployment proposal (phase plan) for a sign-off request: shadow, USD 5m, NVDA."""
    proposal = {
        "phase": "shadow",
        "capital_limit": "5000000.00",
        "instruments": ["NVDA"],
        "rollback_plan": "Switch off with the kill switch; positions unwound by the desk within the day.",
    }
    proposal.update(overrides)
    return proposal


def deployment_request(owner: Any, version: Any, **proposal: Any) -> SignOffRequest:
    """``owner`` asks to deploy ``version`` with the proposal ``deployment(**proposal)``."""
    return services.signoff_submit(
        actor=owner,
        version=version,
        to_status="deployed",
        justification="Phase plan agreed with the desk.",
        evidence=EVIDENCE,
        deployment=deployment(**proposal),
    )


def deploy(owner: Any, version: Any, approver: Any, *, comment: str = "Limits agreed.", **proposal: Any) -> Any:
    """Request the deployment and have ``approver`` approve it (the one approval the shipped
    policies ask of a shadow phase)."""
    request = deployment_request(owner, version, **proposal)
    return services.signoff_respond(actor=approver, request=request, verdict="approve", comment=comment)


def _deploy_in_shadow(version: Any, owner: Any, approver: Any, capture: Any) -> Any:
    with capture(execute=True):
        deploy(owner, version, approver, phase="shadow")
    version.refresh_from_db()
    return version


@pytest.fixture
def deployed(approved_version, owner, second_risk_manager, django_capture_on_commit_callbacks):
    """``approved_version`` deployed in phase shadow (its on-commit work run); the version, refreshed."""
    return _deploy_in_shadow(approved_version, owner, second_risk_manager, django_capture_on_commit_callbacks)


@pytest.fixture
def live_deployment(approved_version, owner, second_risk_manager, django_capture_on_commit_callbacks) -> Deployment:
    """The same, as the deployment row it opened (tests/monitoring calls it ``deployed``; not
    built on ``deployed`` so that a directory may rename it)."""
    version = _deploy_in_shadow(approved_version, owner, second_risk_manager, django_capture_on_commit_callbacks)
    return Deployment.objects.get(version=version)


@pytest.fixture
def newer(approved_version, make_version):
    """Version 1.1.0 of the approved model, approved too: the one deployed, 1.0.0 its rollback target."""
    version = make_version(model=approved_version.model, version="1.1.0")
    return force_fields(version, status="approved")


@pytest.fixture
def deploy_newer(
    approved_version, newer, owner, second_risk_manager, django_capture_on_commit_callbacks
) -> Callable[..., Any]:
    """A factory: ``newer`` deployed in shadow naming ``approved_version`` as its rollback
    target; keyword arguments add to or replace the proposal. Returns ``newer``, refreshed."""

    def make(**overrides: Any) -> Any:
        proposal = {
            "rollback_target": {"version_id": approved_version.pk, "label": approved_version.version},
            **overrides,
        }
        with django_capture_on_commit_callbacks(execute=True):
            deploy(owner, newer, second_risk_manager, phase="shadow", **proposal)
        newer.refresh_from_db()
        return newer

    return make


@pytest.fixture
def deployed_with_target(deploy_newer) -> Callable[..., Any]:
    """``deploy_newer`` with the baseline accuracy 0.6 in the proposal's monitoring parameters
    (no risk assessment ran in these tests: it is what the anomaly rules compare with)."""

    def make(**overrides: Any) -> Any:
        return deploy_newer(**{"monitoring_parameters": {"accuracy": {"baseline": 0.6}}, **overrides})

    return make
