"""The Zoho CRM sandbox: an HTTPS emulator of Zoho CRM v2 that the unmodified zcrmsdk 3.1.0
works against, seeded with the shared synthetic bank customers as Contacts.

One server plays both Zoho hosts: Accounts (``/oauth/v2/token``) and the CRM API
(``/crm/v2/...``, see ``zoho_api.py``). Customers are stored in SQLite in Zoho field names
(the shipped default mapping), with the canary PII a real Contact carries in its standard
fields. Tests and ``crmtier sandbox`` observe and perturb it through the methods below and
the ``/__sandbox__/`` control API: call counts by kind and credits, expired tokens, 429
storms, per-record ``INVALID_DATA``, 5xx and latency, edits that fire notification
callbacks to a registered channel.

Seeded records are dirty the way a real org's records are, and only that way: negative
balances (out of range), blank blocks, picklist values no longer in the list, and numbers
kept as text in a field an import created as single-line text (the generator's
``TEXT_IMPORTED_INPUTS``: "57", and "N/A" where the source had none). An Integer or
Decimal field holds a number or nothing, as in Zoho, so the unmodified zcrmsdk types every
page this sandbox serves.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.mapping import load_default_mapping
from connectors.sandbox.base import SandboxInfo, SandboxLifecycle, SandboxTask
from connectors.sandbox.generator import SyntheticCustomer, generate, to_crm_fields
from connectors.sandbox.households import household_links, noting_individuals
from connectors.sandbox.optional import writeback_targets
from connectors.sandbox.zoho_api import (
    LEAST_PRIVILEGE_PROFILE,
    WRITE_KINDS,
    Credits,
    ZohoApi,
)
from connectors.sandbox.zoho_auth import Accounts, ClientApp, zoho_error
from connectors.sandbox.zoho_config import crmtier_toml
from connectors.sandbox.zoho_control import install_control_routes
from connectors.sandbox.zoho_households import seed_households
from connectors.sandbox.zoho_notify import Channel, Delivery, Notifier, resolve_expiry
from connectors.sandbox.zoho_schema import (
    CAMPAIGN_MODULE,
    CUSTOMER_MODULE,
    TASK_KEY_FIELD,
    TASK_MODULE,
    build_schema,
    stored_value,
)
from connectors.sandbox.zoho_timeline import install_zoho_timeline
from connectors.sandbox.zoho_users import zoho_user_id
from connectors.sandbox.zoho_wire import ID_BASE, format_time
from connectors.sandbox.zoho_writes import MEMBERS, write_one
from connectors.zoho.households import ROLE_FIELD as HOUSEHOLD_ROLE_FIELD
from connectors.zoho.scopes import REQUIRED_SCOPES

DEFAULT_CHANNEL_ID = "1000000068001"
DEFAULT_CREDITS = 50_000 + 1_000 * 25  # Enterprise edition, 25 users (Zoho CRM "API Limits")
_ALMOST_A_DAY = timedelta(days=1) - timedelta(minutes=1)  # the v2 channel maximum, less a margin


def zoho_customer_id(index: int) -> str:
    """The Contact id of generator customer ``index`` (19 digits, like Zoho's)."""
    return str(ID_BASE + 1_000_000 + index)


class ZohoSandbox(SandboxLifecycle):
    crm = "zoho"

    def __init__(
        self,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        credit_limit: int = DEFAULT_CREDITS,
        refresh_limit: int = 10,
        notify_ca_bundle: str | None = None,
        discrete_page_limit: int | None = None,
        max_fields: int | None = None,
        integration_profile: str = LEAST_PRIVILEGE_PROFILE,
        coql_scope: bool = True,
        scopes: Iterable[str] = REQUIRED_SCOPES,
        household_role_field: bool = True,
    ) -> None:
        router = self._open(data_dir, host=host, port=port, latency=latency)
        self.default = load_default_mapping("zoho")
        self.schema = build_schema(self.default)
        if not household_role_field:  # an org whose admin has not added it (households)
            del self.schema.modules[CUSTOMER_MODULE][HOUSEHOLD_ROLE_FIELD]
        self.app = ClientApp.generate()
        self.accounts = Accounts(
            self.app, lambda: self.server.base_url, refresh_limit=refresh_limit
        )
        self.notifier = Notifier(verify=notify_ca_bundle or True)
        self.credits = Credits(credit_limit)
        self.notify_token = secrets.token_urlsafe(30)[:40]
        self.channel_id = DEFAULT_CHANNEL_ID
        self.api = ZohoApi(
            self.store,
            self.schema,
            self.accounts,
            self.notifier,
            self.credits,
            lambda: self.server.base_url,
        )
        self.api.register(router)
        install_zoho_timeline(self, router)  # tier overrides' audit (override_trail)
        self.api.discrete_page_limit = discrete_page_limit
        self.api.max_fields = max_fields
        #: the self client's grant: crmtier's documented scopes, less what a test takes away
        self.api.scopes = frozenset(scopes) - (set() if coql_scope else {"ZohoCRM.coql.READ"})
        self.api.profile = integration_profile  # "Administrator": what doctor warns about
        self.server.on_reset.append(self._reset)
        self._campaign_keys = {cid: key for key, cid in self.default.writeback.campaigns.items()}
        install_control_routes(self)
        self._seed_campaigns()

    # --- lifecycle ------------------------------------------------------------------------

    def _start_sender(self) -> None:
        self.notifier.start()

    def _stop_sender(self) -> None:
        self.notifier.stop()

    def info(self) -> SandboxInfo:
        return self._info(
            {
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
                "refresh_token": self.app.refresh_token,
                "accounts_url": self.accounts_url,
            }
        )

    @property
    def accounts_url(self) -> str:
        return f"{self.server.base_url}/oauth/v2/token"

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        return crmtier_toml(self, env_prefix)

    # --- data -----------------------------------------------------------------------------

    def seed(self, customers: int, seed: int = 7) -> None:
        individuals: list[int] = []
        self.store.insert_many(
            CUSTOMER_MODULE,
            (
                (zoho_customer_id(c.index), c.modstamp, self._contact(c))
                for c in noting_individuals(generate(customers, seed), individuals)
            ),
        )
        seed_households(
            self.store,
            household_links(individuals, seed),
            zoho_customer_id,
            lambda contact: contact.get("Last_Name") or "",
        )

    def _contact(self, customer: SyntheticCustomer) -> dict[str, Any]:
        data = self._as_stored(to_crm_fields(customer, self.default.mapping.fields))
        owner = customer.profile.get("owner_id")
        first, _, last = customer.pii["name"].rpartition("-")
        data.update(
            First_Name=first,
            Last_Name=last,
            Email=customer.pii["email"],
            Phone=customer.pii["phone"],
            National_ID=customer.pii["national_id"],
            Owner={"id": zoho_user_id(owner), "name": owner or "Unassigned Customers"},
            Created_Time=format_time(customer.modstamp),
        )
        return data

    def _seed_campaigns(self) -> None:
        self.store.insert_many(
            CAMPAIGN_MODULE,
            (
                (
                    cid,
                    self.store.clock(),
                    {"Campaign_Name": key.replace("_", " ").title(), "Status": "Active"},
                )
                for key, cid in self.default.writeback.campaigns.items()
            ),
        )

    def add_customer(self, profile: Mapping[str, Any], index: int | None = None) -> str:
        """Insert a customer from a canonical profile (as a CRM user would); returns its id."""
        index = index if index is not None else 900_000 + self.store.count(CUSTOMER_MODULE)
        stamp = self.store.clock()
        customer = SyntheticCustomer(
            index,
            zoho_customer_id(index),
            stamp,
            dict(profile),
            {"name": f"Added-Customer-{index}", "phone": "", "email": "", "national_id": ""},
            False,
        )
        rid = zoho_customer_id(index)
        self.store.insert_many(CUSTOMER_MODULE, [(rid, stamp, self._contact(customer))])
        self._notify(CUSTOMER_MODULE, "insert", [rid], [])
        return rid

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        fields = self._crm_values(changes)
        self.store.update(CUSTOMER_MODULE, customer_id, fields, modstamp=modstamp)
        self._notify(CUSTOMER_MODULE, "update", [customer_id], sorted(fields))

    def _crm_values(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, value in changes.items():
            if path == "owner_id":
                out["Owner"] = {"id": zoho_user_id(value), "name": value or "Unassigned"}
            elif path in self.default.mapping.fields:
                out[self.default.mapping.fields[path]] = value
            elif path in self.default.writeback.fields:
                out[self.default.writeback.fields[path]] = value
            else:
                raise ValueError(f"{path}: not a mapped canonical field of the Zoho sandbox")
        return self._as_stored(out)

    def _as_stored(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Contact values as the org's fields hold them (``stored_value``); ValueError for
        one no Zoho field of its type can hold, such as text in an Integer field."""
        fields = self.schema.fields(CUSTOMER_MODULE)
        out: dict[str, Any] = {}
        for name, value in values.items():
            value = list(value) if isinstance(value, tuple) else value
            spec = fields.get(name)
            out[name] = value if value is None or spec is None else stored_value(spec, value)
        return out

    def record(self, customer_id: str) -> dict[str, Any]:
        """The raw Contact as stored (Zoho field names); KeyError if absent."""
        found = self.store.get(CUSTOMER_MODULE, customer_id)
        if found is None:
            raise KeyError(customer_id)
        return found[1]

    def written(self, customer_id: str) -> dict[str, Any]:
        data = self.record(customer_id)
        fields = self.schema.fields(CUSTOMER_MODULE)
        out: dict[str, Any] = {}
        for output, api_name in writeback_targets("zoho", self.default).items():
            value = data.get(api_name)
            if value is None:
                continue
            is_date = fields[api_name].data_type == "date" and isinstance(value, str)
            out[output] = date.fromisoformat(value) if is_date else value
        return out

    def tasks(self) -> list[SandboxTask]:
        out = []
        for _, _, data in self.store.scan(TASK_MODULE):
            related = data.get("Who_Id") or data.get("What_Id") or {}
            owner = data.get("Owner") or {}
            out.append(
                SandboxTask(
                    external_id=str(data.get(TASK_KEY_FIELD) or ""),
                    customer_id=str(related.get("id", "")),
                    subject=str(data.get("Subject", "")),
                    due=data.get("Due_Date"),
                    owner=owner.get("id"),
                    open=data.get("Status") != "Completed",
                )
            )
        return out

    def edit_task(self, key: str, **fields: Any) -> None:
        """What a relationship manager does in the CRM: change the Task with crmtier's key
        ``key`` (Zoho's field names: ``Subject``, ``Due_Date``, ``Owner``, ``Status``...),
        checked as an Update Records row is."""
        (rid,) = [r for r, _, d in self.store.scan(TASK_MODULE) if d.get(TASK_KEY_FIELD) == key]
        result, _ = write_one(self.api, TASK_MODULE, {"id": rid, **fields}, 0, "update", [])
        if result["status"] != "success":
            raise ValueError(f"Task {key}: {sorted(fields)}: {result['code']}")

    def reschedule_task(self, key: str, subject: str, due: date) -> None:
        self.edit_task(key, Subject=subject, Due_Date=due.isoformat())

    def memberships(self) -> set[tuple[str, str]]:
        out = set()
        for rid, _, _ in self.store.scan(MEMBERS):
            contact, _, campaign = rid.partition(":")
            out.add((contact, self._campaign_keys.get(campaign, campaign)))
        return out

    def add_member_by_hand(self, customer_id: str, campaign: str) -> None:
        """The Contact linked to the campaign from its related list, as a relationship
        manager links one: Zoho holds the link once, with no crmtier key on it."""
        cid = self.default.writeback.campaigns[campaign]
        self.store.upsert(MEMBERS, f"{customer_id}:{cid}", {"Member_Status": "Active"})

    def write_calls(self) -> int:
        return self.server.calls.count(*WRITE_KINDS)

    def customer_ids(self) -> list[str]:
        return [rid for rid, _, _ in self.store.scan(CUSTOMER_MODULE)]

    # --- notifications --------------------------------------------------------------------

    def set_notification_target(self, url: str, **options: Any) -> None:
        """Subscribe ``url`` as an admin would with the watch API (defaults: this sandbox's
        channel id and token, ``Contacts.all``, the v2 maximum expiry of one day)."""
        now = datetime.now(UTC)
        expiry = options.get("expiry")
        self.notifier.upsert(
            Channel(
                channel_id=str(options.get("channel_id", self.channel_id)),
                events=list(options.get("events", [f"{CUSTOMER_MODULE}.all"])),
                notify_url=url,
                expiry=resolve_expiry(expiry, now) if expiry else now + _ALMOST_A_DAY,
                token=options.get("token", self.notify_token),
            )
        )

    def deliveries(self, wait_for: int = 0, timeout: float = 10.0) -> list[Delivery]:
        """Notification callbacks attempted so far (waits until ``wait_for`` were made)."""
        if wait_for:
            return self.notifier.wait_for(wait_for, timeout)
        return self.notifier.deliveries()

    def channels(self) -> list[Channel]:
        return self.notifier.channels()

    def _notify(self, module: str, operation: str, ids: list[str], fields: list[str]) -> None:
        self.notifier.publish(module, operation, ids, fields, resource_base=self.server.base_url)

    # --- fault injection ------------------------------------------------------------------

    def rate_limit(self, kind: str = "*", times: int | None = 1, after: int = 0) -> int:
        """429 ``TOO_MANY_REQUESTS`` (no Retry-After, as Zoho) for the next ``times`` calls."""
        return self.server.inject(
            kind,
            response=zoho_error(
                "TOO_MANY_REQUESTS", "The number of API calls made exceeded the limit", 429
            ),
            times=times,
            after=after,
        )

    def server_error(self, kind: str = "*", times: int | None = 1, status: int = 500) -> int:
        return self.server.inject(
            kind,
            response=zoho_error("INTERNAL_ERROR", "Internal Server Error", status),
            times=times,
        )

    def expire_tokens(self) -> None:
        """All access tokens die now: the next API call gets 401 ``INVALID_TOKEN``."""
        self.accounts.expire_all()

    def reject_records(
        self,
        ids: Iterable[str],
        *,
        code: str = "INVALID_DATA",
        api_name: str = "Value_Tier",
        message: str = "invalid data",
    ) -> None:
        """Writes to these records fail per record with ``code`` and Zoho's ``message``
        (which, as in a real org, may quote the value); the rest succeed."""
        for rid in ids:
            self.api.reject[str(rid)] = (code, api_name, message)

    def set_picklist(self, output: str, values: Iterable[str]) -> None:
        """Change the org's picklist behind a write-back output (e.g. drop a tier)."""
        self.schema.set_picklist(CUSTOMER_MODULE, self.default.writeback.fields[output], values)

    def write_triggers(self) -> list[list[str] | None]:
        """The ``trigger`` list of every write call, in order."""
        return list(self.api.triggers)

    def _reset(self) -> None:
        self.credits.reset()
        self.api.reject.clear()
        self.api.triggers.clear()
