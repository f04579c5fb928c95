"""Rendering cost of a model validation report with charts (issue 9: a ~20-page report in <= 3 s),
stage by stage, against the same content laid out with WeasyPrint's defaults.

    .venv/bin/python manage.py report validation VERSION_ID --user NAME --out /tmp/validation.pdf
    .venv/bin/python benchmarks/report_validation.py --pdf /tmp/validation.pdf [--runs 3] [--json FILE]

No database: the data is the ``report-data.json`` embedded in an issued validation report (the
demo's nvda-direction-logistic 1.0.0 gives 21 pages with four charts: ROC, equity curve,
drawdown, permutation importance). Stages, each timed as in ``benchmarks/report_render.py``
(best and median wall-clock and process CPU of ``--runs`` runs after one warm-up):

* ``charts``: the four matplotlib SVG charts alone (part of ``html``);
* ``html``: charts and the Django template;
* ``layout``: WeasyPrint's layout with the project stylesheet (``report.css``);
* ``pdfa``: writing PDF/A-3b with the data attached (font subsetting by fontTools);
* ``defaults``: the same HTML laid out and written with WeasyPrint's defaults only (no project
  stylesheet, plain PDF).

Prints the machine and load, then a JSON summary (pages, bytes, ms per stage, and whether the
3 s target is met in wall-clock and CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

import pypdf  # noqa: E402
from weasyprint import HTML  # noqa: E402

from benchmarks.checks_common import machine  # noqa: E402
from benchmarks.report_render import _timed  # noqa: E402
from governance.reports import registry  # noqa: E402
from governance.reports.builders.validation import chart_svgs  # noqa: E402
from governance.reports.pdf import write_pdfa  # noqa: E402
from governance.reports.render import render_document, render_html  # noqa: E402

TARGET_MS = 3000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, required=True, help="An issued validation report (its data is reused).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary here.")
    args = parser.parse_args()

    data = json.loads(pypdf.PdfReader(args.pdf).attachments["report-data.json"][0])
    if data["report"]["type"] != "validation":
        parser.error(f"--pdf: {args.pdf} is a {data['report']['type']} report, not a validation report")
    print("machine:", json.dumps(machine()))
    print("load average before:", [round(v, 2) for v in os.getloadavg()])
    report_type = registry.get("validation")
    generated = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)

    charts, t_charts = _timed(lambda: chart_svgs(data["body"]), args.runs)
    html, t_html = _timed(lambda: render_html(report_type, data), args.runs)
    document, t_layout = _timed(lambda: render_document(html), args.runs)
    pdf, t_pdfa = _timed(lambda: write_pdfa(document, data=data, attachments=[], generated_at=generated), args.runs)

    def defaults() -> tuple[int, bytes]:
        plain = HTML(string=html).render()
        return len(plain.pages), plain.write_pdf()

    (default_pages, default_pdf), t_defaults = _timed(defaults, args.runs)
    stages = (t_html, t_layout, t_pdfa)
    wall = round(sum(t["wall_ms_median"] for t in stages), 1)
    cpu = round(sum(t["cpu_ms_median"] for t in stages), 1)
    summary = {
        "benchmark": "report_validation",
        "subject": data["report"]["subject"]["label"],
        "runs": args.runs,
        "pages": len(document.pages),
        "charts": sorted(charts),
        "pdf_bytes": len(pdf),
        "stages": {"charts": t_charts, "html": t_html, "layout": t_layout, "pdfa": t_pdfa},
        "total_wall_ms_median": wall,
        "total_cpu_ms_median": cpu,
        "target_ms": TARGET_MS,
        "target_met": {"wall": wall <= TARGET_MS, "cpu": cpu <= TARGET_MS},
        "weasyprint_defaults": {"pages": default_pages, "pdf_bytes": len(default_pdf), **t_defaults},
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
