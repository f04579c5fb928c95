"""The report types: what each needs as its subject, how its data is built and rendered.

A later type is one builder module (``governance/reports/builders/``) returning a plain,
JSON-serialisable dict, one template under ``templates/reports/`` that only lays that dict
out, and one ``register(...)`` call here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from governance.reports.context import BuildContext

# none: the whole firm (an optional period); model / version: one of them (optional period);
# period: a period is required; model-or-period: a model, a period, or both.
SubjectKind = Literal["none", "model", "version", "period", "model-or-period"]
SUBJECT_KINDS: tuple[str, ...] = ("none", "model", "version", "period", "model-or-period")


@dataclass(frozen=True)
class ReportType:
    key: str
    title: str
    subject: SubjectKind
    builder: Callable[[BuildContext], dict[str, Any]]
    template: str
    references: tuple[str, ...]
    # Requesting it needs the whole log in sight (audit.view_event), not only the subject.
    requires_full_log: bool = False
    # Requested without a period: the last N UTC days ending today, inclusive (None: no default).
    default_period_days: int | None = None


_REGISTRY: dict[str, ReportType] = {}


def register(report_type: ReportType) -> ReportType:
    if report_type.subject not in SUBJECT_KINDS:
        raise ValueError(f"report type {report_type.key}: unknown subject kind {report_type.subject!r}")
    _REGISTRY[report_type.key] = report_type
    return report_type


def report_types() -> dict[str, ReportType]:
    _load()
    return dict(_REGISTRY)


def get(key: str) -> ReportType | None:
    _load()
    return _REGISTRY.get(key)


def _load() -> None:
    # Imported on first use: the builders import models, which are not ready at import time.
    if _REGISTRY:
        return
    from governance.reports.builders import audit_trail

    register(
        ReportType(
            key="audit-trail",
            title="Audit trail extract with integrity attestation",
            subject="model-or-period",
            builder=audit_trail.build,
            template="reports/audit_trail.html",
            references=(
                "SEC Rule 17a-4(f) (as amended in 2022): the complete time-stamped audit-trail alternative to WORM "
                "storage, with automatic completeness checks and export in human-readable and electronic form",
                "Commission Delegated Regulation (EU) 2017/565, Art. 72: records retained so that each stage of "
                "processing can be reconstructed and corrections are visible with the content before them",
                "Commission Delegated Regulation (EU) 2017/589 (RTS 6), Art. 28: records kept five years",
            ),
            requires_full_log=True,
        )
    )
    _load_inventory()
    _load_annex_iv()
    _load_r4()
    _load_validation()


def _load_inventory() -> None:
    from governance.reports.builders import inventory

    register(
        ReportType(
            key="inventory",
            title="Model inventory extract",
            subject="none",
            builder=inventory.build,
            template="reports/inventory.html",
            references=(
                "SR 11-7 / OCC 2011-12, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13 (governance and "
                "controls): a comprehensive inventory of models in use, under development and recently retired, "
                "with their purpose, use and restrictions, inputs, outputs, owners, validators, validation dates "
                "and exceptions",
                "PRA SS1/23 Principle 1: model definition, a complete model inventory, and risk tiering by materiality "
                "and complexity",
                "PRA SS1/23 Principle 5: restrictions on use, post-model adjustments, exceptions and escalation",
            ),
        )
    )


def _load_annex_iv() -> None:
    from governance.reports.builders import annex_iv

    register(
        ReportType(
            key="annex-iv",
            title="Technical documentation (EU AI Act Annex IV shape, voluntary)",
            subject="version",
            builder=annex_iv.build,
            template="reports/annex_iv.html",
            references=(
                "Regulation (EU) 2024/1689 (AI Act), Art. 11 and Annex IV: technical documentation in nine points; "
                "followed voluntarily (a trading model is not a high-risk system under Annex III)",
                "AI Act Arts 10, 12, 14 (voluntary): data governance, automatic logs, human oversight",
                "SR 11-7 / OCC 2011-12, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13: model "
                "documentation, validation and ongoing monitoring",
                "PRA SS1/23 Principles 3 and 4: model development, implementation and use; independent validation "
                "and performance monitoring",
                "Commission Delegated Regulation (EU) 2017/589 (MiFID II RTS 6), Arts 5, 12, 16: testing and "
                "approval, kill functionality, real-time monitoring",
            ),
        )
    )


def _load_r4() -> None:
    from governance.reports.builders import deployment_record, self_assessment

    register(
        ReportType(
            key="deployment-record",
            title="Deployment and change approval record",
            subject="version",
            builder=deployment_record.build,
            template="reports/deployment_record.html",
            references=(
                "Commission Delegated Regulation (EU) 2017/589 (MiFID II RTS 6), Art. 5: a designated person "
                "approves each deployment or substantial update of a trading algorithm after testing",
                "RTS 6 Art. 8: limits set before deployment (instruments, order value and number, positions)",
                "RTS 6 Art. 12: kill functionality, used as an emergency measure",
                "SR 11-7 / OCC 2011-12, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13: "
                "ongoing monitoring and outcomes analysis after implementation",
            ),
        )
    )
    register(
        ReportType(
            key="self-assessment",
            title="Annual self-assessment of algorithmic trading models",
            subject="period",
            builder=self_assessment.build,
            template="reports/self_assessment.html",
            references=(
                "Commission Delegated Regulation (EU) 2017/589 (MiFID II RTS 6), Art. 9 and Annex I: annual "
                "self-assessment and validation; the risk management function drafts it, compliance is informed, "
                "internal audit reviews it, senior management approves it; deficiencies are remedied",
                "RTS 6 Arts 8, 10, 12, 15-17: limits, stress testing, kill functionality, pre- and post-trade "
                "controls and real-time monitoring",
                "PRA SS1/23 Principle 2: governance, accountable senior management, internal audit",
                "SR 11-7 / OCC 2011-12, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13: governance and "
                "controls, at least an annual review of models in use",
            ),
            # It reads the whole firm's log (refusals, safety actions, policy changes), not one model's.
            requires_full_log=True,
            # RTS 6 Art. 9 is annual: without a period, the last 12 months ending today.
            default_period_days=self_assessment.DEFAULT_PERIOD_DAYS,
        )
    )


def _load_validation() -> None:
    from governance.reports.builders import validation

    register(
        ReportType(
            key="validation",
            title="Model validation report",
            subject="version",
            builder=validation.build,
            template="reports/validation.html",
            references=(
                "SR 11-7 / OCC 2011-12 §V, replaced in April 2026 by SR 26-2 / OCC Bulletin 2026-13 §V: "
                "validation (conceptual soundness, ongoing monitoring, outcomes analysis including backtesting) by "
                "staff independent of development, with effective challenge",
                "PRA SS1/23 Principle 4: independent model validation, performance monitoring and reporting of "
                "findings; Principle 5: model risk mitigants (post-model adjustments, restrictions on use)",
                "Commission Delegated Regulation (EU) 2017/589 (MiFID II RTS 6), Art. 5: testing of algorithms "
                "before deployment, with approval by a designated person",
            ),
        )
    )
