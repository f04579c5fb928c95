"""The rating of a risk assessment, decided by the policies at the ``assessment`` trigger.

Red when a rule denies, amber when one warns or asks for approval, green otherwise; the
rules that decided it (id, outcome, message, references) are kept beside the rating, so a
reader sees why and which written rule says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GREEN = "green"
AMBER = "amber"
RED = "red"
RATINGS = (GREEN, AMBER, RED)


def rate(results: Iterable[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """``(rating, deciding rules)`` from a decision's per-rule results."""
    firing = [
        {key: result[key] for key in ("id", "outcome", "message", "references")}
        for result in results
        if result["outcome"] in ("deny", "warn", "require_approval")
    ]
    outcomes = {rule["outcome"] for rule in firing}
    if "deny" in outcomes:
        return RED, [rule for rule in firing if rule["outcome"] == "deny"] + [
            rule for rule in firing if rule["outcome"] != "deny"
        ]
    return (AMBER if firing else GREEN), firing
