"""PostgreSQL: eight processes writing the audit log at once leave dense seqs and a log that verifies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit.models import Event, Head
from audit.verify import verify_log

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITER = """
import django, sys
django.setup()
from django.db import transaction
from audit.services import SystemActor, record_event
worker = sys.argv[1]
for i in range(int(sys.argv[2])):
    with transaction.atomic():
        record_event(actor=SystemActor(f"writer-{worker}"), action="test.concurrent", object_type="x",
                     object_id=f"{worker}-{i}", after={"i": i})
"""


def test_eight_concurrent_writer_processes_keep_the_log_dense_and_valid():
    processes, per_process = 8, 40
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "governance.test_settings",
        "DATABASE_URL": f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "GOVERNANCE_VAR_DIR": str(settings.VAR_DIR),
    }
    start = Head.objects.get().size
    root = Path(__file__).resolve().parents[2]
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(per_process)], cwd=root, env=env)
        for n in range(processes)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * processes

    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, start + processes * per_process + 1))
    assert Event.objects.filter(action="test.concurrent").count() == processes * per_process
    result = verify_log()
    assert result.ok, result.problems
    assert result.size == Head.objects.get().size
