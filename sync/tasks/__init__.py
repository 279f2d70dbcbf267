"""Units of work spread over worker processes by a distributed task engine (Procrastinate).

Only with a PostgreSQL state store and ``[workers] engine = "procrastinate"``: the job queue
lives in the store's own database, so there is no broker to run. The embedded default
(SQLite, one process) never imports this package's engine.

* ``engine.py``: the queue's schema (applied with the store's migrations, under their
  advisory lock), the ``Worksite`` a job runs against, and the Procrastinate ``App`` with
  every job kind registered, plus the periodic retry of stalled jobs;
* ``kinds.py``: the registry of job kinds, one module per kind (``webhook_batch.py``);
* ``stats.py``: what ``/metrics`` shows of the queue and of each worker's throughput;
* ``liveness.py``: how many workers are alive (a spread full sync refuses to start without
  one, and ``crmtier doctor`` shows the count).
"""
