"""The organisation's roles, as Django groups with model permissions.

Object-level scoping (which models a user may see) is added on top of these by the
selectors; the groups say what kind of thing each role may do at all.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    MODEL_OWNER = "model owner"
    MODEL_DEVELOPER = "model developer"
    VALIDATOR = "validator"
    RISK_MANAGER = "risk manager"
    COMPLIANCE_OFFICER = "compliance officer"
    INTERNAL_AUDITOR = "internal auditor"
    REGULATOR = "regulator"
    ADMINISTRATOR = "administrator"
    # Service accounts of the trading infrastructure: read the trading permission, push
    # monitoring samples for the models in their scope (docs/monitoring.md).
    TRADING_SYSTEM = "trading system"


_REGISTRY = ("model", "modelversion", "dataset")
# See the whole inventory (datasets up to confidential); restricted data needs a grant.
_OVERSIGHT = ("oversee_model", "oversee_dataset")

# Sign-offs and findings (governance.models). Who may *approve* a sign-off is not a Django
# permission: the policies name the roles (governance/policies/approval.yaml).
_SIGNOFF_REQUESTER = ("add_signoffrequest", "view_signoffrequest", "view_finding", "change_finding")
_FINDINGS_RAISER = ("add_finding", "change_finding", "view_finding")
_GOVERNANCE_RECORDS = ("view_signoffrequest", "view_finding", "view_policyset", "view_policydecision")
# Risk assessments (models_registry.RiskAssessment): seen by every role that sees versions,
# requested (and cancelled) by the validation, risk and compliance functions, administrators
# and model owners; the object scope (sight of the version) is checked by the service.
_ASSESSMENT_VIEWER = ("view_riskassessment",)
_ASSESSMENT_REQUESTER = ("view_riskassessment", "request_riskassessment")
# Deployments (governance.Deployment): the kill switch is pulled by owners and the risk and
# compliance functions (and monitoring jobs); only compliance officers lift it.
_KILL_SWITCH = ("view_deployment", "engage_killswitch", "rollback_deployment")
# Monitoring alerts (governance.MonitoringAlert): seen by whoever sees deployments; acknowledged
# and resolved by the risk and compliance functions.
_ALERT_VIEWER = ("view_monitoringalert",)
_ALERT_HANDLER = ("view_monitoringalert", "acknowledge_monitoringalert", "resolve_monitoringalert")
# Reports (governance.Report, docs/reports.md): requested and seen by the roles that see the
# subjects (the selectors scope them); legal holds are compliance's. Regulators hold no
# permission: they see the reports on models an engagement shares with them.
_REPORTS = ("view_report", "request_report")
# Post-model adjustments (models_registry.PostModelAdjustment): seen by the roles that see
# findings (the selectors scope them to the versions the user sees); recorded and withdrawn
# by compliance officers.
_ADJUSTMENT_VIEWER = ("view_postmodeladjustment",)
_ADJUSTMENT_MANAGER = ("view_postmodeladjustment", "add_postmodeladjustment", "withdraw_postmodeladjustment")

# codename -> roles. "transition_modelversion" is the lifecycle permission; "assign_validator"
# assigns and unassigns validators (never the read-only oversight roles); "validate_dataset"
# runs a dataset's rules and stores the result.
ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.MODEL_OWNER: {
        *_ADJUSTMENT_VIEWER,
        *_REPORTS,
        *_ASSESSMENT_REQUESTER,
        *(f"{action}_{name}" for name in _REGISTRY for action in ("add", "change", "view")),
        "transition_modelversion",
        "validate_dataset",
        "view_desk",
        *_SIGNOFF_REQUESTER,
        *_KILL_SWITCH,
        "ingest_monitoring",
        *_ALERT_VIEWER,
    },
    Role.MODEL_DEVELOPER: {
        *_ADJUSTMENT_VIEWER,
        *_ASSESSMENT_VIEWER,
        "view_model",
        *(f"{action}_{name}" for name in ("modelversion", "dataset") for action in ("add", "change", "view")),
        "validate_dataset",
        "view_desk",
        "view_signoffrequest",
        "view_finding",
        "change_finding",
    },
    Role.VALIDATOR: {
        *_ADJUSTMENT_VIEWER,
        *_REPORTS,
        *_ASSESSMENT_REQUESTER,
        "view_model",
        "view_modelversion",
        "view_dataset",
        "validate_dataset",
        "transition_modelversion",
        "view_desk",
        *_FINDINGS_RAISER,
        "close_finding",
        "view_signoffrequest",
    },
    Role.RISK_MANAGER: {
        *_ADJUSTMENT_VIEWER,
        *_REPORTS,
        *_ASSESSMENT_REQUESTER,
        "view_model",
        "view_modelversion",
        "view_dataset",
        "view_desk",
        "view_event",
        *_OVERSIGHT,
        *_FINDINGS_RAISER,
        *_GOVERNANCE_RECORDS,
        *_KILL_SWITCH,
        *_ALERT_HANDLER,
    },
    Role.COMPLIANCE_OFFICER: {
        *_ADJUSTMENT_MANAGER,
        *_REPORTS,
        "hold_report",
        *_ASSESSMENT_REQUESTER,
        "view_model",
        "view_modelversion",
        "view_dataset",
        "transition_modelversion",
        "assign_validator",
        "view_desk",
        "view_event",
        "view_engagement",
        "add_engagement",
        "change_engagement",
        "activate_policyset",
        *_OVERSIGHT,
        *_FINDINGS_RAISER,
        "close_finding",
        *_GOVERNANCE_RECORDS,
        *_KILL_SWITCH,
        "lift_killswitch",
        *_ALERT_HANDLER,
    },
    Role.INTERNAL_AUDITOR: {
        *_ADJUSTMENT_VIEWER,
        *_REPORTS,
        *_ASSESSMENT_VIEWER,
        "view_model",
        "view_modelversion",
        "view_dataset",
        "view_desk",
        "view_event",
        "view_engagement",
        *_OVERSIGHT,
        *_GOVERNANCE_RECORDS,
        "view_deployment",
        *_ALERT_VIEWER,
    },
    Role.REGULATOR: set(),
    Role.ADMINISTRATOR: {
        *_ADJUSTMENT_VIEWER,
        *_REPORTS,
        *_ASSESSMENT_REQUESTER,
        *(f"{action}_{name}" for name in (*_REGISTRY, "desk") for action in ("add", "change", "view")),
        "transition_modelversion",
        "assign_validator",
        "view_event",
        *_OVERSIGHT,
        "add_user",
        "change_user",
        "view_user",
        "view_group",
        *_GOVERNANCE_RECORDS,
        *_KILL_SWITCH,
        *_ALERT_VIEWER,
    },
    Role.TRADING_SYSTEM: {"view_deployment", "ingest_monitoring"},
}
