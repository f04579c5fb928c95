"""What a builder is given: the report row, the checkpoint it is bound to, and a place for attachments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.models import Checkpoint
    from governance.models import Report


@dataclass(frozen=True)
class FileAttachment:
    """A file embedded in the PDF besides ``report-data.json`` (e.g. the audit export bundle)."""

    name: str
    content: bytes
    description: str
    relationship: str = "Supplement"


@dataclass
class BuildContext:
    report: Report
    checkpoint: Checkpoint
    generated_at: datetime
    # progress(percent, step): the job's progress, for builders with long steps.
    progress: Callable[[int, str], None] = lambda percent, step: None
    attachments: list[FileAttachment] = field(default_factory=list)

    def attach(self, attachment: FileAttachment) -> None:
        self.attachments.append(attachment)
