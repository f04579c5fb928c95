from __future__ import annotations

from django.db import models


class Purpose(models.TextChoices):
    EXECUTION = "execution", "Execution"
    ALPHA = "alpha", "Alpha"
    RISK = "risk", "Risk"


class ModelType(models.TextChoices):
    """The reference article's complexity table, one entry per model family."""

    LINEAR_REGRESSION = "linear_regression", "Linear regression"
    LOGISTIC_REGRESSION = "logistic_regression", "Logistic regression"
    DECISION_TREE = "decision_tree", "Decision tree"
    RANDOM_FOREST = "random_forest", "Random forest"
    SVM = "svm", "Support vector machine"
    DEEP_LEARNING = "deep_learning", "Deep learning"


class Complexity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    VERY_HIGH = "very_high", "Very high"


class Materiality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class RiskTier(models.IntegerChoices):
    TIER_1 = 1, "Tier 1 (highest)"
    TIER_2 = 2, "Tier 2"
    TIER_3 = 3, "Tier 3 (lowest)"


class SourceKind(models.TextChoices):
    MARKET_DATA_FEED = "market_data_feed", "Market data feed"
    ORDER_MANAGEMENT_SYSTEM = "order_management_system", "Order management system"
    ALTERNATIVE_DATA = "alternative_data", "Alternative data"
    INTERNAL = "internal", "Internal"


class Classification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class ValidationStatus(models.TextChoices):
    NOT_VALIDATED = "not_validated", "Not validated"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class LifecycleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_DEVELOPMENT = "in_development", "In development"
    SUBMITTED_FOR_VALIDATION = "submitted_for_validation", "Submitted for validation"
    VALIDATED = "validated", "Validated"
    REJECTED = "rejected", "Rejected"
    APPROVED = "approved", "Approved"
    DEPLOYED = "deployed", "Deployed"
    SUSPENDED = "suspended", "Suspended"
    RETIRED = "retired", "Retired"
