from models_registry.models import Model


def test_model_create_computes_tier_and_audits(make_model):
    model = make_model()
    assert Model.objects.get(pk=model.pk).risk_tier == 3
