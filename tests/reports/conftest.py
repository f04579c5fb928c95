"""Fixtures for reports: the audit signing key, a small log about one model, and a helper that
requests a report and runs its job (the on-commit enqueue never fires inside a test's transaction)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Callable
from typing import Any

import pypdf
import pytest
from django.utils import timezone

from audit import signing
from audit.services import SystemActor
from governance import report_services
from governance.models import Report
from governance.reports.pdf import INSTALL_HINT, missing_pdf_libraries
from governance.reports.signing_cert import generate_demo_certificate
from governance.roles import Role
from models_registry import services as registry_services
from tests.factories import UserFactory

# Without Pango (a fresh machine that skipped scripts/install-system-packages.sh) these tests
# cannot render: each module is skipped, saying why, instead of being imported (some import
# WeasyPrint). CI sets REQUIRE_PDF_LIBS=1, so there they run, and fail.
_MISSING = missing_pdf_libraries()
if _MISSING and os.environ.get("REQUIRE_PDF_LIBS") != "1":

    class _NoPdfLibraries(pytest.File):
        def collect(self) -> Any:
            raise pytest.skip.Exception(f"{_MISSING}; to install them, {INSTALL_HINT}", allow_module_level=True)

    def pytest_pycollect_makemodule(module_path: Any, parent: Any) -> Any:
        return _NoPdfLibraries.from_parent(parent, path=module_path)


@pytest.fixture(autouse=True)
def audit_key(settings) -> Any:
    signing.generate_key_file()
    return signing.load_private_key()


@pytest.fixture
def report_cert(settings, tmp_path) -> str:
    """A self-signed report signing certificate, configured."""
    key_path, cert_path = generate_demo_certificate(tmp_path / "report-signing")
    settings.GOVERNANCE_REPORT_SIGNING_KEY = str(key_path)
    settings.GOVERNANCE_REPORT_SIGNING_CERT = str(cert_path)
    return str(cert_path)


@pytest.fixture
def no_report_cert(settings) -> None:
    settings.GOVERNANCE_REPORT_SIGNING_KEY = ""
    settings.GOVERNANCE_REPORT_SIGNING_CERT = ""


@pytest.fixture
def logged_model(make_model, owner):
    """A model with a few audited changes of its own (created, two updates with a reason)."""
    model = make_model(name="eq-audit")
    for text in ("first change", "second change"):
        registry_services.model_update(actor=owner, model=model, changes={"description": text}, reason=f"why: {text}")
    return model


@pytest.fixture
def other_model(make_model):
    return make_model(name="eq-other")


@pytest.fixture
def regulator(db) -> Any:
    return UserFactory(username="rita", roles=[Role.REGULATOR])


@pytest.fixture
def share(regulator) -> Callable[..., Any]:
    def make(*models: Any) -> Any:
        now = timezone.now()
        return registry_services.engagement_create(
            actor=SystemActor("tests"),
            regulator=regulator,
            authority="PRA",
            purpose="inspection",
            starts_at=now - dt.timedelta(minutes=1),
            ends_at=now + dt.timedelta(days=30),
            models=list(models),
        )

    return make


@pytest.fixture
def generate() -> Callable[..., Report]:
    """Request a report and run its job here (as the Celery task would), returning it issued or failed."""

    def run(*, actor: Any, **kwargs: Any) -> Report:
        report = report_services.report_request(actor=actor, **kwargs)
        report_services.report_generate(report_id=report.pk)
        report.refresh_from_db()
        return report

    return run


def read_pdf(report: Report) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(report_services.report_file(report=report)))


def embedded_data(reader: pypdf.PdfReader) -> dict[str, Any]:
    return json.loads(reader.attachments["report-data.json"][0])


def pdf_text(reader: pypdf.PdfReader) -> str:
    return "\n".join(page.extract_text() or "" for page in reader.pages)
