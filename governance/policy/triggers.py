"""Triggers: the moments at which rules are evaluated.

A trigger is one of

* a lifecycle transition ``<from>-><to>`` with statuses of ``LifecycleStatus``, e.g.
  ``validated->approved``. Any pair of statuses is accepted, not only one step of the state
  machine, because a sign-off request may cover several steps;
* a deployment promotion ``deployment:<phase>``, e.g. ``deployment:phase_1``;
* ``dataset_use``: a dataset is attached to a version;
* ``periodic``: a scheduled check (revalidation due, etc.);
* ``assessment``: a risk assessment finished; the outcome rates it (deny: red, warn or
  require_approval: amber, otherwise green; ``governance.policy.rating``);
* ``monitoring``: the anomaly rules on a deployment's live data (``input.monitoring``); a rule
  that fires raises an alert and carries out its ``actions`` (``governance.anomaly_services``).

Rules name patterns in ``applies_to``: the same forms, where a status or phase may be
``*`` (any). Evaluations name a concrete trigger, without ``*``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from models_registry.choices import LifecycleStatus

TRANSITION = "transition"
DEPLOYMENT = "deployment"
DATASET_USE = "dataset_use"
PERIODIC = "periodic"
ASSESSMENT = "assessment"
MONITORING = "monitoring"
KINDS = (TRANSITION, DEPLOYMENT, DATASET_USE, PERIODIC, ASSESSMENT, MONITORING)

_PHASE = re.compile(r"^[a-z0-9][a-z0-9_]{0,49}$")
WILDCARD = "*"
# Django's ``choices.values`` builds a new list on every access; triggers are parsed per evaluation.
_STATUSES = frozenset(LifecycleStatus.values)


class TriggerError(ValueError):
    """A trigger or pattern that is not one of the forms above (the message says why)."""


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger or pattern. ``source``/``target`` for transitions, ``phase`` for deployments."""

    kind: str
    source: str | None = None
    target: str | None = None
    phase: str | None = None

    @property
    def name(self) -> str:
        if self.kind == TRANSITION:
            return f"{self.source}->{self.target}"
        if self.kind == DEPLOYMENT:
            return f"deployment:{self.phase}"
        return self.kind

    @property
    def is_pattern(self) -> bool:
        return WILDCARD in (self.source, self.target, self.phase)

    def matches(self, trigger: Trigger) -> bool:
        """Whether this pattern covers the concrete ``trigger``."""
        if self.kind != trigger.kind:
            return False
        pairs = ((self.source, trigger.source), (self.target, trigger.target), (self.phase, trigger.phase))
        return all(mine in (WILDCARD, theirs) for mine, theirs in pairs)

    def as_document(self) -> dict[str, Any]:
        """The trigger as it appears in the input document (``input.trigger``)."""
        return {"name": self.name, "kind": self.kind, "from": self.source, "to": self.target, "phase": self.phase}


def _status(value: str, *, allow_wildcard: bool, text: str) -> str:
    if allow_wildcard and value == WILDCARD:
        return value
    if value not in _STATUSES:
        raise TriggerError(
            f"{text!r}: unknown lifecycle status {value!r}; statuses are {', '.join(LifecycleStatus.values)}"
        )
    return value


@functools.lru_cache(maxsize=512)
def parse(text: str, *, allow_wildcard: bool = False) -> Trigger:
    """Parse a trigger (``allow_wildcard``: a pattern for ``applies_to``); ``TriggerError`` if malformed.

    Cached: a trigger is parsed once per evaluation, and triggers are few."""
    if not isinstance(text, str) or not text.strip():
        raise TriggerError("a trigger must be a non-empty string")
    text = text.strip()
    if text in (DATASET_USE, PERIODIC, ASSESSMENT, MONITORING):
        return Trigger(kind=text)
    if "->" in text:
        source, _, target = (part.strip() for part in text.partition("->"))
        return Trigger(
            kind=TRANSITION,
            source=_status(source, allow_wildcard=allow_wildcard, text=text),
            target=_status(target, allow_wildcard=allow_wildcard, text=text),
        )
    if text.startswith("deployment:"):
        phase = text.removeprefix("deployment:").strip()
        if not (phase == WILDCARD and allow_wildcard) and not _PHASE.match(phase):
            raise TriggerError(f"{text!r}: a deployment phase is lowercase letters, digits and _ (e.g. phase_1)")
        return Trigger(kind=DEPLOYMENT, phase=phase)
    raise TriggerError(
        f"{text!r} is not a trigger: use '<status>-><status>' (e.g. validated->approved), "
        "'deployment:<phase>', 'dataset_use', 'periodic', 'assessment' or 'monitoring'"
    )
