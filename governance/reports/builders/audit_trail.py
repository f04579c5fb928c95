"""Audit trail extract with integrity attestation (report type ``audit-trail``).

The extract lists the events of a model (the model, its versions and every governed record
that names it) and/or of a period, up to the checkpoint the report is bound to; checks the
log over the extract's span (every seq present, leaves and chain recomputed); proves every
listed event into the checkpoint's signed root; and attaches the export bundle of the span
so that a recipient can check it all again without our database (``audit.bundle``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from audit import merkle, signing
from audit.bundle import export_bundle
from audit.governed import governed_models
from audit.models import Event
from audit.selectors import inclusion_proof
from audit.snapshot import diff
from audit.verify import event_rows, naive_timestamps_are_utc, row_canonical_bytes
from governance.reports.context import BuildContext, FileAttachment
from governance.reports.envelope import iso

BUNDLE_NAME = "audit-bundle.zip"
# An extract is read by people: past this many events the period must be narrowed (the full
# log is what audit_export is for). About 2.5 events a page; WeasyPrint lays out a page of these
# tables in roughly 60-80 ms of CPU here (benchmarks/report_render.py), so 2,000 events stay
# well inside the job's soft time limit.
MAX_EVENTS = 2_000
# A fixed time for the zip entries, so the same bundle gives the same zip bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# A recipient's own check of report-data.json: the checkpoint's signature and every listed
# event's inclusion proof, with Python and the cryptography package only.
VERIFY_SCRIPT = """\
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key

d = json.load(open(sys.argv[1]))
log = d["log"]
key = load_pem_public_key(log["public_key_pem"].encode())
key.verify(base64.b64decode(log["signature"]), log["signed_message"].encode())
h = lambda b: hashlib.sha256(b).digest()

