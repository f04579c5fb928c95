"""Report data -> HTML (Django template) -> laid-out pages (WeasyPrint).

The template receives the data dict (``data``), the charts drawn from it (``charts``: SVG
images as ``data:`` URLs) and the stylesheet; it lays them out and computes nothing. Fonts are DejaVu through
fontconfig; WeasyPrint embeds the subsets it uses, which PDF/A requires.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string
from weasyprint import CSS, HTML
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration

from governance.reports import charts
from governance.reports.gcpause import cyclic_gc_paused
from governance.reports.registry import ReportType

STYLESHEET = Path(__file__).with_name("report.css")


def chart_svgs(report_type: ReportType, data: dict[str, Any]) -> dict[str, str]:
    """Charts of a report, drawn from its data (never from anything the data does not hold)."""
    if report_type.key == "audit-trail":
        by_action = data["body"]["summary"]["by_action"]
        if not by_action:
            return {}
        return {
            "by_action": charts.horizontal_bars(
                [row["action"] for row in by_action], [row["count"] for row in by_action], xlabel="events"
            )
        }
    if report_type.key == "inventory":
        tiers = data["body"]["tiers"]
        if not data["body"]["summary"]["model_count"]:
            return {}
        return {
            "tiers": charts.horizontal_bars([t["label"] for t in tiers], [t["models"] for t in tiers], xlabel="models")
        }
    if report_type.key == "deployment-record":
        days = data["body"]["monitoring"]["days"]
        if not days:
            return {}
        return {
            "daily_pnl": charts.daily_pnl(
                [day["date"] for day in days],
                [float(day["pnl"]) for day in days],
                [float(day["cumulative_pnl"]) for day in days],
                currency=data["body"]["monitoring"]["currency"],
            )
        }
    if report_type.key == "validation":
        from governance.reports.builders.validation import chart_svgs as validation_charts

        return validation_charts(data["body"])
    return {}


def render_html(report_type: ReportType, data: dict[str, Any]) -> str:
    # As images (data: URLs), drawn by WeasyPrint's SVG renderer; inline SVG markup would be
    # styled by the HTML stylesheet instead (and warned about property by property).
    images = {
        name: "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
        for name, svg in chart_svgs(report_type, data).items()
    }
    return render_to_string(report_type.template, {"data": data, "charts": images})


def render_document(html: str, *, stylesheet: Path = STYLESHEET) -> Document:
    fonts = FontConfiguration()
    css = CSS(filename=str(stylesheet), font_config=fonts)
    with cyclic_gc_paused():
        return HTML(string=html, base_url=str(Path(__file__).parent)).render(stylesheets=[css], font_config=fonts)
