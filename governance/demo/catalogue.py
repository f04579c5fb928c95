"""What the demo sets up: the organisation, the datasets and one model per complexity class."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from governance.roles import Role

DESKS = (("equities-alpha", "Equities Alpha"), ("execution", "Execution Services"))


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    roles: tuple[Role, ...]
    desk: str | None = None
    is_superuser: bool = False


USERS = (
    DemoUser("alice", "Alice", "Aldridge", (Role.MODEL_OWNER, Role.MODEL_DEVELOPER), desk="equities-alpha"),
    DemoUser("bob", "Bob", "Brennan", (Role.MODEL_OWNER, Role.MODEL_DEVELOPER), desk="execution"),
    DemoUser("vera", "Vera", "Varga", (Role.VALIDATOR,)),
    DemoUser("carl", "Carl", "Castro", (Role.COMPLIANCE_OFFICER,)),
    DemoUser("max", "Max", "Moreau", (Role.RISK_MANAGER,)),
    DemoUser("rita", "Rita", "Regan", (Role.REGULATOR,)),
    DemoUser("ian", "Ian", "Ito", (Role.INTERNAL_AUDITOR,)),
    DemoUser("admin", "Ada", "Admin", (Role.ADMINISTRATOR,), is_superuser=True),
)

PRICE_RULES: dict[str, Any] = {
    "required_columns": ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"],
    "not_null": ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"],
    "unique": ["Date"],
    "ranges": {
        "Open": {"min": 0.0001},
        "High": {"min": 0.0001},
        "Low": {"min": 0.0001},
        "Close": {"min": 0.0001},
        "Adj Close": {"min": 0.0001},
        "Volume": {"min": 0},
    },
    "monotonic_timestamps": True,
    # Exchange closures (e.g. 11-17 September 2001) reach 7 calendar days.
    "max_gap_days": 7,
    "cleansing": {"drop_duplicate_rows": True, "sort_by_time": True},
}

TICKERS = {
    "NVDA": {"desk": "equities-alpha", "owner": "alice"},
    "ORCL": {"desk": "execution", "owner": "bob"},
}


@dataclass(frozen=True)
class DemoModel:
    name: str
    ticker: str
    model_type: str
    purpose: str
    owner: str
    desk: str
    materiality: Decimal
    target: str  # "next_up" (classification) or "next_return" (regression)
    description: str
    objectives: str
    success_criteria: str
    constraints: str
    estimator: BaseEstimator
    lifecycle: tuple[str, ...]  # statuses to walk through after registration
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # Inventory attributes. Every demo model is built in-house (no vendor) from its own ticker's
    # price datasets: none consumes another model's output, so none has upstream models.
    outputs_and_users: str = ""
    restrictions_on_use: str = ""


def _scaled(estimator: BaseEstimator) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


MODELS = (
    DemoModel(
        name="nvda-next-day-return-linear",
        ticker="NVDA",
        model_type="linear_regression",
        purpose="alpha",
        owner="alice",
        desk="equities-alpha",
        materiality=Decimal("2000000.00"),
        target="next_return",
        description="Linear regression of NVDA's next-day log return on momentum, volatility and volume features.",
        objectives="Forecast the next-day return of NVDA to size a small directional overlay.",
        success_criteria="Directional accuracy above 50% on the 2012-2014 test period; positive Sharpe net of costs.",
        constraints="Daily rebalancing only; at most USD 2m gross exposure; no use in execution.",
        estimator=_scaled(LinearRegression()),
        lifecycle=("in_development", "submitted_for_validation", "validated"),
        outputs_and_users=(
            "Next-day NVDA log-return forecast at the close; used by the equities-alpha desk to size its NVDA "
            "directional overlay."
        ),
        restrictions_on_use=(
            "Sizing input to the NVDA directional overlay only: not for execution scheduling, risk limits or "
            "other instruments."
        ),
    ),
    DemoModel(
        name="nvda-direction-logistic",
        ticker="NVDA",
        model_type="logistic_regression",
        purpose="alpha",
        owner="alice",
        desk="equities-alpha",
        materiality=Decimal("20000000.00"),
        target="next_up",
        description="Logistic regression of NVDA's next-day direction.",
        objectives="Predict whether NVDA closes higher tomorrow, to tilt the desk's NVDA inventory.",
        success_criteria="Accuracy and precision above 51% on the test period; maximum drawdown under 35%.",
        constraints="Long/flat only; signals at the close; USD 20m capital at risk.",
        estimator=_scaled(LogisticRegression(C=1.0, max_iter=1000)),
        lifecycle=("in_development", "submitted_for_validation", "validated"),
        hyperparameters={"C": 1.0, "max_iter": 1000},
        outputs_and_users=(
            "Probability that NVDA closes higher tomorrow and a long/flat signal at the close; used by the "
            "equities-alpha desk to tilt its NVDA inventory and, once deployed, by the trading system through the "
            "trading permission."
        ),
        restrictions_on_use=(
            "Long/flat NVDA positions only (no short from its signal); within the deployment phase's capital and "
            "daily-loss limits; not for other instruments."
        ),
    ),
    DemoModel(
        name="orcl-regime-tree",
        ticker="ORCL",
        model_type="decision_tree",
        purpose="risk",
        owner="bob",
        desk="execution",
        materiality=Decimal("8000000.00"),
        target="next_up",
        description="Shallow decision tree classifying ORCL's next-day direction as a market-regime indicator.",
        objectives="Flag adverse short-term regimes for ORCL so risk limits can be tightened.",
        success_criteria="Recall of down days above 45% with precision above 50% on the test period.",
        constraints="Advisory input to risk limits only; never trades on its own.",
        estimator=DecisionTreeClassifier(max_depth=4, min_samples_leaf=50, random_state=7),
        lifecycle=("in_development", "submitted_for_validation", "validated"),
        hyperparameters={"max_depth": 4, "min_samples_leaf": 50, "random_state": 7},
        outputs_and_users=(
            "Adverse-regime flag for ORCL's next day; used by the risk function when setting the execution desk's "
            "ORCL limits."
        ),
        restrictions_on_use="Advisory input to risk limits only: never trades on its own and is not an alpha signal.",
    ),
    DemoModel(
        name="nvda-direction-forest",
        ticker="NVDA",
        model_type="random_forest",
        purpose="alpha",
        owner="alice",
        desk="equities-alpha",
        materiality=Decimal("60000000.00"),
        target="next_up",
        description="Random forest of NVDA's next-day direction.",
        objectives="Improve on the logistic direction model by capturing non-linear interactions.",
        success_criteria="Accuracy above the logistic model's on the test period without a larger train/test gap.",
        constraints="Long/flat only; USD 60m capital at risk; revalidation yearly.",
        estimator=RandomForestClassifier(n_estimators=100, max_depth=5, min_samples_leaf=20, random_state=7, n_jobs=1),
        lifecycle=("in_development", "submitted_for_validation"),
        hyperparameters={"n_estimators": 100, "max_depth": 5, "min_samples_leaf": 20, "random_state": 7},
        outputs_and_users=(
            "Probability that NVDA closes higher tomorrow; compared with the logistic model by the equities-alpha "
            "desk's research."
        ),
        restrictions_on_use="Research comparison only until it is validated and approved: no trading use.",
    ),
    DemoModel(
        name="orcl-execution-svm",
        ticker="ORCL",
        model_type="svm",
        purpose="execution",
        owner="bob",
        desk="execution",
        materiality=Decimal("15000000.00"),
        target="next_up",
        description="RBF support vector machine deciding whether to front-load or back-load ORCL orders.",
        objectives="Choose the intraday schedule of ORCL parent orders from the expected next-day direction.",
        success_criteria="Precision above 52% on the test period; implementation shortfall not worse than TWAP.",
        constraints="Schedules only; order sizes and venues are set by the execution algorithm's limits.",
        estimator=_scaled(SVC(C=1.0, kernel="rbf", gamma="scale")),
        lifecycle=("in_development", "submitted_for_validation"),
        hyperparameters={"C": 1.0, "kernel": "rbf", "gamma": "scale"},
        outputs_and_users=(
            "Front-load or back-load decision for ORCL parent orders; used by the execution desk's scheduling of "
            "those orders."
        ),
        restrictions_on_use=(
            "ORCL parent-order scheduling only: it never sets order sizes or venues, which the execution "
            "algorithm's limits set."
        ),
    ),
    DemoModel(
        name="nvda-direction-mlp",
        ticker="NVDA",
        model_type="deep_learning",
        purpose="alpha",
        owner="alice",
        desk="equities-alpha",
        materiality=Decimal("30000000.00"),
        target="next_up",
        description="Multi-layer perceptron (two hidden layers) of NVDA's next-day direction.",
        objectives="Test whether a neural network adds accuracy over the tree-based models.",
        success_criteria="Accuracy above the forest's on the test period with permutation-importance evidence.",
        constraints="Research only until explainability evidence is accepted.",
        estimator=_scaled(
            MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=300, early_stopping=True, random_state=7)
        ),
        lifecycle=("in_development", "submitted_for_validation", "rejected"),
        hyperparameters={"hidden_layer_sizes": [32, 16], "max_iter": 300, "early_stopping": True, "random_state": 7},
        outputs_and_users=(
            "Probability that NVDA closes higher tomorrow; used by the equities-alpha desk's research only."
        ),
        restrictions_on_use="Research only until explainability evidence is accepted: no trading use.",
    ),
)

# Who performs each lifecycle step in the demo (owners develop and submit; the validator decides).
STEP_ACTOR = {
    "in_development": "owner",
    "submitted_for_validation": "owner",
    "validated": "vera",
    "rejected": "vera",
}
STEP_REASON = {
    "in_development": "Training pipeline ready.",
    "submitted_for_validation": "Artifacts, datasets and problem definition complete; please validate.",
    "validated": "Independent review of held-out metrics completed.",
    "rejected": "No explainability evidence for a very-high-complexity model.",
}

# Shared with the demo regulator (rita) through an engagement.
SHARED_WITH_REGULATOR = ("nvda-direction-logistic", "orcl-execution-svm")
