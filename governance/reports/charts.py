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
            # A negative bar's label goes past its left end, clear of the bar.
            left = value < 0
            axes.annotate(
                f"{value:g}",
                (value, position),
                xytext=(-3 if left else 3, 0),
                textcoords="offset points",
                va="center",
                ha="right" if left else "left",
            )
        if all(float(value).is_integer() for value in values):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.margins(x=0.22 if any(value < 0 for value in values) else 0.12)
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
        # Above the plot area, never over the bars or the line.
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2, frameon=False, borderaxespad=0)
        return _svg(figure)


def dated_lines(
    dates: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    ylabel: str,
    percent: bool = False,
    fill: bool = False,
    width_cm: float = 16,
    height_cm: float = 6,
) -> str:
    """One line per series over ISO dates (e.g. equity curves, drawdowns); ``fill`` shades down to 0."""
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    x = np.array([value[:10] for value in dates], dtype="datetime64[D]")
    colours = ("#3b6ea5", "#9a9a9a", "#b5651d", "#14632d")
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(width_cm / 2.54, height_cm / 2.54))
        for (label, values), colour in zip(series.items(), colours, strict=False):
            axes.plot(x, values, label=label, color=colour, linewidth=0.9)
            if fill:
                axes.fill_between(x, values, 0, color=colour, alpha=0.15, linewidth=0)
        locator = mdates.AutoDateLocator(maxticks=8)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axes.set_ylabel(ylabel)
        if percent:
            axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.grid(axis="y", linewidth=0.3, color="#ccc")
        # Above the plot area: "best" still put it over a line when the series fill the axes.
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncol=len(series), frameon=False, borderaxespad=0)
        return _svg(figure)


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], *, auc: float | None, size_cm: float = 8) -> str:
    """The ROC curve with the chance diagonal, AUC in the legend."""
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(size_cm / 2.54, size_cm / 2.54))
        label = "model" if auc is None else f"model (AUC {auc:.4f})"
        axes.plot(fpr, tpr, color="#3b6ea5", linewidth=1.0, label=label)
        axes.plot([0, 1], [0, 1], color="#9a9a9a", linewidth=0.7, linestyle="--", label="chance")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_aspect("equal")
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
        axes.legend(frameon=False, loc="lower right")
        return _svg(figure)
