"""The audit trail extract, end to end: issued, readable, bound to a checkpoint that verifies,
PDF/A-3b with its data embedded, signed when a certificate is configured."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import zipfile

import pytest
from django.db.models import Q
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from audit import signing
from audit.bundle import verify_bundle
from audit.models import Event
from governance import report_services
from governance.reports.pdf import data_json
from tests.reports.conftest import embedded_data, pdf_text, read_pdf

pytestmark = pytest.mark.django_db


def _squeezed(text: str) -> str:
    # Long hashes wrap across lines in the PDF (overflow-wrap): compare without whitespace.
    return re.sub(r"\s+", "", text)


@pytest.fixture
def issued(generate, compliance, logged_model, other_model, report_cert):
    report = generate(actor=compliance, report_type="audit-trail", model_id=logged_model.pk)
    assert report.status == "succeeded", report.error
    return report


def _expected_seqs(report, model) -> list[int]:
    """The model's events and the report's own, up to the checkpoint: counted here from the log
    directly, not through the builder."""
    condition = Q(object_type="models_registry.model", object_id=str(model.pk)) | Q(
        object_type="governance.report", object_id=str(report.pk)
    )
    return list(
        Event.objects.filter(condition, seq__lte=report.checkpoint.tree_size)
        .order_by("seq")
        .values_list("seq", flat=True)
    )


def test_key_figures_in_the_pdf_text_equal_the_stored_values(issued, logged_model):
    reader = read_pdf(issued)
    data = embedded_data(reader)
    text = pdf_text(reader)
    expected = _expected_seqs(issued, logged_model)

    assert [e["seq"] for e in data["body"]["events"]] == expected
    assert data["body"]["summary"]["event_count"] == len(expected) >= 3
    assert re.search(rf"Events listed\s+{len(expected)}\b", text)
    assert issued.checkpoint.root_hash in _squeezed(text)
    assert data["log"]["root_hash"] == issued.checkpoint.root_hash
    assert data["log"]["tree_size"] == issued.checkpoint.tree_size
    assert f"Page 1 of {issued.page_count}" in text and len(reader.pages) == issued.page_count
    assert "PASSED" in text and data["body"]["completeness"]["passed"] is True
    # The model's changes and their reasons are listed.
    assert "why: second change" in text
    assert [e["action"] for e in data["body"]["events"]][:3] == ["model.created", "model.updated", "model.updated"]


def test_the_embedded_json_is_the_data_and_its_hash_is_recorded(issued):
    reader = read_pdf(issued)
    raw = reader.attachments["report-data.json"][0]
    assert hashlib.sha256(raw).hexdigest() == issued.data_sha256
    # The bytes are exactly the canonical form of the dict they hold.
    assert data_json(embedded_data(reader)) == raw


def test_the_checkpoint_on_the_last_page_verifies(issued, audit_key):
    reader = read_pdf(issued)
    data = embedded_data(reader)
    last_page = _squeezed(reader.pages[-1].extract_text())
    log = data["log"]
    for value in (log["root_hash"], log["signature"], log["public_key_fingerprint"]):
        assert value in last_page
    assert str(log["tree_size"]) in last_page
    head = signing.SignedTreeHead.from_json(log)
    public_key = audit_key.public_key()
    assert signing.key_id(public_key) == log["public_key_fingerprint"]
    assert signing.signature_valid(public_key, head)
    # A root that differs by one digit does not verify.
    forged = signing.SignedTreeHead.from_json(
        {**log, "root_hash": ("0" if log["root_hash"][0] != "0" else "1") + log["root_hash"][1:]}
    )
    assert not signing.signature_valid(public_key, forged)


def test_pdfa3b_claim_and_data_attachment_relationship(issued):
    reader = read_pdf(issued)
    catalog = reader.trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r"pdfaid:part(=\"|>)3", xmp)
    assert re.search(r"pdfaid:conformance(=\"|>)B", xmp)
    relationships = {spec.get_object()["/F"]: spec.get_object()["/AFRelationship"] for spec in catalog["/AF"]}
    assert relationships["report-data.json"] == "/Data"
    assert "audit-bundle.zip" in relationships


def test_signed_with_the_configured_certificate_and_the_signature_validates(issued, report_cert):
    content = report_services.report_file(report=issued)
    assert issued.signed is True
    cert = load_cert_from_pemder(report_cert)
    assert issued.signer_fingerprint == hashlib.sha256(cert.dump()).hexdigest()
    signatures = PdfFileReader(io.BytesIO(content)).embedded_signatures
    assert len(signatures) == 1
    status = validate_pdf_signature(signatures[0], ValidationContext(trust_roots=[cert]))
    assert status.intact and status.valid and status.trusted
    # The signature left the attachments readable.
    assert "report-data.json" in read_pdf(issued).attachments


def test_issuing_is_an_audit_event_with_the_sha256_of_the_stored_file(issued):
    event = Event.objects.get(action="report.issued", object_type="governance.report", object_id=str(issued.pk))
    stored = report_services.report_file(report=issued)
    assert event.after["sha256"] == hashlib.sha256(stored).hexdigest() == issued.sha256
    assert event.after["checkpoint_root_hash"] == issued.checkpoint.root_hash
    assert event.seq > issued.checkpoint.tree_size  # issued after the checkpoint it is bound to
    assert issued.file.name == f"reports/{issued.sha256}.pdf"


def test_the_attached_bundle_and_the_printed_script_verify_independently(issued, tmp_path):
    reader = read_pdf(issued)
    data = embedded_data(reader)
    bundle = reader.attachments["audit-bundle.zip"][0]
    assert hashlib.sha256(bundle).hexdigest() == data["body"]["bundle"]["sha256"]
    zipfile.ZipFile(io.BytesIO(bundle)).extractall(tmp_path)
    result = verify_bundle(tmp_path / "bundle")
    assert result.ok, result.problems
    (tmp_path / "report-data.json").write_bytes(reader.attachments["report-data.json"][0])
    (tmp_path / "verify_extract.py").write_text(data["body"]["verification"]["script"])
    run = subprocess.run(
        [sys.executable, "verify_extract.py", "report-data.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert f"{len(data['body']['events'])} proofs verify" in run.stdout


def test_a_period_extract_lists_that_period_unsigned_without_a_certificate(
    generate, compliance, logged_model, no_report_cert
):
    today = logged_model.created_at.date()
    report = generate(actor=compliance, report_type="audit-trail", period_from=today, period_to=today)
    assert report.status == "succeeded", report.error
    assert report.signed is False and report.signer_fingerprint == ""
    data = embedded_data(read_pdf(report))
    expected = list(
        Event.objects.filter(seq__lte=report.checkpoint.tree_size, timestamp__date=today).values_list("seq", flat=True)
    )
    assert [e["seq"] for e in data["body"]["events"]] == expected
    assert data["report"]["subject"]["kind"] == "none"
    assert PdfFileReader(io.BytesIO(report_services.report_file(report=report))).embedded_signatures == []


def test_an_empty_extract_says_so_and_still_binds_to_the_log(generate, compliance, db, no_report_cert):
    report = generate(actor=compliance, report_type="audit-trail", period_from="2020-01-01", period_to="2020-01-02")
    assert report.status == "succeeded", report.error
    reader = read_pdf(report)
    text = pdf_text(reader)
    assert "No events match this query" in text
    assert "audit-bundle.zip" not in reader.attachments
    assert embedded_data(reader)["body"]["summary"]["event_count"] == 0
