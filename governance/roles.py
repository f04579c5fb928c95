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


_REGISTRY = ("model", "modelversion", "dataset")
# See the whole inventory (datasets up to confidential); restricted data needs a grant.
_OVERSIGHT = ("oversee_model", "oversee_dataset")

# codename -> roles. "transition_modelversion" is the lifecycle permission; "assign_validator"
# assigns and unassigns validators (never the read-only oversight roles); "validate_dataset"
# runs a dataset's rules and stores the result.
ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.MODEL_OWNER: {
        *(f"{action}_{name}" for name in _REGISTRY for action in ("add", "change", "view")),
        "transition_modelversion",
        "validate_dataset",
        "view_desk",
    },
    Role.MODEL_DEVELOPER: {
        "view_model",
        *(f"{action}_{name}" for name in ("modelversion", "dataset") for action in ("add", "change", "view")),
        "validate_dataset",
        "view_desk",
    },
    Role.VALIDATOR: {
        "view_model",
        "view_modelversion",
        "view_dataset",
        "validate_dataset",
        "transition_modelversion",
        "view_desk",
    },
    Role.RISK_MANAGER: {"view_model", "view_modelversion", "view_dataset", "view_desk", "view_event", *_OVERSIGHT},
    Role.COMPLIANCE_OFFICER: {
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
    },
    Role.INTERNAL_AUDITOR: {
        "view_model",
        "view_modelversion",
        "view_dataset",
        "view_desk",
        "view_event",
        "view_engagement",
        *_OVERSIGHT,
    },
    Role.REGULATOR: set(),
    Role.ADMINISTRATOR: {
        *(f"{action}_{name}" for name in (*_REGISTRY, "desk") for action in ("add", "change", "view")),
        "transition_modelversion",
        "assign_validator",
        "view_event",
        *_OVERSIGHT,
        "add_user",
        "change_user",
        "view_user",
        "view_group",
    },
}
