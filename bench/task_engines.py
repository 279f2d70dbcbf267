"""Task engines side by side: jobs/s of a no-op job, deferred to done, one and two workers.

    python bench/task_engines.py                  # 2,000 jobs per run
    python bench/task_engines.py --jobs 500

Procrastinate runs on the local PostgreSQL (``postgresql://postgres@127.0.0.1/test``, a
schema of its own per run); Celery on the local Redis (``redis://127.0.0.1:6379/15``)
and, when reachable, RabbitMQ (``amqp://guest@127.0.0.1//``). Celery is measured only
when it is installed (``pip install celery redis``: it is not a crmtier dependency).
Workers are separate processes, one job at a time each (Procrastinate concurrency 1;
Celery ``--pool solo``), started and idle before the first job is deferred; the time runs
from the first defer to the last job done. The jobs are deferred one by one from this
process, as the receiver defers them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PG = "postgresql://postgres@127.0.0.1/test"
REDIS = "redis://127.0.0.1:6379/15"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"

PROCRASTINATE_APP = """
import os, procrastinate
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PG"]))

@app.task(name="noop")
def noop(n: int) -> None:
    return None
"""

CELERY_APP = """
import os, redis
from celery import Celery
app = Celery("bench", broker=os.environ["BENCH_BROKER"])
app.conf.worker_prefetch_multiplier = 1
app.conf.task_acks_late = True
done = redis.Redis.from_url(os.environ["BENCH_REDIS"])

@app.task(name="noop")
def noop(n):
    done.incr(os.environ["BENCH_KEY"])
"""


def wait_for(predicate, timeout: float = 600.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.01)


def procrastinate_run(jobs: int, workers: int, tmp: Path) -> float:
    import procrastinate
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    conninfo = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(procrastinate.schema.SchemaManager.get_schema())
        (tmp / "pbench_app.py").write_text(PROCRASTINATE_APP)
        env = {**os.environ, "BENCH_PG": conninfo, "PYTHONPATH": str(tmp)}
        os.environ["BENCH_PG"] = conninfo
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "procrastinate",
                    "--app",
                    "pbench_app.app",
                    "worker",
                    "--concurrency",
                    "1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            wait_for(
                lambda: (
                    conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0]
                    == workers
                )
            )
            sys.path.insert(0, str(tmp))
            import pbench_app

            importlib.reload(pbench_app)  # this run's schema
            app = pbench_app.app
            with app.open():
                start = time.monotonic()
                for n in range(jobs):
                    app.configure_task(name="noop").defer(n=n)
                wait_for(
                    lambda: (
                        conn.execute(
                            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
                        ).fetchone()[0]
                        >= jobs
                    )
                )
                seconds = time.monotonic() - start
        for p in procs:
            p.terminate()
            p.wait()
        return seconds
    finally:
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def celery_run(jobs: int, workers: int, tmp: Path, broker: str) -> float:
    import redis

    key = f"bench:{uuid.uuid4().hex[:8]}"
    (tmp / "cbench_app.py").write_text(CELERY_APP)
    env = {
        **os.environ,
        "BENCH_BROKER": broker,
        "BENCH_REDIS": REDIS,
        "BENCH_KEY": key,
        "PYTHONPATH": str(tmp),
    }
    os.environ.update({k: env[k] for k in ("BENCH_BROKER", "BENCH_REDIS", "BENCH_KEY")})
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "cbench_app",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "-n",
                f"w{i}@%h",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    sys.path.insert(0, str(tmp))
    import cbench_app

    importlib.reload(cbench_app)  # this run's broker and counter

    wait_for(lambda: len(cbench_app.app.control.ping(timeout=0.5) or []) == workers, 120)
    counter = redis.Redis.from_url(REDIS)
    start = time.monotonic()
    for n in range(jobs):
        cbench_app.noop.delay(n)
    wait_for(lambda: int(counter.get(key) or 0) >= jobs)
    seconds = time.monotonic() - start
    for p in procs:
        p.terminate()
        p.wait()
    counter.delete(key)
    return seconds


def amqp_up() -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            s = procrastinate_run(args.jobs, workers, Path(tmp))
            rows.append(
                (
                    f"procrastinate (PostgreSQL), {workers} worker(s)",
                    f"{args.jobs / s:8.0f} jobs/s  ({s:.2f} s)",
                )
            )
        if importlib.util.find_spec("celery") is None:
            rows.append(("celery", "not installed here (pip install celery redis): not measured"))
        else:
            brokers = [("Redis", REDIS)] + ([("RabbitMQ", AMQP)] if amqp_up() else [])
            for label, broker in brokers:
                for workers in (1, 2):
                    s = celery_run(args.jobs, workers, Path(tmp), broker)
                    rows.append(
                        (
                            f"celery ({label}), {workers} worker(s)",
                            f"{args.jobs / s:8.0f} jobs/s  ({s:.2f} s)",
                        )
                    )
    print(f"{args.jobs} no-op jobs, deferred one by one, each worker one job at a time")
    for label, figure in rows:
        print(f"{label:40} {figure}")


if __name__ == "__main__":
    main()
