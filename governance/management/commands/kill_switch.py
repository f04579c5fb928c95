"""python manage.py kill_switch MODEL --reason "..." [--user NAME] [--lift] [--rollback]."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SystemActor
from governance import selectors, services
from governance.errors import DomainError
from governance.models import Deployment
from models_registry.models import Model

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


class Command(BaseCommand):
    help = (
        "Pull a model's kill switch (MODEL: its id or name): its live deployment and version are suspended and "
        "the trading permission answers not allowed at once. Without --user it acts as a system actor labelled "
        "with the command and the operator's OS user, so it works from a terminal in an emergency. --lift lifts "
        "the switch instead (needs --user, a compliance officer; the model stays suspended until a "
        "reinstatement sign-off); --rollback returns the model to its deployment's rollback target. Every action "
        "is an audit event with the reason. Prints the deployment's state and the trading permission afterwards. "
        "Exit status: 0 done, 1 refused (the reason is printed), 2 bad input or unknown model or user."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="Model id or name.")
        parser.add_argument("--reason", default=None, help="Why (required; recorded in the audit log).")
        parser.add_argument("--user", default=None, help="Act as this user (permissions and scope apply).")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--lift", action="store_true", help="Lift the kill switch (compliance officer).")
        action.add_argument("--rollback", action="store_true", help="Roll back to the rollback target.")
        parser.add_argument(
            "--drill",
            action="store_true",
            help="Engaging to test the kill switch (RTS 6 Art. 12): the model stops all the same; recorded as a test.",
        )

    def _fail(self, message: str) -> CommandError:
        return CommandError(message, returncode=EXIT_BAD_INPUT)

    def _model(self, ref: str) -> Model:
        model = Model.objects.filter(pk=int(ref)).first() if ref.isascii() and ref.isdigit() and len(ref) < 19 else None
        if model is None:
            model = Model.objects.filter(name=ref).first()
        if model is None:
            raise self._fail(f"no model {ref!r} (give its id or its name)")
        return model

    def handle(self, *args: Any, **options: Any) -> None:
        reason = (options["reason"] or "").strip()
        if not reason:
            raise self._fail('--reason is required: say why, e.g. --reason "limit breach on the desk"')
        if options["lift"] and not options["user"]:
            raise self._fail("--lift needs --user: only a compliance officer lifts a kill switch")
        model = self._model(options["model"])
        actor: Any = SystemActor(f"manage.py kill_switch by {_os_user()}")
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if actor is None:
                raise self._fail(f"no active user {options['user']!r}")
        if options["drill"] and (options["lift"] or options["rollback"]):
            raise self._fail("--drill is for engaging the kill switch, not with --lift or --rollback")
        extra: dict[str, Any] = {}
        if options["lift"]:
            service, done = services.kill_switch_lift, "kill switch lifted"
        elif options["rollback"]:
            service, done = services.deployment_rollback, "rolled back"
        else:
            service, done = (
                services.kill_switch_engage,
                "kill switch engaged (drill)" if options["drill"] else ("kill switch engaged"),
            )
            extra = {"drill": options["drill"]}
        try:
            deployment = service(actor=actor, model=model, reason=reason, **extra)
        except ValidationError as exc:
            raise self._fail("; ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(f"refused, nothing changed: {exc.message}", returncode=EXIT_REFUSED) from exc
        self.stdout.write(f"{model.name}: {done}.")
        selectors.forget_trading_permission(model.pk)  # as the API does: the state after the action
        self._report(deployment, selectors.trading_permission(model_id=model.pk))

    def _report(self, deployment: Deployment, permission: dict[str, Any]) -> None:
        switch = "engaged" if deployment.kill_switch_engaged else "not engaged"
        self.stdout.write(
            f"deployment {deployment.pk}: version {deployment.version.version}, phase {deployment.phase}, "
            f"{deployment.get_status_display().lower()}, kill switch {switch}"
        )
        self.stdout.write(
            f"trading permission: {'allowed' if permission['allowed'] else 'NOT allowed'} ({permission['reason']})"
        )
        if permission["version"] is not None:
            self.stdout.write(
                f"  version {permission['version']}, phase {permission['phase']}, capital limit "
                f"{permission['capital_limit']} {permission['currency']}, instruments "
                f"{', '.join(permission['instruments']) or 'none'}"
            )
