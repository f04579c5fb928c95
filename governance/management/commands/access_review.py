"""python manage.py access_review [--format csv|json] [--output FILE] [--user NAME]: the access review."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SystemActor
from governance import access_review


class Command(BaseCommand):
    help = (
        "List every user (active or not) with their roles, desk and flags, every model, model version and "
        "dataset they can reach now and why, and the engagements whose access has ended. CSV: one row per "
        "(user, object, reason); JSON: one document. Records an access.review_generated audit event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "json"], default="csv", help="Output format (default csv).")
        parser.add_argument("--output", type=Path, default=None, help="Write to this file (default: stdout).")
        parser.add_argument("--user", default=None, help="Review only this username.")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt: str = options["format"]
        review = access_review.access_review(username=options["user"])
        if options["user"] is not None and not review.users:
            raise CommandError(f"no user named {options['user']!r}")
        access_review.access_review_record(actor=SystemActor("access_review"), review=review, output=fmt)
        text = io.StringIO()
        if fmt == "json":
            json.dump(access_review.review_document(review), text, indent=2, ensure_ascii=False)
            text.write("\n")
        else:
            access_review.write_csv(review, text)
        path: Path | None = options["output"]
        if path is None:
            self.stdout.write(text.getvalue(), ending="")
        else:
            path.write_text(text.getvalue(), encoding="utf-8", newline="")
            counts = review.counts()
            self.stderr.write(
                f"Access review of {counts['users']} user(s) written to {path} "
                f"({counts['models']} model, {counts['model_versions']} version and {counts['datasets']} dataset "
                f"reaches; {counts['ended_engagements']} ended engagement(s))."
            )
