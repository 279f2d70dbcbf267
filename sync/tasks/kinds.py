"""The job kinds a worker runs: one module per kind, each with a ``register(app, site)``
that puts its task(s) on the Procrastinate app for this process's worksite.

A new kind (a page of a re-tier, a partition of a backfill) is a module beside
``webhook_batch.py`` and one line here; every ``crmtier worker`` then runs it, and
``crmtier serve`` can defer it by its task name.
"""

from __future__ import annotations

from sync.tasks import webhook_batch
from sync.tasks.engine import Register

KINDS: tuple[Register, ...] = (webhook_batch.register,)
