"""The sandbox kit every CRM emulator stands on: store order, server faults and counters."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from connectors.http import RetryPolicy, make_session
from connectors.sandbox.generator import generate, to_crm_fields
from connectors.sandbox.server import Response, Router, SandboxServer
from connectors.sandbox.store import RecordStore
from connectors.sandbox.tls import make_tls

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_store_scans_in_modstamp_id_order_with_inclusive_since_and_strict_after() -> None:
    store = RecordStore()
    rows = [
        ("b", T0, {}),
        ("a", T0, {}),
        ("c", T0 + timedelta(seconds=1), {}),
        ("d", T0 - timedelta(seconds=1), {}),
    ]
    store.insert_many("Account", rows)
    assert [r[0] for r in store.scan("Account")] == ["d", "a", "b", "c"]
    assert [r[0] for r in store.scan("Account", since=T0)] == ["a", "b", "c"]
    assert [r[0] for r in store.scan("Account", after=(T0, "a"))] == ["b", "c"]
    assert [r[0] for r in store.scan("Account", limit=2, offset=1)] == ["a", "b"]


def test_store_update_merges_and_bumps_a_strictly_increasing_modstamp() -> None:
    store = RecordStore()
    store.insert_many("Account", [("a", T0, {"x": 1, "y": 2})])
    first = store.update("Account", "a", {"x": 3})
    second = store.update("Account", "a", {"y": 4})
    assert second > first > T0
    assert store.get("Account", "a") == (second, {"x": 3, "y": 4})
    with pytest.raises(KeyError):
        store.update("Account", "missing", {})


def test_store_transaction_commits_together_and_rolls_back_whole() -> None:
    store = RecordStore()
    store.insert_many("Account", [("a", T0, {"x": 1})])
    with store.transaction():
        stamp, merged = store.merge("Account", "a", {"y": 2})
        with store.transaction():  # a nested one joins the outer
            store.insert_many("Account", [("b", T0, {})])
    assert merged == {"x": 1, "y": 2}
    assert store.get("Account", "a") == (stamp, merged)
    assert store.exists("Account", "b") and not store.exists("Account", "c")
    with pytest.raises(KeyError), store.transaction():
        store.update("Account", "a", {"x": 9})
        store.update("Account", "missing", {})
    assert store.get("Account", "a") == (stamp, merged)  # the first update rolled back too


def test_generator_is_deterministic_and_covers_every_segment() -> None:
    first = [(c.id, c.profile) for c in generate(500, seed=3)]
    assert first == [(c.id, c.profile) for c in generate(500, seed=3)]
    assert first != [(c.id, c.profile) for c in generate(500, seed=4)]
    customers = list(generate(2000, seed=7))
    kinds = {c.profile["kind"] for c in customers}
    assert kinds == {"individual", "corporate"}
    aums = [sum((c.profile["assets"] or {}).values()) for c in customers if c.profile["assets"]]
    assert max(aums) >= 6_000_000 and min(aums) < 50_000
    assert 0.005 < sum(c.dirty for c in customers) / len(customers) < 0.04


def test_to_crm_fields_flattens_through_a_mapping() -> None:
    customer = next(generate(1))
    fields = to_crm_fields(
        customer, {"assets.deposits": "Dep__c", "aml.pep": "PEP__c", "nope.x": "X"}
    )
    assert fields["Dep__c"] == customer.profile["assets"]["deposits"]
    assert fields["PEP__c"] == customer.profile["aml"]["pep"]
    assert fields["X"] is None


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    tls = make_tls(tmp_path)
    router = Router()
    router.add(
        "GET", r"/echo/(?P<word>\w+)", lambda r: Response.json({"word": r.params["word"]}), "echo"
    )
    with SandboxServer(router, ssl_context=tls.server_context) as srv:
        srv.session = make_session(RetryPolicy(), str(tls.ca_bundle))  # type: ignore[attr-defined]
        yield srv


def test_server_counts_calls_and_applies_faults_in_order(server: SandboxServer) -> None:
    get = server.session.get  # type: ignore[attr-defined]
    server.inject("echo", response=Response.json({"e": 1}, 503), times=2, after=1)
    statuses = [get(f"{server.base_url}/echo/w{i}").status_code for i in range(4)]
    assert statuses == [200, 503, 503, 200]
    server.inject("echo", drop=True)
    with pytest.raises(requests.ConnectionError):
        get(f"{server.base_url}/echo/x")
    assert get(f"{server.base_url}/echo/y").json() == {"word": "y"}
    assert server.calls.count("echo") == 6
    assert server.calls.max_in_window("echo", 60) == 6


def test_control_api_needs_its_own_token(server: SandboxServer) -> None:
    get = server.session.get  # type: ignore[attr-defined]
    post = server.session.post  # type: ignore[attr-defined]
    assert get(f"{server.base_url}/__sandbox__/calls").status_code == 401
    auth = {"Authorization": f"Bearer {server.control_token}"}
    get(f"{server.base_url}/echo/a")
    assert get(f"{server.base_url}/__sandbox__/calls", headers=auth).json() == {"echo": 1}
    assert (
        post(
            f"{server.base_url}/__sandbox__/faults",
            json={"kind": "echo", "status": 429},
            headers=auth,
        ).status_code
        == 201
    )
    assert get(f"{server.base_url}/echo/b").status_code == 429
    post(f"{server.base_url}/__sandbox__/reset", headers=auth)
    assert get(f"{server.base_url}/__sandbox__/calls", headers=auth).json() == {}


def test_server_sends_with_nagle_off(server: SandboxServer) -> None:
    """A response's headers and body are two writes: with Nagle's algorithm on, the body
    waits for the client's delayed ACK of the headers (about 40 ms on Linux) on every
    call of a keep-alive connection."""
    handler = server._httpd.RequestHandlerClass
    seen: list[int] = []

    class Probe(handler):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server._httpd.RequestHandlerClass = Probe
    get = server.session.get  # type: ignore[attr-defined]
    assert get(f"{server.base_url}/echo/a").json() == {"word": "a"}
    assert seen and all(seen), seen
