"""What a reader sees on the pages (issue 9's quality bar), checked from the PDF itself: nothing
printed beyond the page's margin, no number with absurd precision, no JSON or Python repr shown
as a value, times to the second, tables kept with their rows; and the display filters
(governance/templatetags/report_format.py) that do the formatting, with the data left exact."""

from __future__ import annotations

import io
import re

import pypdf
import pypdfium2

from governance import report_services
from governance.models import Report
from governance.templatetags import report_format
from tests.assessments.conftest import assessable, nvda_datasets, run_now, validator_on  # noqa: F401
from tests.reports.conftest import embedded_data, read_pdf
from tests.reports.test_deployment_record import newer, record, rolled_back  # noqa: F401
from tests.reports.test_validation_report import assessed, issued  # noqa: F401

# A4 with the stylesheet's 16 mm side margins (report.css @page), in PDF points.
MARGIN_PT = 16 / 25.4 * 72
# Seven significant digits or more after the point (0.0002559, four, is fine).
LONG_DECIMAL = re.compile(r"(?<![\w:.])-?\d+\.0*[1-9]\d{6,}(?!\w)")


def _pages(report: Report) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(report_services.report_file(report=report)))
    return [page.extract_text() or "" for page in reader.pages]


def _body(report: Report) -> str:
    """The text between the table of contents and the binding page (which shows the signed
    message as the JSON it is, on purpose)."""
    return "\n".join(_pages(report)[2:-1])


def _beyond_margins(report: Report) -> list[tuple[int, str, float]]:
    """Characters printed outside the page's left or right margin (tolerance 1 pt)."""
    document = pypdfium2.PdfDocument(report_services.report_file(report=report))
    outside = []
    for number in range(len(document)):
        page = document[number]
        width, _ = page.get_size()
        text = page.get_textpage()
        for index in range(text.count_chars()):
            left, _, right, _ = text.get_charbox(index)
            char = text.get_text_range(index, 1)
            if char.strip() and (left < MARGIN_PT - 1 or right > width - MARGIN_PT + 1):
                outside.append((number + 1, char, round(right, 1)))
    return outside


# The filters.


def test_times_are_printed_to_the_second_and_midnight_as_a_date():
    assert report_format.utc("2026-12-04T21:09:21.427871Z") == "2026-12-04 21:09:21"
    assert report_format.utc("2026-12-04T21:09:21.427871+00:00") == "2026-12-04 21:09:21"
    assert report_format.utc_day("1999-01-22T00:00:00.000000Z") == "1999-01-22"
    assert report_format.utc_day("2026-10-26T14:31:57.000000Z") == "2026-10-26 14:31:57"
    # Anything else is left as it is.
    assert report_format.utc("2026-12-04") == "2026-12-04" and report_format.utc(None) is None


def test_numbers_with_absurd_precision_are_shortened_and_nothing_else():
    message = (
        "precision 0.49337748344370863 (minimum 0.5), max_drawdown 0.4044483304907833. "
        "edges 0.013844763431194972; at 2026-11-17T17:23:33.000000Z; accuracy 0.417191; version 1.0.0"
    )
    assert report_format.figures(message) == (
        "precision 0.4934 (minimum 0.5), max_drawdown 0.4044. "
        "edges 0.01384; at 2026-11-17T17:23:33.000000Z; accuracy 0.417191; version 1.0.0"
    )
    assert report_format.figures(12.345678912) == "12.3457"
    # Float noise in the alternatives a PBO test refit.
    assert report_format.figures("alpha=1.0000000000000002e-06, alpha=0.00030000000000000003") == (
        "alpha=1e-06, alpha=0.0003"
    )


def test_amounts_have_thousands_separators():
    assert report_format.amount("20000000.00") == "20,000,000.00"
    assert report_format.amount("-13658.29") == "-13,658.29"
    assert report_format.amount(None) is None and report_format.amount("n/a") == "n/a"


def test_parameters_stored_as_json_text_are_printed_in_words():
    assert report_format.parameter("null") == "not set"
    assert report_format.parameter('"cusum"') == "cusum"
    assert report_format.parameter('{"pilot": 0.05, "shadow": 0.1}') == "pilot 0.05; shadow 0.1"
    assert report_format.parameter('{"baseline": 0.5093}') == "baseline 0.5093"
    assert report_format.parameter("8.0") == "8.0" and report_format.parameter("[1, 2]") == "1, 2"
    assert report_format.words("rolled_back") == "rolled back"


# The pages.


def test_validation_report_pages_as_a_reader_sees_them(issued):  # noqa: F811
    data = embedded_data(read_pdf(issued))
    body = _body(issued)
    assert _beyond_margins(issued) == []
    # Rule messages quote stored figures like 0.49337748344370863: printed to 4 digits.
    assert any(LONG_DECIMAL.search(r["message"]) for r in data["body"]["rating"]["rules"]), "fixture changed"
    assert LONG_DECIMAL.findall(body) == []
    # Monitoring parameters in words, not JSON text (the data keeps the JSON text).
    assert '{"' not in body and "= null" not in body
    # Lifecycle times to the second; the data keeps the microseconds.
    squeezed = re.sub(r"\s+", "", body)
    for event in data["body"]["scope"]["lifecycle"]:
        assert event["at"].endswith("Z") and len(event["at"]) == 27
        assert report_format.utc(event["at"]).replace(" ", "") in squeezed
    # The backtest table is kept whole, with its heading.
    (page,) = [re.sub(r"\s+", "", p) for p in _pages(issued) if "Backtest on the test period" in p]
    assert "Strategy" in page and "Buyandhold" in page, page


def test_deployment_record_pages_as_a_reader_sees_them(record):  # noqa: F811
    data = embedded_data(read_pdf(record))
    body = _body(record)
    assert _beyond_margins(record) == []
    (plan,) = data["body"]["phase_plan"]
    assert any(row["value"].startswith("{") for row in plan["monitoring_rows"]), "fixture changed"
    assert '{"' not in body
    assert "rolled_back" not in body.replace("deployment.rolled_back", "")
    assert LONG_DECIMAL.findall(body) == []
