"""What every CRM sandbox offers, whatever wire format it speaks.

Tests, the contract suite, ``crmtier sandbox`` and ``crmtier demo`` talk to a sandbox only
through this surface, so they work the same against Salesforce, Zoho and FXiaoke. The HTTP
control API under ``/__sandbox__/`` exposes the same operations to out-of-process users.

Customer data is edited in *canonical* terms (``{"assets.deposits": 7_000_000}``): the
sandbox translates through its CRM's default mapping, stores, bumps the modstamp and sends
the CRM's change notification if a target is registered. What crmtier wrote back is read in
canonical terms too (``written(customer_id)["value_tier"]``), so one assertion serves all
three CRMs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, Self

from connectors.sandbox.server import Router, SandboxServer
from connectors.sandbox.store import RecordStore, open_store
from connectors.sandbox.tls import make_tls


@dataclass(frozen=True)
class SandboxTask:
    external_id: str  # crmtier's dedupe key
    customer_id: str
    subject: str
    due: str | None
    owner: str | None
    open: bool = True  # False once closed in the CRM (a withdrawn FXiaoke task is not listed)


@dataclass(frozen=True)
class SandboxInfo:
    """The one JSON line ``crmtier sandbox`` prints on start."""

    crm: str
    base_url: str
    ca_bundle: str
    credentials: Mapping[str, str]
    control_token: str

    def as_json(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "base_url": self.base_url,
            "ca_bundle": self.ca_bundle,
            "credentials": dict(self.credentials),
            "control_token": self.control_token,
        }


class SandboxLifecycle:
    """Set-up, start, stop and ``with`` use, the same for every CRM sandbox: the data
    directory, record store, certificates and HTTPS server; on start and stop the CRM's
    notification sender (its own thread), the server, then the record store on the way out."""

    crm: str
    data_dir: Path
    server: SandboxServer
    store: RecordStore
    ca_bundle: Path

    def _open(
        self, data_dir: Path, *, host: str, port: int, latency: float, tls_subdir: str = "tls"
    ) -> Router:
        """Create ``data_dir``, open the record store in it, issue a fresh CA and server
        certificate under ``data_dir / tls_subdir``, and bind (not start) the HTTPS server.
        Returns the server's router, for the CRM's own routes."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.data_dir)
        tls = make_tls(self.data_dir / tls_subdir)
        self.ca_bundle = tls.ca_bundle
        router = Router()
        self.server = SandboxServer(
            router, host=host, port=port, ssl_context=tls.server_context, latency=latency
        )
        return router

    def _info(self, credentials: Mapping[str, str]) -> SandboxInfo:
        """What ``info()`` reports: this server and CA with the CRM's own credentials."""
        return SandboxInfo(
            crm=self.crm,
            base_url=self.server.base_url,
            ca_bundle=str(self.ca_bundle),
            credentials=credentials,
            control_token=self.server.control_token,
        )

    def _start_sender(self) -> None:
        """Start the notification sender where it runs a thread of its own."""

    def _stop_sender(self) -> None:
        """Stop the notification sender; pending deliveries are given up."""

    def start(self) -> Self:
        self._start_sender()
        self.server.start()
        return self

    def stop(self) -> None:
        self._stop_sender()
        self.server.stop()
        self.store.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Sandbox(Protocol):
    crm: str
    server: SandboxServer
    store: RecordStore

    def start(self) -> Sandbox: ...

    def stop(self) -> None: ...

    def info(self) -> SandboxInfo: ...

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        """A ready-to-use ``crmtier.toml`` text pointing at this sandbox, with secrets as
        ``env:`` references, and the environment values those references need."""
        ...

    def seed(self, customers: int, seed: int = 7) -> None: ...

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        """Apply canonical-path changes, bump the modstamp (or pin it), and notify."""
        ...

    def written(self, customer_id: str) -> dict[str, Any]:
        """The write-back fields of this customer as the CRM holds them, by canonical name."""
        ...

    def tasks(self) -> list[SandboxTask]: ...

    def reschedule_task(self, key: str, subject: str, due: date) -> None:
        """What a relationship manager does in the CRM: give crmtier's task with external
        key ``key`` another subject and due date, saved as the CRM's own edit is."""
        ...

    def memberships(self) -> set[tuple[str, str]]:
        """(customer id, campaign key) pairs currently in the CRM."""
        ...

    def add_member_by_hand(self, customer_id: str, campaign: str) -> None:
        """What a relationship manager does in the CRM: put the customer in the campaign of
        key ``campaign`` by hand, so the member carries no crmtier key."""
        ...

    def write_calls(self) -> int:
        """How many write API calls crmtier has made (field updates, tasks, memberships)."""
        ...

    def set_notification_target(self, url: str, **options: Any) -> None:
        """Register where change notifications go, the way the real CRM is configured."""
        ...


def open_sandbox(
    crm: str,
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    latency: float = 0.0,
    **options: Any,
) -> Sandbox:
    """Construct (not start) the sandbox of ``crm`` (its plugin's); CA and store live in
    ``data_dir``."""
    from connectors.registry import kinds, plugins  # the plugins import their sandboxes

    if crm not in plugins():
        raise ValueError(f"crm: unknown CRM {crm!r}; choose one of {', '.join(kinds())}")
    return plugins()[crm].sandbox(
        data_dir=data_dir, host=host, port=port, latency=latency, **options
    )
