"""The schema of policy files and policy test files, strict: an unknown field is an error.

pydantic (v2) models with ``extra="forbid"`` and strict types (no silent coercion of
``"1"`` to ``1``). The loader validates each rule on its own, so that an error names the
rule's id; see ``governance.policy.loader``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from governance.policy import triggers
from governance.roles import Role

FILE_FORMAT = 1
RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
Effect = Literal["deny", "warn", "require_approval"]
# What a monitoring rule that fires does (governance.anomaly_services): e-mail the owner and
# compliance, ask for a risk assessment, pull the kill switch, roll back to the target.
ACTIONS = ("alert", "revalidate", "suspend", "rollback")
# What one rule can come to in an evaluation (see governance.policy.engine).
RuleOutcome = Literal["pass", "not_applicable", "deny", "warn", "require_approval"]
Overall = Literal["allow", "deny", "require_approval"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ApprovalSpec(_Strict):
    """``count`` distinct approvers, each holding at least one of ``roles``."""

    roles: list[str] = Field(min_length=1)
    count: int = Field(ge=1, le=10)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        known = [role.value for role in Role]
        unknown = [role for role in roles if role not in known]
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(map(repr, unknown))}; roles are {', '.join(known)}")
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        return roles


class RuleSpec(_Strict):
    id: str
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    applies_to: list[str] = Field(min_length=1)
    precondition: str | None = None
    condition: str | None = None
    effect: Effect
    approval: ApprovalSpec | None = None
    message: str = Field(min_length=1)
    references: list[str] = Field(min_length=1)
    # Only on the monitoring trigger: what happens when the rule fires (see ACTIONS).
    actions: list[str] | None = None

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError("a rule id is upper-case words joined by '-', e.g. DATA-SPLIT-01")
        return value

    @field_validator("applies_to")
    @classmethod
    def _triggers(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                triggers.parse(value, allow_wildcard=True)
            except triggers.TriggerError as exc:
                raise ValueError(str(exc)) from exc
        if len(set(values)) != len(values):
            raise ValueError("a trigger is listed twice")
        return values

    @field_validator("actions")
    @classmethod
    def _actions(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        if not values:
            raise ValueError(f"actions: list at least one of {', '.join(ACTIONS)} (or leave the field out)")
        unknown = [value for value in values if value not in ACTIONS]
        if unknown:
            raise ValueError(f"unknown action(s) {', '.join(map(repr, unknown))}; actions are {', '.join(ACTIONS)}")
        if len(set(values)) != len(values):
            raise ValueError("an action is listed twice")
        return values

    @field_validator("references")
    @classmethod
    def _references(cls, values: list[str]) -> list[str]:
        if any(not value.strip() for value in values):
            raise ValueError("a reference is empty")
        return values

    @model_validator(mode="after")
    def _actions_only_on_monitoring(self) -> RuleSpec:
        if self.actions is None:
            return self
        others = [text for text in self.applies_to if triggers.parse(text, allow_wildcard=True).kind != "monitoring"]
        if others:
            raise ValueError(
                f"'actions' work only on the monitoring trigger; the rule also applies to {', '.join(others)}"
            )
        if self.effect == "require_approval":
            raise ValueError("a monitoring rule with actions fires by deny or warn, not require_approval")
        return self

    @model_validator(mode="after")
    def _effect_needs(self) -> RuleSpec:
        if self.effect == "require_approval":
            if self.approval is None:
                raise ValueError("effect require_approval needs 'approval: {roles: [...], count: N}'")
        else:
            if self.approval is not None:
                raise ValueError(f"'approval' is only for effect require_approval, not {self.effect}")
            if self.condition is None:
                raise ValueError(f"effect {self.effect} needs a 'condition' (what must hold for the rule to pass)")
        return self


class PolicyFileSpec(_Strict):
    """A policy file. ``rules`` are validated one by one afterwards (``RuleSpec``)."""

    version: Literal[1]
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    rules: list[Any] = Field(default_factory=list)


class CaseSpec(_Strict):
    name: str = Field(min_length=1)
    trigger: str
    input: dict[str, Any] = Field(default_factory=dict)
    # Dotted paths removed from the merged document (a field that is absent, not null).
    unset: list[str] = Field(default_factory=list)
    expect: dict[str, RuleOutcome] = Field(default_factory=dict)
    overall: Overall | None = None

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        try:
            triggers.parse(value)
        except triggers.TriggerError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _expects_something(self) -> CaseSpec:
        if not self.expect and self.overall is None:
            raise ValueError("a case needs 'expect' (rule id -> outcome) or 'overall'")
        return self


class CaseFileSpec(_Strict):
    """A test file: cases, each an input document (``base`` deep-merged with the case's
    ``input``) and the expected outcome of some rules."""

    version: Literal[1]
    description: str = ""
    base: str | None = None
    cases: list[CaseSpec] = Field(min_length=1)


def describe_errors(exc: ValidationError) -> list[str]:
    """pydantic's errors as ``field 'a.b': reason`` strings."""
    out = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        out.append(f"field {loc!r}: {message}" if loc else message)
    return out
