"""Sync store migration steps that fill data as well as change the schema: the audit
chain's unkeyed prefix (version 4), the rule of each task made before (version 6), and the
run records' liveness columns (version 9).

Apart from ``sync/schema.py``, which passes its tables in (as ``sync/migration_steps.py``
steps and ``sync/unanswered_backfill.py`` take them), so that the table definitions stay in
one short module. Each step looks before it changes anything: safe to repeat on a store
that has the change (``sync/schema.py`` says why).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from sync.migration_steps import add_column

Step = Callable[[sa.Connection], None]


def key_audit_chain(audit: sa.Table, meta: sa.Table, upto_key: str) -> Step:
    """Add ``audit.key_id`` and record the newest row as the end of the unkeyed prefix
    (``meta`` key ``upto_key``; both idempotent)."""

    def apply(conn: sa.Connection) -> None:
        add_column(audit, "key_id")(conn)
        if conn.execute(sa.select(meta.c.key).where(meta.c.key == upto_key)).first():
            return
        upto = conn.execute(sa.select(sa.func.max(audit.c.seq))).scalar() or 0
        conn.execute(meta.insert().values(key=upto_key, value=str(upto)))

    return apply


def task_rules(side_effects: sa.Table, audit: sa.Table) -> Step:
    """Add ``side_effects.rule`` and fill it for the tasks made before, from the audit
    trail's task rows (each names its rule and key); both idempotent."""

    def apply(conn: sa.Connection) -> None:
        add_column(side_effects, "rule")(conn)
        made = conn.execute(
            sa.select(audit.c.new).where(audit.c.event == "task").order_by(audit.c.seq)
        ).scalars()
        rules = {
            str(new["key"]): str(new["rule"])
            for new in made
            if isinstance(new, dict) and new.get("key") and new.get("rule")
        }
        for key, rule in rules.items():
            conn.execute(
                side_effects.update()
                .where(
                    side_effects.c.kind == "task",
                    side_effects.c.key == key,
                    side_effects.c.rule.is_(None),
                )
                .values(rule=rule)
            )

    return apply


def run_liveness(runs: sa.Table) -> Step:
    """Add ``runs.owner`` and ``runs.expires_at``, and the index of records by status
    (each idempotent: every run and webhook pass now looks for the running ones). Records
    of runs still ``running`` keep both NULL: no liveness signal, so the next run judges
    them dead (a process of the older crmtier cannot start on this store any more, and
    one that was mid-run when it was upgraded writes its own final status over the mark)."""

    def apply(conn: sa.Connection) -> None:
        add_column(runs, "owner")(conn)
        add_column(runs, "expires_at")(conn)
        next(i for i in runs.indexes if i.name == "runs_by_status").create(conn, checkfirst=True)

    return apply
