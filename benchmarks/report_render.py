"""Rendering cost of a report (issue 9): the audit trail extract of N events, stage by stage,
against the same content laid out with WeasyPrint's defaults.

    .venv/bin/python benchmarks/report_render.py [--events 1000] [--runs 3] [--json FILE]

No database. The data dict has the audit trail builder's shape (``governance/reports/builders/
audit_trail.py``): N events with 1 to 6 changed fields each (short and long values), a reason on
one in three, and an inclusion proof of ceil(log2 N) hashes per event. Stages, each timed
(best and median wall-clock and process CPU of ``--runs`` runs after one warm-up):

* ``html``: charts (matplotlib SVG) and the Django template;
* ``layout``: WeasyPrint's layout with the project stylesheet (``report.css``);
* ``pdfa``: writing PDF/A-3b with the data attached;
* ``sign``: a PAdES signature with pyHanko (a self-signed demo certificate);
* ``defaults``: the same HTML laid out and written with WeasyPrint's defaults only (no project
  stylesheet, plain PDF): the baseline the issue asks to compare with.

Prints the machine and load, then a JSON summary (pages, bytes, ms per stage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402
from weasyprint import HTML  # noqa: E402

from benchmarks.checks_common import machine  # noqa: E402
from governance.reports import registry  # noqa: E402
from governance.reports.pdf import sign_pdf, write_pdfa  # noqa: E402
from governance.reports.render import render_document, render_html  # noqa: E402
from governance.reports.signing_cert import generate_demo_certificate  # noqa: E402

ACTIONS = ["model.updated", "model_version.transition", "signoff.approve", "deployment.promoted", "finding.raised"]


def _hex(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()


def synthetic_data(events: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    depth = max(1, math.ceil(math.log2(events + 1)))
    start = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    rows, proofs = [], []
    for seq in range(1, events + 1):
        changes = []
        for n in range(rng.randint(1, 6)):
            long_value = rng.random() < 0.2
            before = json.dumps("x" * rng.randint(200, 600) if long_value else f"value {rng.randint(0, 999)}")
            changes.append({"field": f"field_{n}", "before": before, "after": json.dumps(f"value {seq}")})
        leaf = _hex(rng)
        rows.append(
            {
                "seq": seq,
                "timestamp": (start + dt.timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "actor": rng.choice(["olivia", "victor", "chloe", "system:reports"]),
                "roles": ["model owner"],
                "action": rng.choice(ACTIONS),
                "object_type": "models_registry.model",
                "object_id": str(rng.randint(1, 50)),
                "object": "eq-direction",
                "kind": "changed",
                "changes": changes,
                "reason": "quarterly review" if seq % 3 == 0 else "",
                "leaf_hash": leaf,
                "entry_hash": _hex(rng),
            }
        )
        proofs.append({"seq": seq, "leaf_hash": leaf, "proof": [_hex(rng) for _ in range(depth)]})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    root = _hex(rng)
    return {
        "format": "model-risk-governance report data",
        "version": 1,
        "report": {
            "id": 1,
            "reference": "RPT-000001",
            "type": "audit-trail",
            "title": "Audit trail extract with integrity attestation",
            "subject": {"kind": "model", "model_id": 1, "model": "eq-direction", "label": "eq-direction"},
            "period": {"from": None, "to": None, "label": "entire record"},
            "requested_by": "chloe",
            "requested_at": "2026-11-23T10:00:00.000000Z",
            "generated_at": "2026-11-23T10:00:01.000000Z",
            "system": "model-risk-governance",
            "system_version": "0.1.0",
            "references": list(registry.get("audit-trail").references),
            "retention_class": "default",
            "retention_period": "7y",
        },
        "log": {
            "checkpoint_id": 1,
            "tree_size": events + 3,
            "root_hash": root,
            "timestamp": "2026-11-23T10:00:01.000000Z",
            "key_id": _hex(rng),
            "signature": "A" * 86 + "==",
            "origin": "model-risk-governance audit log",
            "signed_message": json.dumps({"root_hash": root, "tree_size": events + 3}),
            "signature_algorithm": "Ed25519",
            "public_key_pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"
            + "A" * 43
            + "=\n-----END PUBLIC KEY-----\n",
            "public_key_fingerprint": _hex(rng),
            "retention_class": "default",
            "retention_period": "7y",
        },
        "body": {
            "sections": [
                {"id": "scope", "title": "Scope of the extract"},
                {"id": "attestation", "title": "Integrity attestation"},
                {"id": "events", "title": "Events"},
                {"id": "verify", "title": "How to verify this extract independently"},
                {"id": "annex-proofs", "title": "Annex: inclusion proofs"},
            ],
            "query": {"up_to_seq": events + 3, "model": "eq-direction", "model_id": 1, "scope": "the model"},
            "summary": {
                "event_count": events,
                "first_seq": 1,
                "last_seq": events,
                "first_at": rows[0]["timestamp"],
                "last_at": rows[-1]["timestamp"],
                "actor_count": 4,
                "by_action": [{"action": a, "count": n} for a, n in sorted(counts.items())],
            },
            "events": rows,
            "completeness": {
                "passed": True,
                "span": {"from_seq": 1, "to_seq": events, "events": events},
                "checks": [{"name": "every sequence number in the span is present", "passed": True, "detail": "all"}],
                "proofs": proofs,
            },
            "bundle": None,
            "verification": {
                "data_attachment": "report-data.json",
                "bundle_attachment": None,
                "commands": [],
                "script": "",
            },
        },
    }


def _timed(fn: Any, runs: int) -> tuple[Any, dict[str, float]]:
    result = fn()  # warm-up (fonts, templates, imports)
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    wall.sort()
    cpu.sort()
    summary = {
        "wall_ms_best": round(wall[0] * 1000, 1),
        "wall_ms_median": round(wall[len(wall) // 2] * 1000, 1),
        "cpu_ms_median": round(cpu[len(cpu) // 2] * 1000, 1),
    }
    return result, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary here.")
    args = parser.parse_args()

    print("machine:", json.dumps(machine()))
    report_type = registry.get("audit-trail")
    data = synthetic_data(args.events)
    generated = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)

    html, t_html = _timed(lambda: render_html(report_type, data), args.runs)
    document, t_layout = _timed(lambda: render_document(html), args.runs)
    pdf, t_pdfa = _timed(lambda: write_pdfa(document, data=data, attachments=[], generated_at=generated), args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = generate_demo_certificate(Path(tmp))
        with override_settings(GOVERNANCE_REPORT_SIGNING_KEY=str(key), GOVERNANCE_REPORT_SIGNING_CERT=str(cert)):
            signed, t_sign = _timed(lambda: sign_pdf(pdf, reason="benchmark").pdf, args.runs)

    def defaults() -> tuple[int, bytes]:
        plain = HTML(string=html).render()
        return len(plain.pages), plain.write_pdf()

    (default_pages, default_pdf), t_defaults = _timed(defaults, args.runs)
    summary = {
        "benchmark": "report_render",
        "events": args.events,
        "runs": args.runs,
        "pages": len(document.pages),
        "pdf_bytes": len(pdf),
        "signed_bytes": len(signed),
        "stages": {"html": t_html, "layout": t_layout, "pdfa": t_pdfa, "sign": t_sign},
        "total_median_ms": round(sum(t["wall_ms_median"] for t in (t_html, t_layout, t_pdfa, t_sign)), 1),
        "weasyprint_defaults": {"pages": default_pages, "pdf_bytes": len(default_pdf), **t_defaults},
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
