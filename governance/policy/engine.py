"""Evaluating a compiled policy set against one input document. Pure: no database, no clock.

Per rule (only rules whose ``applies_to`` covers the document's trigger are considered):

* the **precondition** (optional) says whether the rule applies at all; false gives
  ``not_applicable``;
* the **condition** is what must hold; true gives ``pass``, false gives the rule's
  **effect**: ``deny``, ``warn`` or ``require_approval``. A ``require_approval`` rule may
  omit the condition: whenever it applies, the approval is needed;
* a ``require_approval`` outcome turns into ``pass`` when ``input.signoff.approvals`` holds
  enough approvals: ``count`` distinct approvers, each holding one of the named roles, none
  of them a developer of the model (``input.people.developer_ids``) nor the requester
  (``input.signoff.requested_by``). Each requirement is counted on its own;
* an expression that cannot be evaluated (a missing field, a wrong type, a non-boolean
  result) **fails closed**: the rule's effect applies, with the error in its message. Rules
  guard optional data with ``has()`` or ``!= null``; the input document builder always
  writes every field of its schema, so a missing field is a mistake in the rule, and
  ``policy_test`` shows it.

The overall outcome is ``deny`` if any rule denies, else ``require_approval`` if any approval
is still missing, else ``allow`` (warnings do not block).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import cel

from governance.policy import triggers
from governance.policy.schema import RuleSpec

FieldPath = tuple[str, ...]
ALL_PATHS = None  # an expression that may read any part of the input document


def decimal_cmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b``, compared as exact decimals.

    Exposed to CEL so that money (written as decimal strings in the input document and
    the parameters) is never compared as binary floating point.
    """
    try:
        left, right = Decimal(str(a)), Decimal(str(b))
    except InvalidOperation as exc:
        raise ValueError(f"decimal_cmp: {a!r} or {b!r} is not a decimal number") from exc
    if not (left.is_finite() and right.is_finite()):
        raise ValueError(f"decimal_cmp: {a!r} or {b!r} is not a finite number")
    return (left > right) - (left < right)


def decimal_mul(a: Any, b: Any) -> str:
    """``a`` times ``b`` as an exact decimal string, e.g. a limit that is a fraction of another
    (``decimal_mul('25000000', '0.2')`` is ``'5000000'``); compare the result with ``decimal_cmp``."""
    try:
        left, right = Decimal(str(a)), Decimal(str(b))
    except InvalidOperation as exc:
        raise ValueError(f"decimal_mul: {a!r} or {b!r} is not a decimal number") from exc
    if not (left.is_finite() and right.is_finite()):
        raise ValueError(f"decimal_mul: {a!r} or {b!r} is not a finite number")
    # Trailing zeros dropped for the message a rule may print; never an exponent.
    return format((left * right).normalize(), "f")


# Parameter values that rules index with values from the document, by the SHA-256 of their
# canonical JSON (``loader.inline_parameters`` registers them). Process-wide and content-
# addressed, so two sets sharing a value share its entry.
PARAMETER_VALUES: dict[str, Any] = {}


def param_at(key: str, *indexes: Any) -> Any:
    """``params.a.b[x][y]`` as the loader compiles it: ``param_at("<hash of params.a.b>", x, y)``.

    A function instead of a CEL map literal because building a literal of a whole table
    on every execution cost more than the rule; only the entry looked up is converted.
    A missing key raises ``KeyError``, as indexing a CEL map does, and the rule fails closed.
    """
    value = PARAMETER_VALUES[key]
    for index in indexes:
        in_list = isinstance(value, list) and type(index) is int and 0 <= index < len(value)
        if not (in_list or (isinstance(value, dict) and index in value)):
            raise KeyError(index)
        value = value[index]
    return value


# Functions a rule may call beyond CEL's operators; anything else is refused at load.
EXTRA_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "decimal_cmp": decimal_cmp,
    "decimal_mul": decimal_mul,
    "param_at": param_at,
}


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    file: str
    patterns: tuple[triggers.Trigger, ...]
    precondition: Any  # cel.Program | None
    condition: Any  # cel.Program | None
    # The message template: literal text and compiled ``{{ expression }}`` placeholders.
    message_parts: tuple[Any, ...]
    # The parts of the input document the precondition and condition read, and those the
    # message reads (ALL_PATHS: any); see ``_view``.
    paths: frozenset[FieldPath] | None
    message_paths: frozenset[FieldPath] | None
    # Equal for two rules that decide alike on any document: the compiled (parameters inlined)
    # precondition and condition, the effect and the approval. Impact analysis evaluates such
    # rules once for both sets.
    outcome_key: str = ""

    @property
    def id(self) -> str:
        return self.spec.id

    def applies_to(self, trigger: triggers.Trigger) -> bool:
        return any(pattern.matches(trigger) for pattern in self.patterns)


