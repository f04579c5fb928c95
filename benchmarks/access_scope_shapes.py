"""SQL shapes of the model scope compared: the selector's OR of subqueries against a UNION of ids.

Evidence for docs/benchmarks.md ("Permission-filtered model list"), not a target of its own:

    .venv/bin/python benchmarks/access_scope_shapes.py [--runs 20] [--database-url ...]

For each scoped user of the ``access_fixture`` database, the count and page (50, by name)
queries that ``GET /api/models/`` sends are run under EXPLAIN ANALYZE (TIMING OFF)
``--runs`` times, once as ``models_registry.selectors.model_list`` builds them (``owner =
me OR pk IN (grants) OR desk IN (desk grants) OR pk IN (authored) OR pk IN (engagements)``)
and once with the same rules written as ``pk IN (owned UNION ALL granted UNION ALL ...)``,
built here (the product is not changed). Both must return the same models. Prints best
and median execution times in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import access_fixture

USERS = (
    *("owner01", "owner07", "dev01", "dev05", "validator1", "validator6", "regulator1", "regulator3"),
    *("deskview1", "deskview4", "probe10", "probe100", "probe1000"),
)


def union_list(user: Any) -> Any:
    from django.contrib.contenttypes.models import ContentType

    from governance.models import DeskGrant
    from models_registry import selectors
    from models_registry.models import Model, ModelGrant, ModelVersion

    ctype = ContentType.objects.get_for_model(Model)
    owned = Model.objects.filter(owner=user).values("pk")
    granted = ModelGrant.objects.filter(
        user=user, permission__content_type=ctype, permission__codename__in=selectors.MODEL_VIEW_GRANTS
    ).values("content_object_id")
    desks = DeskGrant.objects.filter(user=user, permission__codename="view_desk_models").values("content_object_id")
    desk = Model.objects.filter(desk__in=desks).values("pk")
    authored = ModelVersion.objects.filter(created_by=user).values("model_id")
    engaged = selectors._active_engagement_models(user)
    # Each part without its model's default ordering (a UNION keeps it, an IN subquery does not).
    parts = [qs.order_by() for qs in (owned, granted, desk, authored, engaged)]
    ids = parts[0].union(*parts[1:], all=True)
    return Model.objects.select_related("desk", "owner").with_lifecycle_status().filter(pk__in=ids)


def list_sql(queryset: Any) -> list[str]:
    """The count and the first page's SQL, as the paginated list sends them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        queryset.count()
        list(queryset[:50])
    return [q["sql"] for q in captured.captured_queries]


def execution_ms(sql: str, runs: int) -> tuple[float, float]:
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql)
            doc = cursor.fetchone()[0]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            times.append(doc[0]["Execution Time"])
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    access_fixture.add_arguments(parser)
    parser.add_argument("--runs", type=int, default=20, help="EXPLAIN ANALYZE repetitions (default %(default)s)")
    args = parser.parse_args()
    access_fixture.prepare(database_url=args.database_url, rebuild=args.rebuild)

    from django.contrib.auth import get_user_model

    from models_registry import selectors

    print(
        f"{'user':<11} {'visible':>7}  {'OR: count':>13}  {'OR: page':>13}  {'UNION: count':>13}  {'UNION: page':>13}"
    )
    print(f"{'':<11} {'':>7}  {'best / median ms':>13}")
    for name in USERS:
        user = get_user_model().objects.get(username=name)
        current, union = selectors.model_list(user=user), union_list(user)
        ids = set(current.values_list("pk", flat=True))
        if ids != set(union.values_list("pk", flat=True)):
            raise SystemExit(f"the two shapes disagree for {name}")
        cells = []
        for queryset in (current, union):
            for sql in list_sql(queryset):
                best, median = execution_ms(sql, args.runs)
                cells.append(f"{best:5.2f} / {median:5.2f}")
        print(f"{name:<11} {len(ids):>7}  " + "  ".join(f"{c:>13}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
