"""The FXiaoke (纷享销客) sandbox: the Open API v2 wire format on loopback HTTPS.

Faithful where crmtier's connector depends on it (FXiaoke Open API v2 docs,
developer.fxiaoke.com/openapi_v2):
every call is ``POST`` + JSON with a required ``?thirdTraceId``, every answer HTTP 200 with
``errorCode`` / ``errorMessage`` / ``errorDescription`` / ``traceId``; both token endpoints
(fxiaoke_auth.py); ``/cgi/crm/v2/data/query|get|create|update|invalid`` and their
``/cgi/crm/custom/v2/`` twins for ``__c`` objects (fxiaoke_query.py); object describe
(fxiaoke_schema.py); the per-interface limit of 100 calls / 20 s (14001), the token
endpoint's 10 calls / minute without concurrency, an optional daily quota (30002); unknown
paths answer 10006 (the routes and their checks: fxiaoke_routes.py; the limits' counters:
fxiaoke_limits.py). Customer changes made in the CRM fire the workflow push
(fxiaoke_push.py).

Shapes that are our best reading rather than documented are marked where they are built:
the follow-up object, the campaign-member field names, ``thirdTraceId``'s missing-parameter
code, and the per-field validation code (32000 with a message naming the field).

Tests perturb it with ``server.inject`` (5xx, latency, drops, canned error envelopes) and
the helpers here: ``expire_tokens``, ``rate_limit_next``, ``reject_record``; CRM users'
edits are ``edit_customer``, ``add_customer`` and ``invalidate_customer`` (作废).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from connectors.fxiaoke.mapping import value_from_crm
from connectors.mapping import load_default_mapping
from connectors.sandbox.base import SandboxInfo, SandboxLifecycle, SandboxTask
from connectors.sandbox.fxiaoke_auth import (
    ACTING_USER,
    TENANT_EA,
    Credentials,
    TenantAuth,
    TokenIssuer,
    open_user_id,
)
from connectors.sandbox.fxiaoke_control import install_control_routes
from connectors.sandbox.fxiaoke_households import (
    CONTACT,
    contact_rows,
    without_household_fields,
)
from connectors.sandbox.fxiaoke_limits import CallWindows, DailyQuota
from connectors.sandbox.fxiaoke_lock import DEFAULT_REFUSAL_CODE, LOCKED, UNLOCKED, set_lock
from connectors.sandbox.fxiaoke_push import WorkflowPush
from connectors.sandbox.fxiaoke_query import from_ms, to_ms
from connectors.sandbox.fxiaoke_routes import error_response, install_routes
from connectors.sandbox.fxiaoke_schema import (
    ACCOUNT,
    CAMPAIGN_MEMBER,
    FOLLOWUP,
    KEY_FIELD,
    MARKETING_EVENT,
    build_objects,
    stored_value,
    validate,
)
from connectors.sandbox.generator import customer_id, generate, to_crm_fields
from connectors.sandbox.households import household_links, noting_individuals
from connectors.sandbox.optional import writeback_targets

CRM = "fxiaoke"
TENANT_TZ = timezone(timedelta(hours=8), "CST")
_WRITE_KINDS = ("update", "custom_update", "create", "custom_create", "invalid", "custom_invalid")


class FxiaokeSandbox(SandboxLifecycle):
    crm = CRM

    def __init__(
        self,
        *,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        customers: int = 0,
        seed: int = 7,
        rate_calls: int = 100,
        rate_window: float = 20.0,
        token_calls_per_minute: int | None = 10,
        daily_quota: int | None = None,
        clock: Callable[[], float] = time.time,
        household_fields: bool = True,
        **_: Any,
    ) -> None:
        # FXiaoke's CA has always been data_dir/ca.pem (not tls/): crmtier.toml files
        # already written for a data dir keep pointing at the live one.
        router = self._open(data_dir, host=host, port=port, latency=latency, tls_subdir="")
        self.mapping = load_default_mapping(CRM)
        self.objects = build_objects(self.mapping)
        if not household_fields:  # a tenant whose admin has not added them (households)
            self.objects[CONTACT] = without_household_fields(self.objects[CONTACT])
        # Credentials kept in the data dir, so a restarted sandbox matches its crmtier.toml.
        creds = Credentials.load_or_create(self.data_dir / "credentials.json")
        # The tenant's employees: crmtier's acting user and the queues' assignees.
        employees = {ACTING_USER, *self.mapping.writeback.queues.values()}
        self.auth = TenantAuth(creds, TokenIssuer(clock), employees)
        self.tokens = self.auth.tokens
        self.app_id, self.app_secret = creds.app_id, creds.app_secret
        self.permanent_code, self.corp_id = creds.permanent_code, creds.corp_id
        self.push_secret = creds.push_secret
        self.ea, self.open_user_id = TENANT_EA, ACTING_USER
        #: the acting user's ``FSUID_`` id, for the legacy corpAccessToken convention
        self.acting_open_user_id = open_user_id(ACTING_USER)
        self.rate_calls, self.rate_window = rate_calls, rate_window
        self.token_calls_per_minute = token_calls_per_minute
        self.windows = CallWindows()
        self.quota = DailyQuota(daily_quota)
        self.token_busy = threading.Lock()
        self._rejections: dict[str, list[Any]] = {}
        #: the errorCode of an update refused by a lock (undocumented: fxiaoke_lock.py)
        self.lock_refusal_code = DEFAULT_REFUSAL_CODE
        self._rejections_lock = threading.Lock()
        self.push = WorkflowPush(tenant_id=self.ea)
        install_routes(self, router)
        self.server.on_reset.append(self._on_reset)
        install_control_routes(self, self.server.control)
        self._seed_campaigns()
        if customers:
            self.seed(customers, seed)

    # --- Sandbox protocol -------------------------------------------------------------

    def _stop_sender(self) -> None:
        self.push.close()  # its thread starts with the sandbox

    def info(self) -> SandboxInfo:
        return self._info(
            {
                "app_id": self.app_id,
                "app_secret": self.app_secret,
                "permanent_code": self.permanent_code,
                "open_user_id": self.open_user_id,
            },
        )

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        env = {
            f"{env_prefix}_FXIAOKE_APP_SECRET": self.app_secret,
            f"{env_prefix}_FXIAOKE_PERMANENT_CODE": self.permanent_code,
            f"{env_prefix}_FXIAOKE_SECRET": self.push_secret,
        }
        names = list(env)
        q = json.dumps
        lines = [
            "# crmtier.toml for the FXiaoke sandbox (written by `crmtier sandbox`).",
            "[crm]",
            'kind = "fxiaoke"',
            f"base_url = {q(self.server.base_url)}",
            'auth = "app_secret"',
            'convention = "oauth2"',
            f"app_id = {q(self.app_id)}",
            f'app_secret = "env:{names[0]}"',
            f'permanent_code = "env:{names[1]}"',
            f"open_user_id = {q(self.open_user_id)}",
            f"ca_bundle = {q(str(self.ca_bundle))}",
            "api_share = 0.2",
            "# per-endpoint call limit as this sandbox enforces it (real tenants: 100 / 20 s)",
            f"calls_per_window = {self.rate_calls}",
            f"window_seconds = {float(self.rate_window)}",
            "",
            "[mapping]",
            f"object = {q(self.mapping.mapping.object)}",
            *_table("mapping.fields", self.mapping.mapping.fields),
            "[writeback]",
            f"restricted = {q(list(self.mapping.writeback.restricted))}",
            f"tasks = {q(self.mapping.writeback.tasks)}",
            f"campaign_memberships = {q(self.mapping.writeback.campaign_memberships)}",
            "",
            *_table("writeback.fields", self.mapping.writeback.fields),
            *_table("writeback.campaigns", self.mapping.writeback.campaigns),
            *_table("writeback.queues", self.mapping.writeback.queues),
            "[state]",
            f"url = {q('sqlite:///' + str(self.data_dir / 'crmtier.db'))}",
            "",
            "[webhooks]",
            'listen = "127.0.0.1:8080"',
            f'fxiaoke_secret = "env:{names[2]}"',
            "replay_window_seconds = 300",
            "",
        ]
        return "\n".join(lines), env

    def seed(self, customers: int, seed: int = 7) -> None:
        fields = self.mapping.mapping.fields
        now_ms = to_ms(datetime.now(UTC))

        individuals: list[int] = []

        def rows() -> Any:
            for c in noting_individuals(generate(customers, seed), individuals):
                data = self._as_stored(to_crm_fields(c, fields))
                data.update(
                    name=c.pii["name"],
                    tel=c.pii["phone"],
                    email=c.pii["email"],
                    field_national_id__c=c.pii["national_id"],
                    owner=[c.profile["owner_id"]] if c.profile.get("owner_id") else [],
                    create_time=now_ms,
                    life_status="normal",
                    record_type="default__c",
                    version=1,
                )
                yield c.id, c.modstamp, data

        self.store.insert_many(ACCOUNT, rows())
        links = household_links(individuals, seed)
        self.store.insert_many(
            CONTACT, contact_rows(links, customer_id, self.store.clock(), now_ms)
        )

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        fields = self._crm_fields(changes)
        found = self.store.get(ACCOUNT, customer_id)
        if found is None:
            raise KeyError(f"customer {customer_id} does not exist")
        fields["version"] = int(found[1].get("version", 1)) + 1
        stamp = self.store.update(ACCOUNT, customer_id, fields, modstamp=modstamp)
        self.push.emit("update", ACCOUNT, customer_id, to_ms(stamp))

    def add_customer(self, changes: Mapping[str, Any], customer_id: str | None = None) -> str:
        """Create a customer from canonical values (a CRM user adding one); fires "create"."""
        rid = customer_id or uuid.uuid4().hex[:24]
        data = {
            **self._crm_fields(changes),
            "name": f"Canary-Name-{rid}",
            "owner": [],
            "create_time": to_ms(datetime.now(UTC)),
            "life_status": "normal",
            "record_type": "default__c",
            "version": 1,
        }
        stamp, _ = self.store.upsert(ACCOUNT, rid, data)
        self.push.emit("create", ACCOUNT, rid, to_ms(stamp))
        return rid

    def invalidate_customer(self, customer_id: str) -> None:
        """A CRM user invalidates (作废) the customer: it goes to the recycle bin, its
        modstamp moves, and the workflow pushes ``delete``."""
        if not self.store.exists(ACCOUNT, customer_id):
            raise KeyError(f"customer {customer_id} does not exist")
        stamp = self.store.update(ACCOUNT, customer_id, {"life_status": "invalid"})
        self.push.emit("delete", ACCOUNT, customer_id, to_ms(stamp))

    def written(self, customer_id: str) -> dict[str, Any]:
        """Write-back values by canonical name, read back as the connector reads them (a
        date field's epoch milliseconds as a ``date``)."""
        found = self.store.get(ACCOUNT, customer_id)
        if found is None:
            raise KeyError(f"customer {customer_id} does not exist")
        data = found[1]
        out: dict[str, Any] = {}
        for output, field in writeback_targets(CRM, self.mapping).items():
            value = data.get(field)
            if value is not None:
                out[output] = value_from_crm(output, value)
        return out

    def tasks(self) -> list[SandboxTask]:
        out = []
        for _, _, data in self.store.scan(FOLLOWUP):
            if data.get("life_status") == "invalid":
                continue
            due = data.get("field_due_date__c")
            owner = data.get("owner") or []
            out.append(
                SandboxTask(
                    external_id=str(data.get(KEY_FIELD, "")),
                    customer_id=str(data.get("field_customer__c", "")),
                    subject=str(data.get("name", "")),
                    due=from_ms(due).astimezone(TENANT_TZ).date().isoformat()
                    if isinstance(due, int | float)
                    else None,
                    owner=str(owner[0]) if owner else None,
                )
            )
        return out

    def edit_task(self, key: str, **fields: Any) -> None:
        """What a relationship manager does in the CRM: change the live follow-up with
        crmtier's key ``key`` (FXiaoke's field names: ``name``, ``field_due_date__c`` in
        epoch ms, ``owner``...), checked and versioned as an update is."""
        ((rid, _, data),) = [
            row
            for row in self.store.scan(FOLLOWUP)
            if row[2].get(KEY_FIELD) == key and row[2].get("life_status") != "invalid"
        ]
        problem = validate(self.objects[FOLLOWUP], fields)
        if problem:
            raise ValueError(f"{FOLLOWUP} {key}: {problem}")
        self.store.update(FOLLOWUP, rid, {**fields, "version": int(data.get("version", 1)) + 1})

    def reschedule_task(self, key: str, subject: str, due: date) -> None:
        midnight = datetime.combine(due, datetime.min.time(), tzinfo=TENANT_TZ)
        self.edit_task(key, name=subject, field_due_date__c=to_ms(midnight))

    def memberships(self) -> set[tuple[str, str]]:
        keys = {cid: key for key, cid in self.mapping.writeback.campaigns.items()}
        return {
            (str(data.get("account_id")), keys.get(str(data.get("marketing_event_id")), ""))
            for _, _, data in self.store.scan(CAMPAIGN_MEMBER)
            if data.get("life_status") != "invalid"
        }

    def add_member_by_hand(self, customer_id: str, campaign: str) -> None:
        """A live ``CampaignMembersObj`` record of the customer and the campaign, as the
        CRM's own form makes one: no ``field_crmtier_key__c``."""
        data = {
            "marketing_event_id": self.mapping.writeback.campaigns[campaign],
            "account_id": customer_id,
            "campaign_members_obj_type": "account",
            "create_time": to_ms(datetime.now(UTC)),
            "life_status": "normal",
            "version": 1,
        }
        self.store.insert_many(CAMPAIGN_MEMBER, [(uuid.uuid4().hex[:24], self.store.clock(), data)])

    def write_calls(self) -> int:
        return self.server.calls.count(*_WRITE_KINDS)

    def set_notification_target(self, url: str, **options: Any) -> None:
        """Where the workflow function posts; ``secret`` defaults to the sandbox's own (the
        one its ``crmtier_config()`` names), ``ca_bundle`` to the system trust store."""
        self.push.configure(
            url, str(options.get("secret") or self.push_secret), ca_bundle=options.get("ca_bundle")
        )

    # --- error injection ----------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token expires now (a mid-run expiry): the next call answers 20016."""
        self.tokens.expire_all()

    def rate_limit_next(self, kind: str = "*", *, code: int = 14001, times: int | None = 1) -> int:
        """The next ``times`` calls of ``kind`` answer a limit code (14001, 30004, 30002)."""
        messages = {14001: "接口调用超过限制", 30004: "秒频次超限", 30002: "当天访问频次超限"}
        return self.server.inject(
            kind, response=error_response(code, messages.get(code, "limit")), times=times
        )

    def reject_record(
        self, record_id: str, *, code: int = 32000, message: str = "", times: int | None = None
    ) -> None:
        """Updates of this record fail with ``code`` (a validation rule, a lock): ``times``
        calls, or until reset when None."""
        text = message or f"数据 {record_id} 校验失败 (validation rule rejected the record)"
        with self._rejections_lock:
            self._rejections[record_id] = [code, text, times]

    def lock_record(self, record_id: str, *, locked: bool = True) -> None:
        """An admin's 锁定 (or 解锁) of a customer, as "Lock Object" does it."""
        set_lock(self, ACCOUNT, [record_id], LOCKED if locked else UNLOCKED)

    def take_rejection(self, record_id: str) -> tuple[int, str] | None:
        with self._rejections_lock:
            rule = self._rejections.get(record_id)
            if rule is None:
                return None
            if rule[2] is not None:
                rule[2] -= 1
                if rule[2] <= 0:
                    del self._rejections[record_id]
            return int(rule[0]), str(rule[1])

    def _on_reset(self) -> None:
        self.windows.clear()
        self.lock_refusal_code = DEFAULT_REFUSAL_CODE
        with self._rejections_lock:
            self._rejections.clear()
        self.quota.clear()

    # --- helpers ------------------------------------------------------------------------

    def _crm_fields(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        mapped = {**self.mapping.mapping.fields, **self.mapping.writeback.fields}
        out: dict[str, Any] = {}
        for path, value in changes.items():
            if path == "owner_id":
                out["owner"] = [value] if value else []
                continue
            field = mapped.get(path)
            if field is None:
                raise ValueError(f"changes: {path!r} is not a mapped canonical path")
            out[field] = value
        return self._as_stored(out)

    def _as_stored(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Customer values as the tenant's fields hold them (``stored_value``); ValueError
        for one no field of its type can hold, such as text in a number field."""
        fields = self.objects[ACCOUNT].fields
        out: dict[str, Any] = {}
        for name, value in values.items():
            value = list(value) if isinstance(value, tuple) else value
            spec = fields.get(name)
            out[name] = value if spec is None else stored_value(spec, value)
        return out

    def _seed_campaigns(self) -> None:
        stamp = self.store.clock()
        self.store.insert_many(
            MARKETING_EVENT,
            [
                (cid, stamp, {"name": key, "life_status": "normal", "version": 1})
                for key, cid in self.mapping.writeback.campaigns.items()
            ],
        )


def _table(name: str, values: Mapping[str, Any]) -> list[str]:
    return [f"[{name}]", *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()), ""]