def root(index, size, node, path):  # RFC 9162 section 2.1.3.2
    fn, sn = index, size - 1
    for p in path:
        if fn & 1 or fn == sn:
            node = h(b"\\x01" + p + node)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = h(b"\\x01" + node + p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0, "the proof is shorter than the tree needs"
    return node.hex()

for p in d["body"]["completeness"]["proofs"]:
    path = [bytes.fromhex(x) for x in p["proof"]]
    leaf = bytes.fromhex(p["leaf_hash"])
    assert root(p["seq"] - 1, log["tree_size"], leaf, path) == log["root_hash"], p["seq"]
print("signature and", len(d["body"]["completeness"]["proofs"]), "proofs verify")"""


class ExtractTooLarge(ValueError):
    pass


def _model_condition(model_id: int) -> Q:
    """Events about the model, its versions and every governed record with a ``model`` or
    ``version`` foreign key to them (deployments, sign-offs, findings, alerts, reports...)."""
    from models_registry.models import Model, ModelVersion

    version_ids = list(ModelVersion.objects.filter(model_id=model_id).values_list("pk", flat=True))
    condition = Q(object_type=Model._meta.label_lower, object_id=str(model_id))
    condition |= Q(object_type=ModelVersion._meta.label_lower, object_id__in=[str(pk) for pk in version_ids])
    for governed in governed_models():
        if governed in (Model, ModelVersion):
            continue
        names = {f.name: f for f in governed._meta.concrete_fields if f.is_relation}
        if "model" in names and names["model"].related_model is Model:
            rows = governed._base_manager.filter(model_id=model_id)
        elif "version" in names and names["version"].related_model is ModelVersion:
            rows = governed._base_manager.filter(version_id__in=version_ids)
        else:
            continue
        ids = [str(pk) for pk in rows.values_list("pk", flat=True)]
        if ids:
            condition |= Q(object_type=governed._meta.label_lower, object_id__in=ids)
    return condition


def _query(ctx: BuildContext) -> tuple[Q, dict[str, Any]]:
    report = ctx.report
    condition = Q(seq__lte=ctx.checkpoint.tree_size)
    described: dict[str, Any] = {"up_to_seq": ctx.checkpoint.tree_size}
    if report.model_id is not None:
        condition &= _model_condition(report.model_id)
        described["model"] = report.model.name
        described["model_id"] = report.model_id
        described["scope"] = (
            "events about the model, its versions and every governed record that names them "
            "(deployments, sign-offs, findings, assessments, alerts, reports)"
        )
    if report.period_from is not None:
        start = dt.datetime.combine(report.period_from, dt.time.min, tzinfo=dt.UTC)
        end = dt.datetime.combine(report.period_to, dt.time.min, tzinfo=dt.UTC) + dt.timedelta(days=1)
        condition &= Q(timestamp__gte=start, timestamp__lt=end)
        described["from"] = iso(start)
        described["to_exclusive"] = iso(end)
    return condition, described


def _roles(user_ids: set[int]) -> dict[int, list[str]]:
    users = get_user_model().objects.filter(pk__in=user_ids).prefetch_related("groups")
    return {user.pk: sorted(group.name for group in user.groups.all()) for user in users}


def _event_row(event: Event, roles: dict[int, list[str]]) -> dict[str, Any]:
    changes = [
        {"field": field, "before": json.dumps(old, sort_keys=True), "after": json.dumps(new, sort_keys=True)}
        for field, (old, new) in diff(event.before, event.after).items()
    ]
    return {
        "seq": event.seq,
        "timestamp": iso(event.timestamp),
        "actor": event.actor_label,
        "roles": roles.get(event.actor_id, []) if event.actor_id else [],
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object": event.object_repr,
        "kind": "created" if event.before is None and event.after is not None else "changed" if changes else "",
        "changes": changes,
        "reason": event.reason,
        "leaf_hash": event.leaf_hash,
        "entry_hash": event.entry_hash,
    }


def _completeness(first: int, last: int, tree_size: int, listed: list[dict[str, Any]], root: str) -> dict[str, Any]:
    """Every seq of the span present, each leaf recomputed from its row, the chain linked,
    and every listed event proved into the checkpoint's root."""
    checks: list[dict[str, Any]] = []
    if not listed:
        return {"passed": True, "span": None, "checks": [], "proofs": []}
    naive_is_utc = naive_timestamps_are_utc()
    prev = Event.objects.filter(seq=first - 1).values_list("entry_hash", flat=True).first() if first > 1 else None
    prev_hex = prev or "0" * 64
    expected, missing, bad_leaf, bad_link = first, [], [], []
    for row in event_rows(from_seq=first, to_seq=last):
        seq = row[0]
        if seq != expected:
            missing.extend(range(expected, seq))
        expected = seq + 1
        leaf = hashlib.sha256(b"\x00" + row_canonical_bytes(row, naive_is_utc)).hexdigest()
        if leaf != row[14]:
            bad_leaf.append(seq)
        if row[15] != prev_hex or hashlib.sha256(bytes.fromhex(row[15]) + bytes.fromhex(leaf)).hexdigest() != row[16]:
            bad_link.append(seq)
        prev_hex = row[16]
    missing.extend(range(expected, last + 1))
    span = last - first + 1
    checks.append(
        {
            "name": "every sequence number in the span is present",
            "passed": not missing,
            "detail": f"{span - len(missing)} of {span} events from seq {first} to {last}"
            + (f"; missing: {', '.join(map(str, missing[:20]))}" if missing else ""),
        }
    )
    checks.append(
        {
            "name": "every leaf hash recomputed from the event's canonical content",
            "passed": not bad_leaf,
            "detail": "all match" if not bad_leaf else f"mismatch at seq {', '.join(map(str, bad_leaf[:20]))}",
        }
    )
    checks.append(
        {
            "name": "the hash chain links each event to the one before",
            "passed": not bad_link,
            "detail": "unbroken" if not bad_link else f"broken at seq {', '.join(map(str, bad_link[:20]))}",
        }
    )
    proofs, bad_proof = [], []
    for item in listed:
        proof = inclusion_proof(seq=item["seq"], tree_size=tree_size)
        try:
            merkle.verify_inclusion(
                item["seq"] - 1,
                tree_size,
                bytes.fromhex(item["leaf_hash"]),
                [bytes.fromhex(h) for h in proof["proof"]],
                bytes.fromhex(root),
            )
        except merkle.ProofError:
            bad_proof.append(item["seq"])
        proofs.append({"seq": item["seq"], "leaf_hash": item["leaf_hash"], "proof": proof["proof"]})
    checks.append(
        {
            "name": "every listed event is included in the checkpoint's signed root (RFC 9162 inclusion proof)",
            "passed": not bad_proof,
            "detail": f"{len(listed) - len(bad_proof)} of {len(listed)} proofs verify against tree size {tree_size}",
        }
    )
    return {
        "passed": all(check["passed"] for check in checks),
        "span": {"from_seq": first, "to_seq": last, "events": span},
        "checks": checks,
        "proofs": proofs,
    }


def _bundle_zip(first: int, last: int) -> tuple[bytes, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="report-bundle-") as tmp:
        out = Path(tmp) / "bundle"
        manifest = export_bundle(out=out, from_seq=first, to_seq=last)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.iterdir()):
                info = zipfile.ZipInfo(f"bundle/{path.name}", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue(), manifest


def build(ctx: BuildContext) -> dict[str, Any]:
    checkpoint = ctx.checkpoint
    condition, query = _query(ctx)
    count = Event.objects.filter(condition).count()
    if count > MAX_EVENTS:
        raise ExtractTooLarge(
            f"the extract has {count} events, more than {MAX_EVENTS}: narrow the period "
            "(or export the log with audit_export for a machine-readable copy)"
        )
    ctx.progress(20, f"listing {count} events")
    events = list(Event.objects.filter(condition).order_by("seq"))
    roles = _roles({event.actor_id for event in events if event.actor_id})
    listed = [_event_row(event, roles) for event in events]

    ctx.progress(40, "checking completeness and proving inclusion")
    first = listed[0]["seq"] if listed else None
    last = listed[-1]["seq"] if listed else None
    completeness = _completeness(first or 0, last or 0, checkpoint.tree_size, listed, checkpoint.root_hash)
    public_key = signing.load_private_key().public_key()
    head = signing.SignedTreeHead(
        checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp, checkpoint.key_id, checkpoint.signature
    )
    signature_ok = signing.key_id(public_key) == checkpoint.key_id and signing.signature_valid(public_key, head)
    completeness["checks"].append(
        {
            "name": "the checkpoint's Ed25519 signature verifies with the log's public key",
            "passed": signature_ok,
            "detail": f"key fingerprint {checkpoint.key_id}",
        }
    )
    completeness["passed"] = completeness["passed"] and signature_ok

    bundle: dict[str, Any] | None = None
    if listed:
        ctx.progress(60, "exporting the verification bundle")
        content, manifest = _bundle_zip(first, last)
        ctx.attach(
            FileAttachment(
                name=BUNDLE_NAME,
                content=content,
                description=f"Audit log export bundle, events {first} to {last} (audit.bundle format)",
            )
        )
        bundle = {
            "name": BUNDLE_NAME,
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "from_seq": manifest["from_seq"],
            "to_seq": manifest["to_seq"],
            "event_count": manifest["event_count"],
            "exported_tree_size": manifest["tree_size"],
            "exported_root_hash": manifest["root_hash"],
        }

    by_action = Counter(item["action"] for item in listed)
    actors = sorted({item["actor"] for item in listed})
    return {
        "sections": [
            {"id": "scope", "title": "Scope of the extract"},
            {"id": "attestation", "title": "Integrity attestation"},
            {"id": "events", "title": "Events"},
            {"id": "verify", "title": "How to verify this extract independently"},
            {"id": "annex-proofs", "title": "Annex: inclusion proofs"},
        ],
        "query": query,
        "summary": {
            "event_count": len(listed),
            "first_seq": first,
            "last_seq": last,
            "first_at": listed[0]["timestamp"] if listed else None,
            "last_at": listed[-1]["timestamp"] if listed else None,
            "actor_count": len(actors),
            "by_action": [{"action": action, "count": n} for action, n in sorted(by_action.items())],
        },
        "events": listed,
        "completeness": completeness,
        "bundle": bundle,
        "verification": {
            "data_attachment": "report-data.json",
            "bundle_attachment": BUNDLE_NAME if bundle else None,
            "commands": [
                "pdfdetach -saveall report.pdf   # poppler-utils (or pypdf: PdfReader(...).attachments)",
                f"unzip {BUNDLE_NAME}",
                "python manage.py audit_verify --bundle bundle --json",
                "python verify_extract.py report-data.json   # the script below: proofs against the checkpoint",
            ],
            "script": VERIFY_SCRIPT,
        },
    }
