"""manage.py assess: exit 0 succeeded, 1 failed or cancelled, 2 bad input."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_registry.models import RiskAssessment
from tests.assessments.conftest import RULES, slice_prices, to_csv

FAST_PARAMS = ["--param", "pbo_partitions=8", "--param", "pbo_configurations=4", "--param", "cv_splits=3"]


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("assess", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_assess_waits_and_reports_then_reuses(assessable):
    version = assessable()
    code, out = run(f"{version.model.name}:{version.version}", "--kind", "performance", "--wait", *FAST_PARAMS)
    assert code == 0, out
    assert "created" in out and "status: succeeded" in out and "accuracy:" in out
    code, out = run(str(version.pk), "--kind", "performance", *FAST_PARAMS)
    assert code == 0 and "reused (same inputs)" in out
    assert RiskAssessment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_assess_exits_1_when_the_assessment_fails(assessable, make_dataset):
    tiny = make_dataset(name="nvda-tiny", content=to_csv(slice_prices("test").iloc[:75]), rules=RULES)
    code, out = run(str(assessable(test_dataset=tiny).pk), "--kind", "performance", "--wait")
    assert code == 1 and "test_set_too_small" in out


@pytest.mark.django_db
def test_assess_exits_2_on_bad_input(assessable, outsider):
    version = assessable()
    assert run("no-such-model:1.0")[0] == 2
    assert run("999999")[0] == 2
    code, out = run(str(version.pk), "--param", "cost_bps=-3")
    assert code == 2 and "cost_bps" in out
    assert run(str(version.pk), "--param", "nonsense")[0] == 2
    code, out = run(str(version.pk), "--user", outsider.username)
    assert code == 2 and "may not" in out
    assert not RiskAssessment.objects.exists()
