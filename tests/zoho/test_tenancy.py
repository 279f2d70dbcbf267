"""zcrmsdk keeps its configuration in process-global state. Two tenants (two orgs, each
with its own Accounts and API host, credentials and CA) used from threads at the same time
must never send one org's token, data or write to the other."""

from __future__ import annotations

import threading

import pytest
from zcrmsdk.src.com.zoho.crm.api.initializer import Initializer
from zcrmsdk.src.com.zoho.crm.api.util.datatype_converter import DataTypeConverter
from zcrmsdk.src.com.zoho.crm.api.util.module_fields_handler import ModuleFieldsHandler

from connectors.contract import FieldUpdate, WritePlan

ROUNDS = 4
#: zcrmsdk rewrites of the field-details file beside other calls (enough to fail without
#: the tenant lock on every run tried)
REWRITES = 30


def test_two_tenants_from_threads_never_mix_credentials(sandbox_factory, zconnect):
    orgs = {
        "north": sandbox_factory("zoho", customers=120, seed=1),
        "south": sandbox_factory("zoho", customers=90, seed=2),
    }
    tiers = {"north": "private", "south": "mass"}
    connectors = {name: zconnect(sb) for name, sb in orgs.items()}
    seen: dict[str, list[dict[str, float | None]]] = {name: [] for name in orgs}
    errors: list[BaseException] = []
    start = threading.Barrier(len(orgs))

    def work(name: str) -> None:
        try:
            connector = connectors[name]
            start.wait()
            for _ in range(ROUNDS):
                records = [r for p in connector.read_changed(None) for r in p.records]
                seen[name].append({r.profile.id: _deposits(r) for r in records})
                ids = [r.profile.id for r in records[:30]]
                plan = WritePlan(
                    field_updates=tuple(FieldUpdate(i, {"value_tier": tiers[name]}) for i in ids)
                )
                assert all(r.ok for r in connector.apply(plan))
        except BaseException as exc:  # surfaced below with the thread's name
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,), name=name) for name in orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for name, sandbox in orgs.items():
        # each org handed out exactly one access token: no call ever carried the other's
        assert sandbox.accounts.refreshes == 1
        truth = {cid: sandbox.record(cid).get("Deposits") for cid in sandbox.customer_ids()}
        assert all(snapshot == truth for snapshot in seen[name])
        written = {sandbox.written(cid).get("value_tier") for cid in sandbox.customer_ids()[:30]}
        assert written == {tiers[name]}
    assert Initializer.initializer is None  # nothing left bound between calls


def test_sdk_is_unbound_outside_a_call(zoho, zconnect):
    connector = zconnect(zoho)
    assert sum(len(p.records) for p in connector.read_changed(None)) == 250
    assert Initializer.get_initializer() is None


def _deposits(record) -> float | None:
    assets = record.profile.assets
    return None if assets is None else assets.deposits


def test_zcrmsdk_modules_keep_their_own_requests():
    """The seam is zcrmsdk's Token hook, not a module swap: its HTTP modules are untouched."""
    import requests
    from zcrmsdk.src.com.zoho.api.authenticator import oauth_token
    from zcrmsdk.src.com.zoho.crm.api.util import api_http_connector

    import connectors.zoho.client  # noqa: F401 - importing it must not patch anything

    assert api_http_connector.requests is requests
    assert oauth_token.requests is requests


def test_one_tenant_waiting_on_zoho_does_not_hold_up_another(sandbox_factory, zconnect):
    """Calls are serialised per tenant: while one org's read is held by its server, another
    org's sync runs to the end. (With one process-wide lock the second read would wait for
    the first, which is only released after the second finished: the hold times out.)"""
    slow, quick = sandbox_factory("zoho", customers=20, seed=1), sandbox_factory("zoho", seed=2)
    slow_connector, quick_connector = zconnect(slow), zconnect(quick)
    held, release = threading.Event(), threading.Event()
    timed_out: list[bool] = []

    def hold(_request) -> bool:
        held.set()
        timed_out.append(not release.wait(timeout=20))
        return False

    slow.server.inject("read", match=hold, times=None)
    reader = threading.Thread(target=lambda: list(slow_connector.read_changed(None)))
    reader.start()
    assert held.wait(timeout=20)
    quick_count = sum(len(p.records) for p in quick_connector.read_changed(None))
    release.set()
    reader.join(timeout=60)
    assert quick_count == len(quick.customer_ids())
    assert timed_out and not any(timed_out)


def test_clients_of_one_tenant_share_its_lock_and_other_tenants_do_not(zoho, zconnect):
    from connectors.zoho.client_binding import tenant_lock

    first, second = zconnect(zoho), zconnect(zoho)
    assert first.client._binding.lock is second.client._binding.lock
    other = first.config.model_copy(update={"user_email": "someone-else@example.com"})
    assert tenant_lock(other) is not tenant_lock(first.config)


def test_a_binding_fills_zcrmsdks_value_converters_before_any_call(
    zoho, zconnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zcrmsdk fills them process-wide on first use and stops checking once both maps hold
    one entry: two tenants' threads converting their first values at once could find a type
    missing. A binding fills them, under its construction lock, before any call."""
    monkeypatch.setattr(DataTypeConverter, "pre_converter_map", {})
    monkeypatch.setattr(DataTypeConverter, "post_converter_map", {})
    zconnect(zoho)
    kinds = {"String", "Integer", "Long", "Boolean", "Float", "Double", "Date", "DateTime"}
    assert kinds <= DataTypeConverter.pre_converter_map.keys()
    assert kinds <= DataTypeConverter.post_converter_map.keys()


def test_the_tenant_lock_keeps_zcrmsdks_metadata_rewrites_from_failing_other_calls(
    zoho, zconnect
) -> None:
    """zcrmsdk rewrites its field-details file in place (a module's first use, a refresh)
    and reads it for every record call outside its own lock: calls of one tenant on other
    threads meanwhile would read it empty or half written. The tenant lock keeps them apart
    (docs/operations.md, "What Zoho writes in parallel would need")."""
    connector = zconnect(zoho)
    client, module = connector.client, connector.module
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                client.read_page(
                    module, ["Modified_Time"], modified_after=None, page=1, per_page=50
                )
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    def rewrite() -> None:
        try:
            for _ in range(REWRITES):
                with client._bound():
                    ModuleFieldsHandler.refresh_fields(module)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=read) for _ in range(2)]
    threads.append(threading.Thread(target=rewrite))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