@dataclass(frozen=True)
class SourceFile:
    """One policy file as read: where it came from and its exact text."""

    directory: str
    name: str
    text: str

    @property
    def label(self) -> str:
        return f"{self.directory}/{self.name}"


@dataclass
class CompiledPolicySet:
    """A validated, compiled policy set. ``content_hash`` identifies it (see the loader)."""

    content_hash: str
    rules: tuple[CompiledRule, ...]
    parameters: dict[str, Any]
    files: tuple[SourceFile, ...]
    _by_trigger: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)

    def rules_for(self, trigger: triggers.Trigger) -> tuple[CompiledRule, ...]:
        rules = self._by_trigger.get(trigger.name)
        if rules is None:
            rules = tuple(rule for rule in self.rules if rule.applies_to(trigger))
            self._by_trigger[trigger.name] = rules
        return rules

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self.rules]


@dataclass(frozen=True)
class RuleResult:
    id: str
    title: str
    effect: str
    outcome: str
    message: str
    references: tuple[str, ...]
    error: str | None = None
    approval: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "effect": self.effect,
            "outcome": self.outcome,
            "message": self.message,
            "references": list(self.references),
            "error": self.error,
            "approval": self.approval,
        }


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating a set against one document."""

    trigger: str
    outcome: str
    rules: tuple[RuleResult, ...]

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    def by_outcome(self, outcome: str) -> list[RuleResult]:
        return [rule for rule in self.rules if rule.outcome == outcome]

    @property
    def required_approvals(self) -> list[dict[str, Any]]:
        """Every approval requirement that applies (met or not), for the sign-off workflow."""
        return [{"rule": rule.id, **rule.approval} for rule in self.rules if rule.approval is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "outcome": self.outcome,
            "rules": [rule.as_dict() for rule in self.rules],
            "required_approvals": self.required_approvals,
        }


def merge_paths(groups: Iterable[frozenset[FieldPath] | None]) -> frozenset[FieldPath] | None:
    merged: set[FieldPath] = set()
    for group in groups:
        if group is ALL_PATHS:
            return ALL_PATHS
        merged |= group
    return frozenset(merged)


PRESENCE = "?"  # last element of a path only compared with null: its value's content is not read


def _view(document: Mapping[str, Any], paths: frozenset[FieldPath] | None) -> Mapping[str, Any]:
    """The part of ``document`` the paths reach: every field on a path and the whole value at
    its end. A path ending in ``PRESENCE`` (``input.a != null``) keeps only whether the value
    is null: a mapping there becomes ``{}`` unless other paths read into it. An expression
    reads the same values from the view as from the document, and a field missing from one
    is missing from the other."""
    if paths is ALL_PATHS:
        return document
    tree: dict[str, Any] = {}
    for path in paths:
        presence = path[-1] == PRESENCE
        names = path[:-1] if presence else path
        node: Any = tree
        for name in names[:-1]:
            node = node.setdefault(name, {})
            if node is _WHOLE:
                break
        else:
            if presence:
                node.setdefault(names[-1], {})
            else:
                node[names[-1]] = _WHOLE
    return _prune(document, tree)


_WHOLE = object()  # marks "the whole value from here down" in a path tree


def _prune(value: Mapping[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, subtree in tree.items():
        if name not in value:
            continue
        item = value[name]
        out[name] = _prune(item, subtree) if subtree is not _WHOLE and isinstance(item, Mapping) else item
    return out


class Variables:
    """The CEL context for one document, built on first use from only the parts of the
    document the applicable rules read: converting Python values into CEL values costs more
    than evaluating the rules, so the context holds no more than it must."""

    def __init__(self, document: Mapping[str, Any], paths: frozenset[FieldPath] | None):
        self._document = document
        self.paths = paths
        self._context: Any = None

    def get(self) -> Any:
        if self._context is None:
            self._context = cel.Context(
                variables={"input": _view(self._document, self.paths)}, functions=EXTRA_FUNCTIONS
            )
        return self._context


def _first_sentence(text: str) -> str:
    head = text.split(". ", 1)[0].strip()
    return head.rstrip(".")


def _run(program: Any, variables: Variables) -> tuple[bool, str | None]:
    """(value, None) or (False, error). Only a boolean counts as a value."""
    try:
        value = program.execute(variables.get())
    except KeyError as exc:
        return False, f"field {exc.args[0]!r} is missing from the input document"
    except Exception as exc:  # CEL raises TypeError, ValueError, RuntimeError, IndexError, ZeroDivisionError...
        return False, f"{type(exc).__name__}: {_first_sentence(str(exc))}"
    if not isinstance(value, bool):
        return False, f"the expression gave {type(value).__name__} {value!r}, not true or false"
    return value, None


def format_value(value: Any) -> str:
    """How a CEL value appears in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.timedelta):
        days = value.total_seconds() / 86400
        return f"{days:g} days"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _render(rule: CompiledRule, variables: Variables) -> str:
    out = []
    for part in rule.message_parts:
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            out.append(format_value(part.execute(variables.get())))
        except Exception:
            out.append("(unknown)")  # a message never fails an evaluation
    return "".join(out)


