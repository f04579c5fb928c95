"""Complexity and risk tier, derived from model type and materiality.

Complexity follows the reference article's table (linear/logistic low, trees and forests
medium, SVM high, deep learning very high). The tier crosses complexity with materiality
(capital at risk), as PRA SS1/23 Principle 1 asks: tier 1 is the highest model risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from models_registry.choices import Complexity, Materiality, ModelType

COMPLEXITY_BY_TYPE: dict[str, Complexity] = {
    ModelType.LINEAR_REGRESSION: Complexity.LOW,
    ModelType.LOGISTIC_REGRESSION: Complexity.LOW,
    ModelType.DECISION_TREE: Complexity.MEDIUM,
    ModelType.RANDOM_FOREST: Complexity.MEDIUM,
    ModelType.SVM: Complexity.HIGH,
    ModelType.DEEP_LEARNING: Complexity.VERY_HIGH,
}

# TIER_MATRIX[materiality][complexity] -> tier
TIER_MATRIX: dict[Materiality, dict[Complexity, int]] = {
    Materiality.HIGH: {Complexity.LOW: 2, Complexity.MEDIUM: 1, Complexity.HIGH: 1, Complexity.VERY_HIGH: 1},
    Materiality.MEDIUM: {Complexity.LOW: 3, Complexity.MEDIUM: 2, Complexity.HIGH: 2, Complexity.VERY_HIGH: 1},
    Materiality.LOW: {Complexity.LOW: 3, Complexity.MEDIUM: 3, Complexity.HIGH: 2, Complexity.VERY_HIGH: 2},
}


def complexity_of(model_type: str) -> Complexity:
    return COMPLEXITY_BY_TYPE[ModelType(model_type)]


def materiality_band(capital_at_risk: Decimal) -> Materiality:
    if capital_at_risk >= settings.GOVERNANCE_MATERIALITY_HIGH:
        return Materiality.HIGH
    if capital_at_risk >= settings.GOVERNANCE_MATERIALITY_MEDIUM:
        return Materiality.MEDIUM
    return Materiality.LOW


@dataclass(frozen=True)
class TierAssessment:
    tier: int
    complexity: Complexity
    materiality: Materiality
    rationale: str


def assess_tier(*, model_type: str, capital_at_risk: Decimal) -> TierAssessment:
    complexity = complexity_of(model_type)
    band = materiality_band(capital_at_risk)
    tier = TIER_MATRIX[band][complexity]
    currency = settings.GOVERNANCE_BASE_CURRENCY
    thresholds = (
        f"high ≥ {settings.GOVERNANCE_MATERIALITY_HIGH:,} {currency}, "
        f"medium ≥ {settings.GOVERNANCE_MATERIALITY_MEDIUM:,} {currency}"
    )
    rationale = (
        f"tier {tier}: {band.label.lower()} materiality ({capital_at_risk:,} {currency} at risk; {thresholds}) "
        f"x {complexity.label.lower()} complexity ({ModelType(model_type).label.lower()})"
    )
    return TierAssessment(tier=tier, complexity=complexity, materiality=band, rationale=rationale)
