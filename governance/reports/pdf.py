"""The report file: PDF/A-3b with the data (and any other files) embedded, then PAdES-signed.

WeasyPrint writes PDF/A-3b (``pdf_variant="pdf/a-3b"``): fonts embedded, sRGB output intent,
XMP metadata claiming part 3 conformance B, and each attachment listed in the catalog's
``/AF`` with its ``/AFRelationship`` (``Data`` for ``report-data.json``). pyHanko then signs
with an incremental update, which appends to the file and so leaves the attachments, and
the PDF/A claim, as they were.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from governance.reports.context import FileAttachment
from governance.reports.gcpause import cyclic_gc_paused

if TYPE_CHECKING:
    from weasyprint.document import Document

DATA_ATTACHMENT = "report-data.json"
INSTALL_HINT = "run `bash scripts/install-system-packages.sh` (Debian/Ubuntu; docs/reports.md, System requirements)"


class MissingSystemLibrary(RuntimeError):
    """WeasyPrint cannot load a library it needs from the operating system (Pango, HarfBuzz, fontconfig)."""


@cache
def missing_pdf_libraries() -> str | None:
    """Why reports cannot be rendered on this machine, or None when they can.

    WeasyPrint loads Pango and its companions with cffi when it is first imported; without
    them the import fails with an OSError naming a file, which says nothing about the fix.
    """
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        return f"WeasyPrint cannot load a system library it needs (Pango, HarfBuzz, fontconfig): {exc}"
    return None


def require_pdf_libraries() -> None:
    problem = missing_pdf_libraries()
    if problem is not None:
        raise MissingSystemLibrary(f"{problem}; to install them, {INSTALL_HINT}")


def data_json(data: dict[str, Any]) -> bytes:
    """The embedded form of the report's data: sorted keys, UTF-8, so it reads back equal."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_pdfa(
    document: Document,
    *,
    data: dict[str, Any],
    attachments: list[FileAttachment],
    generated_at: datetime,
) -> bytes:
    """The rendered pages as PDF/A-3b bytes, with ``report-data.json`` and ``attachments`` embedded."""
    require_pdf_libraries()
    from weasyprint import Attachment

    embedded = [
        Attachment(
            string=data_json(data),
            name=DATA_ATTACHMENT,
            description="The report's data: everything this report shows, as JSON",
            created=generated_at,
            modified=generated_at,
            relationship="Data",
        ),
        *(
            Attachment(
                string=item.content,
                name=item.name,
                description=item.description,
                created=generated_at,
                modified=generated_at,
                relationship=item.relationship,
            )
            for item in attachments
        ),
    ]
    with cyclic_gc_paused():
        return document.write_pdf(pdf_variant="pdf/a-3b", attachments=embedded, uncompressed_pdf=False)


@dataclass(frozen=True)
class Signature:
    pdf: bytes
    signer_fingerprint: str


def signing_configured() -> bool:
    return bool(settings.GOVERNANCE_REPORT_SIGNING_KEY and settings.GOVERNANCE_REPORT_SIGNING_CERT)


def certificate_fingerprint(cert_path: str | Path) -> str:
    """SHA-256 of the certificate's DER encoding (what ``openssl x509 -fingerprint -sha256`` prints)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def sign_pdf(pdf: bytes, *, reason: str) -> Signature:
    """A PAdES baseline (B-B) signature by the configured certificate, as an incremental update."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    passphrase = settings.GOVERNANCE_REPORT_SIGNING_PASSPHRASE
    signer = signers.SimpleSigner.load(
        settings.GOVERNANCE_REPORT_SIGNING_KEY,
        settings.GOVERNANCE_REPORT_SIGNING_CERT,
        key_passphrase=passphrase.encode() if passphrase else None,
    )
    if signer is None:
        raise ValueError("the report signing key or certificate cannot be read (GOVERNANCE_REPORT_SIGNING_KEY/_CERT)")
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name="ReportSignature",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
    )
    out = signers.sign_pdf(writer, meta, signer=signer)
    return Signature(
        pdf=out.getvalue(), signer_fingerprint=certificate_fingerprint(settings.GOVERNANCE_REPORT_SIGNING_CERT)
    )
