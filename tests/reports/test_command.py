"""manage.py report: requests through the service, runs the Celery job (eager), waits, writes the file."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import Report

pytestmark = pytest.mark.django_db(transaction=True)


def test_report_command_writes_the_issued_pdf(compliance, logged_model, report_cert, tmp_path, capsys):
    out = tmp_path / "out" / "extract.pdf"
    call_command("report", "audit-trail", logged_model.name, "--user", "chloe", "--out", str(out))
    report = Report.objects.get()
    assert report.status == "succeeded" and report.signed
    assert hashlib.sha256(out.read_bytes()).hexdigest() == report.sha256
    printed = capsys.readouterr().out
    assert f"report {report.pk} issued" in printed
    assert f"sha256 {report.sha256}" in printed and f"pages {report.page_count}" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--user", "chloe"], "unknown report type 'nope'"),
        (["audit-trail", "no-such-model", "--user", "chloe"], "no model 'no-such-model'"),
        (["audit-trail", "--user", "chloe", "--from", "2026-03-02", "--to", "2026-03-01"], "period_from"),
        (["audit-trail", "--user", "nobody", "--from", "2026-03-01", "--to", "2026-03-01"], "no active user"),
    ],
)
def test_bad_input_exits_2_and_stores_nothing(compliance, logged_model, tmp_path, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        call_command("report", *args, "--out", str(tmp_path / "x.pdf"))
    assert caught.value.returncode == 2
    assert not Report.objects.exists()
    assert not (tmp_path / "x.pdf").exists()


def test_demo_certificate_is_written_with_a_private_key_file(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("report", "--demo-certificate")
    printed = capsys.readouterr().out
    key, cert = (
        tmp_path / "report-signing" / "report-signing-key.pem",
        tmp_path / "report-signing" / "report-signing-cert.pem",
    )
    assert f"GOVERNANCE_REPORT_SIGNING_KEY={key}" in printed and f"GOVERNANCE_REPORT_SIGNING_CERT={cert}" in printed
    assert oct(key.stat().st_mode & 0o777) == "0o600"
