"""Charts for reports: matplotlib to an SVG string, the same bytes for the same data.

Agg backend (no display); ``svg.hashsalt`` fixes the ids matplotlib would randomise, and the
metadata carries no date, so a report rebuilt from the same data embeds the same chart.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

_STYLE = {
    "svg.hashsalt": "model-risk-governance",
    "svg.fonttype": "none",  # text stays text: searchable and drawn in the report's font
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_METADATA = {"Date": None, "Creator": None}


def _svg(figure: plt.Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_METADATA, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def horizontal_bars(labels: Sequence[str], values: Sequence[float], *, xlabel: str, width_cm: float = 16) -> str:
    """One bar per label (top to bottom in the given order), its value written at its end."""
    with plt.rc_context(_STYLE):
        height_cm = max(2.5, 0.55 * len(labels) + 1.2)
        figure, axes = plt.subplots(figsize=(width_cm / 2.54, height_cm / 2.54))
        positions = list(range(len(labels)))[::-1]
        axes.barh(positions, values, color="#3b6ea5")
        axes.set_yticks(positions, labels)
        axes.set_xlabel(xlabel)
        for position, value in zip(positions, values, strict=True):
            axes.annotate(f"{value:g}", (value, position), xytext=(3, 0), textcoords="offset points", va="center")
        if all(float(value).is_integer() for value in values):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.margins(x=0.12)
        return _svg(figure)


def daily_pnl(
    days: Sequence[str], pnl: Sequence[float], cumulative: Sequence[float], *, currency: str, width_cm: float = 17
) -> str:
    """P&L per day as bars (gains green, losses red) and the cumulative P&L as a line, one axis."""
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(width_cm / 2.54, 6.5 / 2.54))
        positions = list(range(len(days)))
        axes.bar(
            positions, pnl, color=["#2f7d46" if value >= 0 else "#b03a2e" for value in pnl], label="P&L of the day"
        )
        axes.plot(positions, cumulative, color="#3b6ea5", marker="o", markersize=2.5, label="cumulative P&L")
        axes.axhline(0, color="#777", linewidth=0.6)
        step = max(1, len(days) // 12)
        axes.set_xticks(positions[::step], [day[5:] for day in days[::step]], rotation=45, ha="right")
        axes.set_ylabel(currency)
        axes.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
        axes.legend(loc="best", frameon=False)
        return _svg(figure)
