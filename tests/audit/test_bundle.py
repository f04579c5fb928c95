"""audit_export bundles and audit_verify --bundle: round trip, tampering found at its seq, partial
ranges, malformed bundles, and no database access while verifying."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from audit import bundle, canonical, hashing, merkle, signing
from audit.models import Event
from audit.services import SystemActor, checkpoint_create
from audit.verify import verify_log
from tests.audit.test_log import _events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key():
    signing.generate_key_file()
    return signing.load_private_key()


@pytest.fixture
def log(key):
    """A log with two checkpoints and events after the last: sizes are returned."""
    _events(5)
    first = checkpoint_create(actor=SystemActor("test")).tree_size
    _events(5)
    second = checkpoint_create(actor=SystemActor("test")).tree_size
    _events(3)
    return {"first": first, "second": second, "size": verify_log().size}


def _export(path: Path, *args: str) -> Path:
    call_command("audit_export", "--out", str(path), *args, stdout=io.StringIO())
    return path


def _verify(path: Path, django_db_blocker) -> tuple[int, str]:
    """Run audit_verify --bundle with every database access refused; (exit code, output)."""
    out = io.StringIO()
    with django_db_blocker.block():
        try:
            call_command("audit_verify", "--bundle", str(path), stdout=out)
        except SystemExit as exc:
            return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / bundle.EVENTS).read_text().splitlines()]


def _write_lines(path: Path, lines: list[dict]) -> None:
    (path / bundle.EVENTS).write_text("".join(json.dumps(line) + "\n" for line in lines))


def _manifest(path: Path) -> dict:
    return json.loads((path / bundle.MANIFEST).read_text())


def test_round_trip_verifies_without_the_database(log, tmp_path, django_db_blocker):
    expected = verify_log()
    path = _export(tmp_path / "bundle")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [bundle.MANIFEST, bundle.EVENTS, bundle.CHECKPOINTS, bundle.PUBLIC_KEY]
    )
    lines = _lines(path)
    assert [line["seq"] for line in lines] == list(range(1, log["size"] + 1))
    assert all(line["canonical"].encode() == canonical.dumps(line["event"]) for line in lines)
    code, out = _verify(path, django_db_blocker)
    assert (code, out.strip()) == (0, f"OK: {log['size']} events, root {expected.root}")
    manifest = _manifest(path)
    assert manifest["root_hash"] == expected.root
    assert manifest["tree_size"] == log["size"]

    out = io.StringIO()
    with django_db_blocker.block():
        call_command("audit_verify", "--bundle", str(path), "--json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["ok"] is True
    # Two checkpoints, each in the database and the file, and the export's signed tree head.
    assert payload["checkpoints_checked"] == 5
    assert payload["key_id"] == signing.key_id(signing.load_private_key().public_key())


def test_an_altered_field_is_found_at_its_seq(log, tmp_path, django_db_blocker):
    path = _export(tmp_path / "bundle")
    lines = _lines(path)
    lines[6]["event"]["reason"] = "nothing to see here"
    _write_lines(path, lines)
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "first bad seq: 7" in out
    assert "fields do not match its canonical bytes" in out


def test_an_altered_field_with_its_canonical_bytes_is_found_by_the_leaf_hash(log, tmp_path, django_db_blocker):
    path = _export(tmp_path / "bundle")
    lines = _lines(path)
    lines[3]["event"]["after"] = {"i": 999}
    lines[3]["canonical"] = canonical.dumps(lines[3]["event"]).decode()
    _write_lines(path, lines)
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "first bad seq: 4" in out


def test_a_deleted_line_is_found_at_its_seq(log, tmp_path, django_db_blocker):
    path = _export(tmp_path / "bundle")
    lines = _lines(path)
    del lines[4]
    _write_lines(path, lines)
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "first bad seq: 5" in out


@pytest.mark.parametrize("forged", [False, True])
def test_an_inserted_line_is_found_at_its_seq(log, tmp_path, django_db_blocker, forged):
    path = _export(tmp_path / "bundle")
    lines = _lines(path)
    extra = json.loads(json.dumps(lines[5]))  # seq 6
    if forged:
        # A made-up event claiming seq 6, placed before the real one.
        extra["event"]["reason"] = "forged"
        extra["canonical"] = canonical.dumps(extra["event"]).decode()
        lines.insert(5, extra)
    else:
        lines.insert(6, extra)  # seq 6 twice
    _write_lines(path, lines)
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "first bad seq: 6" in out


@pytest.mark.parametrize("rewrite_manifest", [False, True])
def test_cutting_the_tail_after_a_checkpoint_is_found(log, tmp_path, django_db_blocker, rewrite_manifest):
    path = _export(tmp_path / "bundle")
    keep = log["first"]
    lines = _lines(path)[:keep]
    _write_lines(path, lines)
    if rewrite_manifest:
        # Make the manifest agree with the cut: only the signatures can tell now.
        manifest = _manifest(path)
        leaves = [bytes.fromhex(line["leaf_hash"]) for line in lines]
        manifest.update(to_seq=keep, tree_size=keep, event_count=keep, root_hash=merkle.MemoryTree(leaves).root().hex())
        (path / bundle.MANIFEST).write_text(json.dumps(manifest))
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert f"first bad seq: {keep + 1}" in out
    if rewrite_manifest:
        assert "the log was cut" in out


def test_a_forged_checkpoint_signature_is_found(log, tmp_path, django_db_blocker):
    path = _export(tmp_path / "bundle")
    checkpoints = [json.loads(line) for line in (path / bundle.CHECKPOINTS).read_text().splitlines()]
    target = next(c for c in checkpoints if c["tree_size"] == log["second"])
    target["root_hash"] = "00" * 32  # the signature no longer covers what the line says
    (path / bundle.CHECKPOINTS).write_text("".join(json.dumps(c) + "\n" for c in checkpoints))
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert f"first bad seq: {log['second']}" in out
    assert "invalid signature" in out


def test_a_swapped_public_key_fails_every_signature(log, tmp_path, django_db_blocker):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = _export(tmp_path / "bundle")
    (path / bundle.PUBLIC_KEY).write_text(signing.public_key_pem(Ed25519PrivateKey.generate().public_key()))
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "invalid signature" in out


def test_a_partial_range_verifies_against_the_signed_roots(log, tmp_path, django_db_blocker):
    first, last = 3, log["second"] + 1  # across both checkpoints, not up to the end
    path = _export(tmp_path / "bundle", "--from-seq", str(first), "--to-seq", str(last))
    manifest = _manifest(path)
    lines = _lines(path)
    assert [line["seq"] for line in lines] == list(range(first, last + 1))
    assert manifest["prev_hash"] == lines[0]["prev_hash"] == Event.objects.get(seq=first - 1).entry_hash
    assert manifest["proof_nodes"]
    code, out = _verify(path, django_db_blocker)
    assert (code, out.strip()) == (0, f"OK: {last - first + 1} events, root {verify_log().root}")


def test_a_consistently_rewritten_partial_range_is_caught_by_the_signed_roots(log, tmp_path, django_db_blocker):
    """Rewrite event 4 and re-chain everything after it: only the Merkle roots can tell."""
    path = _export(tmp_path / "bundle", "--from-seq", "2", "--to-seq", str(log["size"] - 1))
    lines = _lines(path)
    lines[2]["event"]["reason"] = "rewritten"  # seq 4
    prev = bytes.fromhex(lines[0]["prev_hash"])
    for line in lines:
        data = canonical.dumps(line["event"])
        leaf = merkle.leaf_hash(data)
        entry = hashing.chain_hash(prev, leaf)
        line.update(canonical=data.decode(), leaf_hash=leaf.hex(), prev_hash=prev.hex(), entry_hash=entry.hex())
        prev = entry
    _write_lines(path, lines)
    code, out = _verify(path, django_db_blocker)
    assert code == 1
    assert "different root" in out
    # Localised to after the last checkpoint that still matches (none before seq 4 here).
    assert "first bad seq: 2" in out


def test_export_needs_the_signing_key(tmp_path):
    _events(2)
    with pytest.raises(CommandError, match="no audit signing key"):
        _export(tmp_path / "bundle")


def test_export_refuses_a_range_outside_the_log(log, tmp_path):
    with pytest.raises(CommandError, match="not within the log"):
        _export(tmp_path / "bundle", "--from-seq", "5", "--to-seq", str(log["size"] + 1))
    with pytest.raises(CommandError, match="not an empty directory"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        _export(tmp_path / "full")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / bundle.MANIFEST).unlink(), "manifest.json: missing from the bundle"),
        (lambda p: (p / bundle.EVENTS).unlink(), "events.jsonl: missing from the bundle"),
        (lambda p: (p / bundle.PUBLIC_KEY).write_text("not a key"), "public-key.pem: not an Ed25519 public key"),
        (
            lambda p: (p / bundle.EVENTS).write_text(
                "\n".join([*(p / bundle.EVENTS).read_text().splitlines()[:2], '{"seq": 3, "event": '])
            ),
            "events.jsonl:3: not JSON",
        ),
        (
            lambda p: (p / bundle.MANIFEST).write_text(json.dumps({**_manifest(p), "version": 2})),
            "manifest.json: bundle format version 2 is not supported",
        ),
        (lambda p: (p / bundle.MANIFEST).write_text("{"), "manifest.json: not JSON"),
        (
            lambda p: (p / bundle.CHECKPOINTS).write_text('{"tree_size": "x"}\n'),
            "checkpoints.jsonl:1: not a checkpoint",
        ),
        (
            lambda p: _write_lines(p, [{k: v for k, v in line.items() if k != "leaf_hash"} for line in _lines(p)]),
            "events.jsonl:1: leaf_hash is missing",
        ),
    ],
)
def test_a_malformed_bundle_is_a_clear_error(log, tmp_path, django_db_blocker, damage, message):
    path = _export(tmp_path / "bundle")
    damage(path)
    with django_db_blocker.block(), pytest.raises(CommandError, match=message) as error:
        call_command("audit_verify", "--bundle", str(path))
    assert error.value.returncode == 2


def test_a_malformed_bundle_prints_no_traceback(log, tmp_path, capsys):
    path = _export(tmp_path / "bundle")
    (path / bundle.EVENTS).write_text("{oops\n")
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "audit_verify", "--bundle", str(path)]).execute()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "events.jsonl:1: not JSON" in err
    assert "Traceback" not in err
