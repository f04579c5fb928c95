from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model inventory"

    def ready(self) -> None:
        from audit.governed import govern

        for model_name in (
            "Model",
            "ModelVersion",
            "Dataset",
            "ModelGrant",
            "DatasetGrant",
            "Engagement",
            "EngagementModel",
            "RiskAssessment",
            "ModelDependency",
            "PostModelAdjustment",
        ):
            govern(self.get_model(model_name))
