"""A local Salesforce org that unmodified simple-salesforce talks to over real HTTPS.

Speaks the REST wire format of the Salesforce REST API Developer Guide: OAuth2 token endpoint
(client credentials and JWT bearer), ``query``/``queryAll`` with ``nextRecordsUrl`` paging
(``queryAll`` adds deleted Tasks from the Recycle Bin and archived ones: ``salesforce_org``),
sObject Collections (update, create,
upsert by external id, delete) with per-record results, single-record sObject calls,
``describe``, ``limits``, Bulk API 2.0 (``salesforce_bulk.py``), and Outbound Messages
(``salesforce_outbound.py``). Every data response carries ``Sforce-Limit-Info``; going past
the daily allowance gives the real 403 ``REQUEST_LIMIT_EXCEEDED``. Customers are Accounts
(Person Accounts for individuals, business Accounts for corporates) seeded from the shared
generator through the default mapping, stored in SQLite so a million of them is cheap.

Faults a test wants are one named call away: ``rate_limit()``, ``expire_session()``,
``lock_rows()``, ``read_only_mode()``, ``server_error()``, ``drop_connections()``,
``lose_responses()``, ``exhaust_daily_limit()`` (``salesforce_faults.py``).

The routes are ``salesforce_rest.py``'s (data), ``salesforce_auth.py``'s (OAuth token) and
``salesforce_control.py``'s (the ``/__sandbox__/`` control API); this module is the sandbox's
lifecycle, seeding and the Sandbox protocol.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from connectors.mapping import DefaultMapping, load_default_mapping
from connectors.salesforce.mapping import from_crm_value
from connectors.sandbox.base import SandboxInfo, SandboxLifecycle, SandboxTask
from connectors.sandbox.generator import generate
from connectors.sandbox.households import household_links, noting_individuals
from connectors.sandbox.optional import writeback_targets
from connectors.sandbox.salesforce_auth import ConnectedApp
from connectors.sandbox.salesforce_bulk import BulkApi
from connectors.sandbox.salesforce_control import install_control_routes
from connectors.sandbox.salesforce_faults import SalesforceFaults
from connectors.sandbox.salesforce_index import RECYCLE_BIN
from connectors.sandbox.salesforce_metadata import MetadataApi
from connectors.sandbox.salesforce_org import (
    SalesforceOrg,
)
from connectors.sandbox.salesforce_outbound import OutboundMessenger, Target, message_fields
from connectors.sandbox.salesforce_rest import QueryCursor, install_rest_routes
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD
from connectors.sandbox.salesforce_seed import (
    account_row,
    flattener,
    member_statuses,
    relation_rows,
    user_id,
    user_row,
)
from connectors.sandbox.salesforce_wire import (
    INTEGRATION_USER_ID,
    ORG_ID,
    PREFIXES,
    account_of_contact,
    make_id,
    person_contact_id,
    to_sf_value,
)

#: Route kinds that change data: what ``write_calls()`` counts.
WRITE_KINDS = (
    "collections_update",
    "collections_create",
    "collections_upsert",
    "collections_delete",
    "sobject_create",
    "sobject_update",
    "sobject_upsert",
    "sobject_delete",
    "bulk_ingest_create",
)


class SalesforceSandbox(SalesforceFaults, SandboxLifecycle):
    crm = "salesforce"

    def __init__(
        self,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        daily_api_limit: int = 100_000,
        accounts_as_campaign_members: bool = True,
        contacts_to_multiple_accounts: bool = True,
        person_accounts: bool = True,
        notify_on_api_writes: bool = True,
        query_batch_size: int = 2000,
    ) -> None:
        self.router = self._open(data_dir, host=host, port=port, latency=latency)
        self.mapping: DefaultMapping = load_default_mapping("salesforce")
        self.org = SalesforceOrg(
            self.store,
            self.mapping,
            accounts_as_members=accounts_as_campaign_members,
            multiple_accounts=contacts_to_multiple_accounts,
            person_accounts=person_accounts,
            on_change=self._on_api_change if notify_on_api_writes else None,
        )
        self.bulk = BulkApi(self.org)
        self.outbound = OutboundMessenger(
            ORG_ID, "04k000000000001AAA", self.server.base_url, current=self.org.get
        )
        self.daily_api_limit = daily_api_limit
        self.api_used = 0
        self.query_batch_size = query_batch_size
        self.app = ConnectedApp(self.data_dir)
        self.tokens: set[str] = set()
        self.lost: Counter[str] = Counter()
        self.cursors: dict[str, QueryCursor] = {}
        self.lock = threading.Lock()
        self.metadata = MetadataApi(self.org, self.tokens, self.lock)  # SessionHeader auth
        install_rest_routes(self)
        install_control_routes(self)
        self.server.on_reset.append(self._clear_faults)
        self._ensure_campaigns()
        self._ensure_queues()
        self.add_users([INTEGRATION_USER_ID])

    # --- lifecycle ---------------------------------------------------------------------

    def _stop_sender(self) -> None:
        self.outbound.stop()  # its thread starts with the first notification

    def info(self) -> SandboxInfo:
        return self._info(
            {"client_id": self.app.client_id, "client_secret": self.app.client_secret}
        )

    # --- seeding -------------------------------------------------------------------------

    def seed(self, customers: int, seed: int = 7) -> None:
        """Replace the customers with ``customers`` generated ones (streamed, one transaction)."""
        fields = self.mapping.mapping.fields
        flatten = flattener(fields)
        self.store.clear(self.org.customer_object)
        self.store.clear("Task")
        self.store.clear(RECYCLE_BIN)
        self.store.clear("CampaignMember")
        self.store.clear("AccountContactRelation")
        self.org.index.reset()
        owners: set[str] = set()
        individuals: list[int] = []
        self.store.insert_many(
            self.org.customer_object,
            (
                account_row(self.customer_id(c.index), c, flatten, fields, owners)
                for c in noting_individuals(generate(customers, seed), individuals)
            ),
        )
        self.add_users(owners)
        self.store.insert_many(
            "AccountContactRelation",
            relation_rows(household_links(individuals, seed), self.customer_id, self.store.clock()),
        )

    def customer_id(self, index: int) -> str:
        """The Account id of the generator's customer number ``index``."""
        return make_id("Account", index + 1)

    def _ensure_campaigns(self) -> None:
        """The default mapping's campaigns, each with its member statuses; a campaign
        without any (in a data dir made before the sandbox had them) gets them too."""
        stamp = self.store.clock()
        with_statuses = {d["CampaignId"] for _, _, d in self.store.scan("CampaignMemberStatus")}
        for n, (key, cid) in enumerate(self.mapping.writeback.campaigns.items()):
            if not self.store.exists("Campaign", cid):
                name = key.replace("_", " ").title()
                campaign = {"Name": name, "IsActive": True}
                self.store.insert_many("Campaign", [(cid, stamp, campaign)])
            if cid not in with_statuses:
                self.store.insert_many("CampaignMemberStatus", member_statuses(cid, n, stamp))

    def add_users(self, ids: Iterable[str]) -> None:
        """Active Users with these ids (those not there yet). Seeding adds every record
        owner, as in an org; an owner who leaves is deactivated (``deactivate_user``)."""
        missing = [i for i in sorted(set(ids)) if not self.store.exists("User", i)]
        stamp = self.store.clock()
        self.store.insert_many("User", [(i, stamp, user_row(i)) for i in missing])

    def _ensure_queues(self) -> None:
        """The ``[writeback.queues]`` ids of the default mapping, as Task queues."""
        for key, qid in self.mapping.writeback.queues.items():
            if qid.startswith(PREFIXES["Group"]) and not self.store.exists("Group", qid):
                self.add_queue(qid, key, ("Task",))

    def add_queue(self, queue_id: str, name: str, sobject_types: Sequence[str]) -> None:
        """A queue (a ``Group`` of ``Type`` Queue) accepting records of these objects,
        one ``QueueSobject`` row each."""
        stamp = self.store.clock()
        developer_name = "".join(part.title() for part in name.split("_"))
        self.store.insert_many(
            "Group",
            [(queue_id, stamp, {"Name": name, "DeveloperName": developer_name, "Type": "Queue"})],
        )
        first = self.store.count("QueueSobject") + 1
        self.store.insert_many(
            "QueueSobject",
            [
                (make_id("QueueSobject", first + n), stamp, {"QueueId": queue_id, "SobjectType": t})
                for n, t in enumerate(sobject_types)
            ],
        )

    def deactivate_user(self, user_id: str) -> None:
        """What an admin does when a relationship manager leaves."""
        self.store.update("User", user_id, {"IsActive": False})

    # --- the Sandbox protocol ------------------------------------------------------------

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        fields = self.mapping.mapping.fields
        data: dict[str, Any] = {}
        for path, value in changes.items():
            if path not in fields:
                raise KeyError(f"{path}: not a mapped canonical field")
            data[fields[path]] = user_id(value) if path == "owner_id" else to_sf_value(value)
        if changes.get("owner_id"):
            self.add_users([data[fields["owner_id"]]])
        self.store.update(self.org.customer_object, customer_id, data, modstamp=modstamp)
        view = self.org.get(self.org.customer_object, customer_id)
        if view is not None:
            self._notify(view)

    def written(self, customer_id: str) -> dict[str, Any]:
        view = self.org.get(self.org.customer_object, customer_id)
        if view is None:
            raise KeyError(customer_id)
        out = {}
        for output, crm_field in writeback_targets("salesforce", self.mapping).items():
            value = from_crm_value(output, view.get(crm_field))
            if value is not None:
                out[output] = value
        return out

    def tasks(self) -> list[SandboxTask]:
        """Every Task crmtier wrote; ``open`` is False for a closed one (``IsClosed``)."""
        return [
            SandboxTask(
                external_id=str(data.get(EXTERNAL_KEY_FIELD)),
                customer_id=str(data.get("WhatId")),
                subject=str(data.get("Subject")),
                due=data.get("ActivityDate"),
                owner=data.get("OwnerId"),
                open=not self.org.view(rid, modstamp, data)["IsClosed"],
            )
            for rid, modstamp, data in self.store.scan("Task")
        ]

    def set_task_status(self, key: str, status: str) -> None:
        """What a relationship manager does in the CRM: give the Task with crmtier's
        external key ``key`` this Status (a value of the org's picklist, or refused)."""
        self.edit_task(key, Status=status)

    def edit_task(self, key: str, **fields: Any) -> None:
        """What a relationship manager does in the CRM: change the Task with crmtier's
        external key ``key`` (reassign it: ``OwnerId``; relate it elsewhere: ``WhatId``),
        checked as any save is."""
        rid = self.org.index.ext().get("Task", {})[key]
        record = {"attributes": {"type": "Task"}, "id": rid, **fields}
        (saved,) = self.org.update([record], True)
        if not saved.success:
            raise ValueError(f"Task {key}: {sorted(fields)}: {saved.errors[0].as_json()}")

    def delete_task(self, key: str) -> None:
        """What a relationship manager does in the CRM: delete the Task with crmtier's
        external key ``key``; it goes to the Recycle Bin, its Unique key with it."""
        rid = self.org.index.ext().get("Task", {})[key]
        (deleted,) = self.org.delete([rid], True)
        if not deleted.success:
            raise ValueError(f"Task {key}: {deleted.errors[0].as_json()}")

    def reschedule_task(self, key: str, subject: str, due: date) -> None:
        self.edit_task(key, Subject=subject, ActivityDate=due.isoformat())

    def memberships(self) -> set[tuple[str, str]]:
        keys = {cid: key for key, cid in self.mapping.writeback.campaigns.items()}
        out = set()
        for _, _, data in self.store.scan("CampaignMember"):
            customer = data.get("AccountId") or (
                account_of_contact(data["ContactId"]) if data.get("ContactId") else None
            )
            if customer:
                out.add((customer, keys.get(data["CampaignId"], data["CampaignId"])))
        return out

    def add_member_by_hand(self, customer_id: str, campaign: str) -> None:
        """A CampaignMember of the customer's Person Contact (a business Account: the
        Account), saved as the org saves one, with no crmtier key."""
        found = self.store.get("Account", customer_id)
        person = found is not None and found[1].get("IsPersonAccount")
        member = (
            {"ContactId": person_contact_id(customer_id)} if person else {"AccountId": customer_id}
        )
        row = {
            "attributes": {"type": "CampaignMember"},
            "CampaignId": self.mapping.writeback.campaigns[campaign],
            **member,
        }
        (saved,) = self.org.create([row], False)
        if not saved.success:
            raise ValueError(f"CampaignMember: {saved.errors[0].as_json()}")

    def write_calls(self) -> int:
        return self.server.calls.count(*WRITE_KINDS)

    def set_notification_target(self, url: str, **options: Any) -> None:
        ca_bundle = options.pop("ca_bundle", None)
        self.outbound.set_target(Target(url=url, verify=ca_bundle or True, **options))

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        env = {
            f"{env_prefix}_SF_CLIENT_ID": self.app.client_id,
            f"{env_prefix}_SF_CLIENT_SECRET": self.app.client_secret,
        }
        lines = [
            "# crmtier.toml for the local Salesforce sandbox (crmtier sandbox --crm salesforce)",
            "[crm]",
            'kind = "salesforce"',
            f'base_url = "{self.server.base_url}"',
            'auth = "client_credentials"',
            f'client_id = "env:{env_prefix}_SF_CLIENT_ID"',
            f'client_secret = "env:{env_prefix}_SF_CLIENT_SECRET"',
            f"ca_bundle = {json.dumps(str(self.ca_bundle))}",
            "api_share = 0.2",
            "",
            "[mapping]",
            f'object = "{self.mapping.mapping.object}"',
            "",
            "[mapping.fields]",
            *(f'"{k}" = "{v}"' for k, v in self.mapping.mapping.fields.items()),
            "",
            "[writeback]",
            f"restricted = {json.dumps(list(self.mapping.writeback.restricted))}",
            f"tasks = {str(self.mapping.writeback.tasks).lower()}",
            f"campaign_memberships = {str(self.mapping.writeback.campaign_memberships).lower()}",
            "",
            "[writeback.fields]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.fields.items()),
            "",
            "[writeback.campaigns]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.campaigns.items()),
            "",
            "[writeback.queues]",
            *(f'{k} = "{v}"' for k, v in self.mapping.writeback.queues.items()),
            "",
            "[state]",
            f"url = {json.dumps('sqlite:///' + str(self.data_dir / 'crmtier.db'))}",
            "",
            "[webhooks]",
            'listen = "127.0.0.1:8080"',
            f'salesforce_org_id = "{ORG_ID}"',
            "",
        ]
        return "\n".join(lines), env

    # --- notifications ---------------------------------------------------------------------

    def _notify(self, view: Mapping[str, Any]) -> None:
        self.outbound.notify(self.org.customer_object, message_fields(view))

    def _on_api_change(self, obj: str, view: dict[str, Any]) -> None:
        self._notify(view)
