"""WeasyPrint's layout and PDF writing run with the cyclic garbage collector paused (its full
passes over a large document's boxes cost a quarter of the layout and half of the PDF/A
writing: docs/benchmarks.md), and the collector is back as it was afterwards, error or not."""

from __future__ import annotations

import datetime as dt
import gc

import pytest

from governance.reports import pdf, render
from governance.reports.gcpause import cyclic_gc_paused

HTML = "<html><head><title>t</title></head><body><p>One page.</p></body></html>"


def test_layout_and_pdf_writing_run_with_the_collector_paused(monkeypatch):
    seen: list[tuple[str, bool]] = []
    document = render.render_document(HTML)
    original_write = type(document).write_pdf

    def write_pdf(self, *args, **kwargs):
        seen.append(("write", gc.isenabled()))
        return original_write(self, *args, **kwargs)

    monkeypatch.setattr(type(document), "write_pdf", write_pdf)
    data = pdf.write_pdfa(document, data={"a": 1}, attachments=[], generated_at=dt.datetime.now(dt.UTC))
    assert data.startswith(b"%PDF-")
    assert seen == [("write", False)]
    assert gc.isenabled()


def test_the_collector_comes_back_after_an_error_and_stays_off_if_it_was_off():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("layout failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
