"""Risk tiering: complexity by model type, materiality bands, the tier matrix, overrides and their audit."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from audit.models import Event
from audit.scope import audited_change
from audit.services import SystemActor, record_event
from models_registry import services, tiering
from models_registry.choices import Complexity, Materiality, ModelType
from models_registry.models import Model

D = Decimal

# The reference article's complexity table, written out independently of tiering.COMPLEXITY_BY_TYPE.
COMPLEXITY_SPEC = {
    "linear_regression": "low",
    "logistic_regression": "low",
    "decision_tree": "medium",
    "random_forest": "medium",
    "svm": "high",
    "deep_learning": "very_high",
}

# Tier (1 = highest risk) by materiality band and complexity, as documented.
TIER_SPEC = {
    ("high", "low"): 2,
    ("high", "medium"): 1,
    ("high", "high"): 1,
    ("high", "very_high"): 1,
    ("medium", "low"): 3,
    ("medium", "medium"): 2,
    ("medium", "high"): 2,
    ("medium", "very_high"): 1,
    ("low", "low"): 3,
    ("low", "medium"): 3,
    ("low", "high"): 2,
    ("low", "very_high"): 2,
}

MEDIUM = D("5000000")
HIGH = D("50000000")

# Capital at risk around the default thresholds (medium ≥ 5,000,000; high ≥ 50,000,000), with its band.
AMOUNTS = [
    (D("0"), "low"),
    (D("0.01"), "low"),
    (D("1000000.00"), "low"),
    (D("4999999.99"), "low"),
    (D("5000000.00"), "medium"),
    (D("5000000.01"), "medium"),
    (D("49999999.99"), "medium"),
    (D("50000000.00"), "high"),
    (D("50000000.01"), "high"),
    (D("999999999999999999.99"), "high"),
]

TYPE_BY_AMOUNT = list(itertools.product(COMPLEXITY_SPEC, AMOUNTS))


def _ids(case):
    model_type, (amount, band) = case
    return f"{model_type}-{amount}-{band}"


@pytest.fixture(autouse=True)
def default_thresholds(settings):
    """Pin the documented defaults so an environment override cannot change what these tests mean."""
    settings.GOVERNANCE_MATERIALITY_MEDIUM = MEDIUM
    settings.GOVERNANCE_MATERIALITY_HIGH = HIGH
    settings.GOVERNANCE_BASE_CURRENCY = "USD"
    return settings


@pytest.mark.skipif(
    bool({"GOVERNANCE_MATERIALITY_MEDIUM", "GOVERNANCE_MATERIALITY_HIGH"} & set(os.environ)),
    reason="thresholds overridden by the environment",
)
def test_default_thresholds_are_five_and_fifty_million():
    from governance import settings as project_settings

    thresholds = (project_settings.GOVERNANCE_MATERIALITY_MEDIUM, project_settings.GOVERNANCE_MATERIALITY_HIGH)
    assert thresholds == (D("5000000"), D("50000000"))


# --- the tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_type", "complexity"), COMPLEXITY_SPEC.items())
def test_complexity_follows_the_reference_article(model_type, complexity):
    assert tiering.complexity_of(model_type) == complexity
    assert tiering.complexity_of(ModelType(model_type)) == complexity


def test_every_model_type_has_a_complexity_and_every_cell_of_the_matrix_a_tier():
    assert set(tiering.COMPLEXITY_BY_TYPE) == set(ModelType)
    assert {m.value for m in ModelType} == set(COMPLEXITY_SPEC)
    matrix = {(band.value, c.value): tier for band, row in tiering.TIER_MATRIX.items() for c, tier in row.items()}
    assert matrix == TIER_SPEC
    assert set(tiering.TIER_MATRIX) == set(Materiality)
    for row in tiering.TIER_MATRIX.values():
        assert set(row) == set(Complexity)


def test_tier_never_falls_as_materiality_or_complexity_rises():
    bands = ["low", "medium", "high"]
    levels = ["low", "medium", "high", "very_high"]
    for band_index, band in enumerate(bands):
        for level_index, level in enumerate(levels):
            tier = TIER_SPEC[(band, level)]
            if band_index:
                assert tier <= TIER_SPEC[(bands[band_index - 1], level)]
            if level_index:
                assert tier <= TIER_SPEC[(band, levels[level_index - 1])]


def test_unknown_model_type_is_refused():
    with pytest.raises(ValueError):
        tiering.complexity_of("gradient_boosting")


# --- bands and tiers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "band"), AMOUNTS, ids=[f"{a}-{b}" for a, b in AMOUNTS])
def test_materiality_band_at_and_around_the_thresholds(amount, band):
    assert tiering.materiality_band(amount) == band


@pytest.mark.parametrize("case", TYPE_BY_AMOUNT, ids=[_ids(c) for c in TYPE_BY_AMOUNT])
def test_assess_tier_full_matrix(case):
    model_type, (amount, band) = case
    assessment = tiering.assess_tier(model_type=model_type, capital_at_risk=amount)
    complexity = COMPLEXITY_SPEC[model_type]
    assert assessment.materiality == band
    assert assessment.complexity == complexity
    assert assessment.tier == TIER_SPEC[(band, complexity)]
    assert assessment.rationale.startswith(f"tier {assessment.tier}: {band} materiality (")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model_type", "amount", "band"),
    [(t, a, b) for t in COMPLEXITY_SPEC for a, b in (AMOUNTS[3], AMOUNTS[4], AMOUNTS[7])],
)
def test_model_create_stores_the_computed_tier(make_model, model_type, amount, band):
    model = make_model(name=f"{model_type}-{amount}", model_type=model_type, materiality=amount)
    stored = Model.objects.get(pk=model.pk)
    expected = TIER_SPEC[(band, COMPLEXITY_SPEC[model_type])]
    assert stored.risk_tier == expected
    assert stored.computed_tier == expected
    assert stored.risk_tier_override is None
    assert stored.complexity == COMPLEXITY_SPEC[model_type]
    event = Event.objects.get(action="model.created", object_id=str(model.pk))
    assert event.after["risk_tier"] == expected


@pytest.mark.parametrize(
    ("amount", "band"),
    [
        (D("99.99"), "low"),
        (D("100"), "medium"),
        (D("999.99"), "medium"),
        (D("1000"), "high"),  # low under the default thresholds
    ],
)
def test_thresholds_come_from_settings(settings, amount, band):
    settings.GOVERNANCE_MATERIALITY_MEDIUM = D("100")
    settings.GOVERNANCE_MATERIALITY_HIGH = D("1000")
    assert tiering.materiality_band(amount) == band


def test_raising_thresholds_lowers_the_band(settings):
    settings.GOVERNANCE_MATERIALITY_MEDIUM = D("100000000")
    settings.GOVERNANCE_MATERIALITY_HIGH = D("1000000000")
    assessment = tiering.assess_tier(model_type="deep_learning", capital_at_risk=D("60000000"))
    assert assessment.materiality == "low"
    assert assessment.tier == 2


@pytest.mark.django_db
def test_model_create_uses_the_thresholds_in_force(settings, make_model):
    settings.GOVERNANCE_MATERIALITY_MEDIUM = D("100")
    settings.GOVERNANCE_MATERIALITY_HIGH = D("1000")
    model = make_model(model_type="random_forest", materiality=D("1000.00"))
    assert Model.objects.get(pk=model.pk).risk_tier == 1  # high x medium; would be tier 3 under the defaults


# --- rationale ----------------------------------------------------------------------------------


def test_rationale_text():
    assessment = tiering.assess_tier(model_type="logistic_regression", capital_at_risk=D("1000000.00"))
    assert assessment.rationale == (
        "tier 3: low materiality (1,000,000.00 USD at risk; high ≥ 50,000,000 USD, medium ≥ 5,000,000 USD) "
        "x low complexity (logistic regression)"
    )


def test_rationale_text_high_deep_learning():
    assessment = tiering.assess_tier(model_type="deep_learning", capital_at_risk=D("75000000.50"))
    assert assessment.rationale == (
        "tier 1: high materiality (75,000,000.50 USD at risk; high ≥ 50,000,000 USD, medium ≥ 5,000,000 USD) "
        "x very high complexity (deep learning)"
    )


def test_rationale_reflects_overridden_thresholds_and_currency(settings):
    settings.GOVERNANCE_MATERIALITY_MEDIUM = D("100")
    settings.GOVERNANCE_MATERIALITY_HIGH = D("2500")
    settings.GOVERNANCE_BASE_CURRENCY = "EUR"
    assessment = tiering.assess_tier(model_type="svm", capital_at_risk=D("150"))
    assert assessment.rationale == (
        "tier 2: medium materiality (150 EUR at risk; high ≥ 2,500 EUR, medium ≥ 100 EUR) "
        "x high complexity (support vector machine)"
    )


@pytest.mark.django_db
def test_model_tier_rationale_with_and_without_override(make_model):
    model = make_model(materiality=D("1000000.00"))
    computed = model.tier_assessment.rationale
    assert model.tier_rationale == computed
    overridden = make_model(
        name="overridden",
        materiality=D("1000000.00"),
        risk_tier_override=1,
        risk_tier_override_justification="Feeds the firm-wide VaR",
    )
    assert overridden.tier_rationale == f"tier 1 by override (Feeds the firm-wide VaR); computed {computed}"


# --- model_update recomputes ------------------------------------------------------------------------


@pytest.mark.django_db
def test_raising_materiality_recomputes_the_tier_and_audits_the_diff(make_model, owner):
    model = make_model(model_type="random_forest", materiality=D("1000000.00"))
    assert model.risk_tier == 3
    model = services.model_update(actor=owner, model=model, changes={"materiality": D("60000000.00")})
    stored = Model.objects.get(pk=model.pk)
    assert stored.risk_tier == 1
    assert stored.computed_tier == 1
    event = Event.objects.filter(action="model.updated", object_id=str(model.pk)).get()
    assert event.before["risk_tier"] == 3
    assert event.after["risk_tier"] == 1
    assert event.before["materiality"] == "1000000.00"
    assert event.after["materiality"] == "60000000.00"
    assert event.actor == owner


@pytest.mark.django_db
def test_changing_model_type_recomputes_the_tier(make_model, owner):
    model = make_model(model_type="linear_regression", materiality=D("10000000.00"))
    assert model.risk_tier == 3
    services.model_update(actor=owner, model=model, changes={"model_type": "deep_learning"})
    assert Model.objects.get(pk=model.pk).risk_tier == 1
    event = Event.objects.get(action="model.updated")
    assert (event.before["model_type"], event.after["model_type"]) == ("linear_regression", "deep_learning")
    assert (event.before["risk_tier"], event.after["risk_tier"]) == (3, 1)


@pytest.mark.django_db
def test_lowering_materiality_lowers_the_tier(make_model, owner):
    model = make_model(model_type="svm", materiality=D("50000000.00"))
    assert model.risk_tier == 1
    services.model_update(actor=owner, model=model, changes={"materiality": D("4999999.99")})
    assert Model.objects.get(pk=model.pk).risk_tier == 2


# --- overrides --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("justification", ["", "   ", "\n\t"])
def test_create_with_override_needs_a_justification(make_model, justification):
    models_before, events_before = Model.objects.count(), Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        make_model(risk_tier_override=1, risk_tier_override_justification=justification)
    assert "risk_tier_override_justification" in excinfo.value.message_dict
    assert Model.objects.count() == models_before
    assert Event.objects.count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize("justification", ["", "  "])
def test_update_with_override_needs_a_justification(make_model, owner, justification):
    model = make_model()
    events_before = Event.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.model_update(
            actor=owner,
            model=model,
            changes={"risk_tier_override": 1, "risk_tier_override_justification": justification},
        )
    assert "risk_tier_override_justification" in excinfo.value.message_dict
    stored = Model.objects.get(pk=model.pk)
    assert stored.risk_tier_override is None
    assert stored.risk_tier == 3
    assert Event.objects.count() == events_before


@pytest.mark.django_db
def test_override_with_justification_sets_the_effective_tier(make_model):
    model = make_model(
        materiality=D("1000000.00"), risk_tier_override=1, risk_tier_override_justification="Systemic desk"
    )
    stored = Model.objects.get(pk=model.pk)
    assert stored.risk_tier == 1
    assert stored.risk_tier_override == 1
    assert stored.computed_tier == 3
    assert Model.objects.filter(risk_tier=1).get() == stored
    event = Event.objects.get(action="model.created")
    assert event.after["risk_tier"] == 1
    assert event.after["risk_tier_override"] == 1
    assert event.after["risk_tier_override_justification"] == "Systemic desk"


@pytest.mark.django_db
def test_override_can_lower_the_tier_too(make_model):
    model = make_model(
        model_type="deep_learning",
        materiality=D("90000000.00"),
        risk_tier_override=3,
        risk_tier_override_justification="Shadow model, no orders",
    )
    stored = Model.objects.get(pk=model.pk)
    assert (stored.risk_tier, stored.computed_tier) == (3, 1)


@pytest.mark.django_db
def test_adding_then_removing_the_override_restores_the_computed_tier(make_model, owner):
    model = make_model(model_type="svm", materiality=D("1000000.00"))
    assert model.risk_tier == 2
    services.model_update(
        actor=owner,
        model=model,
        changes={"risk_tier_override": 1, "risk_tier_override_justification": "Regulator request"},
    )
    stored = Model.objects.get(pk=model.pk)
    assert (stored.risk_tier, stored.computed_tier) == (1, 2)

    services.model_update(actor=owner, model=stored, changes={"risk_tier_override": None})
    stored = Model.objects.get(pk=model.pk)
    assert stored.risk_tier == 2
    assert stored.risk_tier_override is None
    assert stored.risk_tier_override_justification == ""  # a stale justification is not kept

    removal = Event.objects.filter(action="model.updated").order_by("-seq").first()
    assert (removal.before["risk_tier"], removal.after["risk_tier"]) == (1, 2)
    assert (removal.before["risk_tier_override"], removal.after["risk_tier_override"]) == (1, None)
    assert removal.before["risk_tier_override_justification"] == "Regulator request"
    assert removal.after["risk_tier_override_justification"] == ""


@pytest.mark.django_db
def test_materiality_change_under_an_override_keeps_the_override(make_model, owner):
    model = make_model(
        model_type="linear_regression",
        materiality=D("1000000.00"),
        risk_tier_override=1,
        risk_tier_override_justification="Board decision",
    )
    services.model_update(actor=owner, model=model, changes={"materiality": D("70000000.00")})
    stored = Model.objects.get(pk=model.pk)
    assert (stored.risk_tier, stored.computed_tier) == (1, 2)


@pytest.mark.django_db
def test_override_must_be_a_valid_tier(make_model):
    with pytest.raises(ValidationError) as excinfo:
        make_model(risk_tier_override=4, risk_tier_override_justification="Made up tier")
    assert "risk_tier_override" in excinfo.value.message_dict
    assert not Model.objects.exists()


# --- the database backstop ------------------------------------------------------------------------


@pytest.mark.django_db
def test_database_rejects_override_without_justification(desk, owner):
    model = Model(
        name="raw",
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="svm",
        materiality=D("1.00"),
        risk_tier_override=1,
        risk_tier_override_justification="",
    )
    # Inside an audited change, so that the governed-write guard lets the row reach the database.
    with pytest.raises(IntegrityError), audited_change():
        model.save()
    assert not Model.objects.filter(name="raw").exists()


@pytest.mark.django_db
def test_database_rejects_removing_the_justification_of_an_existing_override(make_model):
    model = make_model(risk_tier_override=2, risk_tier_override_justification="Reason")
    with pytest.raises(IntegrityError), audited_change():
        Model.objects.filter(pk=model.pk).update(risk_tier_override_justification="")
    assert Model.objects.get(pk=model.pk).risk_tier_override_justification == "Reason"


@pytest.mark.django_db
def test_database_accepts_raw_save_with_justification(desk, owner):
    model = Model(
        name="raw-ok",
        purpose="alpha",
        desk=desk,
        owner=owner,
        model_type="svm",
        materiality=D("1.00"),
        risk_tier_override=1,
        risk_tier_override_justification="Documented",
    )
    with audited_change():
        model.save()
        record_event(actor=SystemActor("tests"), action="test.raw_save", target=model)
    assert Model.objects.get(name="raw-ok").risk_tier == 1