def _approvals(document: Mapping[str, Any], roles: list[str]) -> list[str]:
    """Usernames of the distinct eligible approvers in the document holding one of ``roles``."""
    signoff = document.get("signoff") or {}
    people = document.get("people") or {}
    excluded = set(people.get("developer_ids") or [])
    requester = (signoff.get("requested_by") or {}).get("id")
    if requester is not None:
        excluded.add(requester)
    seen: dict[Any, str] = {}
    for approval in signoff.get("approvals") or []:
        user_id = approval.get("user_id")
        if user_id is None or user_id in excluded or user_id in seen:
            continue
        if set(approval.get("roles") or []) & set(roles):
            seen[user_id] = str(approval.get("username") or user_id)
    return sorted(seen.values())


@dataclass
class Pending:
    """A rule's outcome before its message is rendered (messages only for rules that fire)."""

    rule: CompiledRule
    outcome: str
    error: str | None = None


def decide(rule: CompiledRule, variables: Variables) -> Pending:
    error = None
    if rule.precondition is not None:
        applies, error = _run(rule.precondition, variables)
        if error is None and not applies:
            return Pending(rule, "not_applicable")
        if error is not None:
            error = f"precondition: {error}"
    if error is None and rule.condition is not None:
        holds, error = _run(rule.condition, variables)
        if error is None and holds:
            return Pending(rule, "pass")
        if error is not None:
            error = f"condition: {error}"
    # The condition does not hold (or cannot be evaluated, and the rule fails closed).
    return Pending(rule, rule.spec.effect, error)


def rule_result(pending: Pending, document: Mapping[str, Any], messages: Variables | None) -> RuleResult:
    """The rule's result: its message rendered (unless ``messages`` is None: outcomes only)
    and, for ``require_approval``, the approvals in the document counted."""
    rule, spec = pending.rule, pending.rule.spec
    references = tuple(spec.references)
    if pending.outcome in ("pass", "not_applicable"):
        return RuleResult(spec.id, spec.title, spec.effect, pending.outcome, "", references)
    message = _render(rule, messages) if messages is not None else ""
    if pending.error is not None:
        message = f"{message} [the rule could not be evaluated ({pending.error}) and fails closed]"
    outcome, approval = pending.outcome, None
    if spec.effect == "require_approval":
        assert spec.approval is not None
        approved_by = _approvals(document, spec.approval.roles)
        satisfied = len(approved_by) >= spec.approval.count
        approval = {
            "roles": list(spec.approval.roles),
            "count": spec.approval.count,
            "approved_by": approved_by,
            "satisfied": satisfied,
        }
        if satisfied:
            outcome = "pass"
    return RuleResult(spec.id, spec.title, spec.effect, outcome, message, references, pending.error, approval)


def overall(results: Iterable[RuleResult]) -> str:
    outcomes = {result.outcome for result in results}
    return "deny" if "deny" in outcomes else "require_approval" if "require_approval" in outcomes else "allow"


def evaluate(policy_set: CompiledPolicySet, document: Mapping[str, Any], *, messages: bool = True) -> Evaluation:
    """Evaluate every rule of ``policy_set`` that applies to the document's trigger.

    ``messages=False`` leaves messages empty (outcomes only, for impact analysis)."""
    trigger = triggers.parse(document["trigger"]["name"])
    rules = policy_set.rules_for(trigger)
    variables = Variables(document, merge_paths(rule.paths for rule in rules))
    pending = [decide(rule, variables) for rule in rules]
    firing = [p.rule for p in pending if p.outcome not in ("pass", "not_applicable")]
    # Messages read more of the document (names, lists of what is missing); that part is
    # converted only when some rule fires.
    renderer: Variables | None = variables if messages else None
    if messages and firing:
        message_paths = merge_paths([variables.paths, *(rule.message_paths for rule in firing)])
        if message_paths != variables.paths:
            renderer = Variables(document, message_paths)
    results = tuple(rule_result(p, document, renderer) for p in pending)
    return Evaluation(trigger=trigger.name, outcome=overall(results), rules=results)
