"""The last phase of ``bench/webhooks.py``: seconds from a customer edit in a CRM sandbox
to its new tier in that CRM (issue 7: within 2 s).

A module of its own because it measures a different thing from the rest of that script:
not the receiver's ack under load (a separate, CPU-pinned server process fed by an open-loop
generator) but the whole real-time path in one process: the sandbox's real notification,
the receiver, the worker, the tiering and the write-back to the CRM.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from connectors.sandbox.base import open_sandbox
from crmtier.commands.serve import open_parts
from crmtier.config import load_config
from webhooks.runtime import Realtime


def change_to_tier_latency(crm: str, changes: int = 5) -> list[float]:
    """Seconds from a customer edit in the CRM sandbox to its new tier in the CRM, through
    the sandbox's real notification, the receiver, the worker and the write-back."""
    with tempfile.TemporaryDirectory(prefix=f"crmtier-bench-{crm}-") as tmp:
        sandbox = open_sandbox(crm, data_dir=Path(tmp) / "crm")
        sandbox.seed(40)
        sandbox.start()
        text, env = sandbox.crmtier_config()
        os.environ.update(env)
        (Path(tmp) / "crmtier.toml").write_text(text)
        parts = open_parts(load_config(Path(tmp) / "crmtier.toml"))
        parts.engine.run()
        realtime = Realtime(parts.settings, parts.store, parts.connector, parts.engine)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(realtime.app, log_level="critical"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        realtime.start_worker()
        sandbox.set_notification_target(
            f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/{crm}",
            ca_bundle=sandbox.info().ca_bundle,
        )
        ids = [r.profile.id for page in parts.connector.read_changed(None) for r in page.records]
        targets = [c for c in ids if sandbox.written(c).get("value_tier") in ("mass", "affluent")]
        rich = {"assets.deposits": 9_000_000, "assets.investments": 0, "assets.insurance": 0}
        latencies = []
        try:
            for customer_id in targets[:changes]:
                t0 = time.perf_counter()
                sandbox.edit_customer(customer_id, {**rich, "aum_avg_3m": None})
                while sandbox.written(customer_id).get("value_tier") != "private":
                    if time.perf_counter() - t0 > 60:
                        raise SystemExit(f"{crm}: no new tier after 60 s")
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - t0)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            realtime.stop_worker()
            parts.close()
            sandbox.stop()
    return latencies
