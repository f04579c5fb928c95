"""The framework's promises to every report type: registered types are complete, charts are
deterministic, the embedded JSON reads back as the dict that was rendered."""

from __future__ import annotations

import datetime as dt
import io
import json

import pypdf
import pytest
from django.template.loader import get_template

from governance.reports import charts, registry
from governance.reports.pdf import DATA_ATTACHMENT, write_pdfa
from governance.reports.render import render_document


@pytest.mark.parametrize("key", sorted(registry.report_types()))
def test_every_registered_type_has_its_template_references_and_subject_kind(key):
    report_type = registry.get(key)
    assert get_template(report_type.template)
    assert report_type.references and report_type.subject in registry.SUBJECT_KINDS


def test_charts_are_the_same_bytes_for_the_same_data_and_carry_no_date():
    first = charts.horizontal_bars(["a.created", "b.updated"], [3, 1], xlabel="events")
    second = charts.horizontal_bars(["a.created", "b.updated"], [3, 1], xlabel="events")
    assert first == second
    assert first.lstrip().startswith("<?xml") and "<svg" in first
    assert "<dc:date>" not in first
    assert charts.horizontal_bars(["a.created"], [2], xlabel="events") != first


def test_the_attachment_is_the_dict_that_was_given():
    data = {"body": {"figure": "0.1234", "nested": [1, {"é": None}]}, "report": {"id": 7}}
    html = "<html><body><h1>t</h1><p>x</p></body></html>"
    pdf = write_pdfa(
        render_document(html), data=data, attachments=[], generated_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    )
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert json.loads(reader.attachments[DATA_ATTACHMENT][0]) == data
