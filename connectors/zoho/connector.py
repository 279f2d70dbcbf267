"""The Zoho CRM connector: the ``Connector`` contract over ``ZohoClient``.

Reads: Zoho v2 sorts by ``Modified_Time`` at one-second resolution and promises no order
among records of the same second, and offset paging over a changing sort order can skip a
record that moves. So reads page by *key*, not offset: each request asks for records
modified at or after a window start (``If-Modified-Since`` = start − 1 s, since Zoho means
"after"), sorted ascending. Records strictly older than the newest second of the answer
are complete and are emitted sorted by (modstamp, id); the newest second is held back and
the next window starts there (only when more than a page shares one second does it turn
the page). Records are deduplicated by id, keeping the latest, and filtered to
``>= since``, so pages come out in the Cursor contract's (modstamp, id) order and a resume
from any page's cursor re-reads at most that page.

Writes: field updates in batches of ``write_batch`` (≤ 100) with ``"trigger": []`` by
default, so crmtier's own writes fire none of the customer's workflows; tasks upserted by
their dedupe key (a unique Tasks field), so reruns never duplicate them; campaign
membership through the Contacts/Leads ``Campaigns`` related list (relation updates and
delinks are idempotent). Every value is checked against the field metadata before the
first write call.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import SecretStr

from connectors.contract import (
    ApiUsage,
    Capabilities,
    CrmRecord,
    Cursor,
    MembershipChange,
    Page,
    SchemaCheck,
    WriteKind,
    WritePlan,
    WriteResult,
)
from connectors.errors import ConfigError, ConnectorError, refusal_text
from connectors.mapping import CANONICAL_TYPES, FieldMapping, WritebackConfig
from connectors.zoho.client import ChannelInfo, RowResult, ZohoClient
from connectors.zoho.config import ZohoConfig, load_config
from connectors.zoho.errors import RECORD_ADVICE, record_retryable
from connectors.zoho.mapping import (
    NUMERIC,
    OUTPUT_VALUES,
    FieldInfo,
    close_row,
    missing_values,
    read_fields,
    record_from_row,
    task_row,
    zoho_value,
)
from connectors.zoho.rights import check_profile

TASK_MODULE = "Tasks"
CAMPAIGN_MODULE = "Campaigns"
MEMBER_MODULES = ("Contacts", "Leads")
ONE_SECOND = timedelta(seconds=1)
#: v2 channels live at most a day; ask for a little less so the request is never refused.
CHANNEL_LIFETIME = timedelta(days=1) - timedelta(minutes=5)
#: docs/targets.md W11: a channel expiring within this window is renewed. A v2 channel lives at most
#: a day, so ``serve``, which checks hourly, renews it on every check.
RENEW_BEFORE = timedelta(hours=24)
#: Doctor warns when a channel has less life left than this: it has missed two of serve's
#: hourly renewals (serve is not running, or Zoho refuses the renewal).
RENEWAL_OVERDUE = CHANNEL_LIFETIME - timedelta(hours=2)


@dataclass(frozen=True)
class ChannelStatus:
    channel_id: str
    action: Literal["created", "renewed", "unchanged"]
    expiry: datetime | None


class ZohoConnector:
    def __init__(
        self,
        config: ZohoConfig,
        mapping: FieldMapping,
        writeback: WritebackConfig,
        *,
        client: ZohoClient | None = None,
    ) -> None:
        self.config = config
        self.mapping = mapping
        self.writeback = writeback
        self.client = client or ZohoClient(config)
        self.module = mapping.object
        self.capabilities = Capabilities(
            crm="zoho",
            page_size=config.page_size,
            max_write_batch=config.write_batch,
            bulk_threshold=None,
            webhook_kind="notification_channel",
            campaign_member_object=CAMPAIGN_MODULE,
            per_customer_kinds=frozenset({"membership"}),
            modstamp_resolution=ONE_SECOND,
        )
        self._fields = read_fields(mapping, writeback)
        self._schema: dict[str, dict[str, FieldInfo]] = {}

    # --- reads ----------------------------------------------------------------------------

    def _record(self, row: Mapping[str, Any]) -> CrmRecord:
        return record_from_row(
            row,
            self.mapping,
            self.writeback,
            unassigned_owner=self.config.unassigned_owner,
            labels=self.config.picklist_labels,
        )

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        window = None if since is None else since.modstamp.replace(microsecond=0)
        page_no = 1
        pending: dict[str, CrmRecord] = {}
        while True:
            answer = self.client.read_page(
                self.module,
                self._fields,
                modified_after=None if window is None else window - ONE_SECOND,
                page=page_no,
                per_page=self.config.page_size,
            )
            records = [self._record(row) for row in answer.rows]
            for record in records:
                known = pending.get(record.profile.id)
                if known is None or known.cursor < record.cursor:
                    pending[record.profile.id] = record
            if not answer.more:
                page = self._take(pending, since, before=None)
                if page.records:
                    yield page
                return
            newest = max(r.modstamp for r in records)
            if window is None or newest > window:
                page = self._take(pending, since, before=newest)
                if page.records:
                    yield page
                window, page_no = newest, 1
            else:  # a whole page within one second: only here does offset paging help
                page_no += 1

    @staticmethod
    def _take(
        pending: dict[str, CrmRecord], since: Cursor | None, *, before: datetime | None
    ) -> Page:
        ready = sorted(
            (r for r in pending.values() if before is None or r.modstamp < before),
            key=lambda r: r.cursor,
        )
        for record in ready:
            del pending[record.profile.id]
        return Page(tuple(r for r in ready if since is None or r.cursor >= since))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        found: dict[str, CrmRecord] = {}
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), 100):
            for row in self.client.fetch(self.module, unique[start : start + 100], self._fields):
                found[str(row["id"])] = self._record(row)
        return [found[i] for i in unique if i in found]

    # --- writes ---------------------------------------------------------------------------

    def schema(self, module: str) -> dict[str, FieldInfo]:
        if module not in self._schema:
            self._schema[module] = self.client.fields(module)
        return self._schema[module]

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        updates = self._update_rows(plan)  # validates everything before any write call
        tasks = self._task_rows(plan)
        memberships = self._membership_groups(plan)
        closes = self._close_rows(plan)
        results: list[WriteResult] = []
        trigger = list(self.config.workflow_triggers)
        batch = self.config.write_batch
        writes = [i for i, (_, row) in enumerate(updates) if len(row) > 1]  # more than "id"
        answers: dict[int, RowResult] = {}
        for start in range(0, len(writes), batch):
            chunk = writes[start : start + batch]
            rows = [updates[i][1] for i in chunk]
            answers.update(zip(chunk, self.client.update(self.module, rows, trigger), strict=True))
        unchanged = RowResult(True, "NO_CHANGE")
        results += [
            _result("field_update", key, answers.get(i, unchanged), self.module)
            for i, (key, _) in enumerate(updates)
        ]
        results += self._upsert_tasks("task", tasks, trigger)
        results += self._apply_memberships(plan.memberships, memberships)
        results += self._upsert_tasks("task_close", closes, trigger)
        return results

    def _upsert_tasks(
        self,
        kind: Literal["task", "task_close"],
        rows: Sequence[tuple[str, dict[str, Any]]],
        trigger: Sequence[str],
    ) -> list[WriteResult]:
        """Tasks rows upserted by crmtier's key field, up to a write batch per call."""
        results: list[WriteResult] = []
        batch = self.config.write_batch
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            outcomes = self.client.upsert(
                TASK_MODULE, [row for _, row in chunk], [self.config.task_key_field], trigger
            )
            results += [
                _result(kind, key, o, TASK_MODULE)
                for (key, _), o in zip(chunk, outcomes, strict=True)
            ]
        return results

    def _update_rows(self, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
        if not plan.field_updates:
            return []
        fields = self.schema(self.module)
        rows = []
        for update in plan.field_updates:
            row: dict[str, Any] = {"id": update.customer_id}
            for output, value in update.fields.items():
                api_name = self.writeback.fields.get(output)
                if api_name is None:
                    raise ConfigError(f"writeback.fields: no Zoho field mapped for {output!r}")
                info = fields.get(api_name)
                if info is None:
                    raise ConfigError(
                        f"writeback.fields.{output}: Zoho {self.module} has no field {api_name!r}"
                    )
                row[api_name] = zoho_value(
                    output,
                    value,
                    info,
                    module=self.module,
                    labels=self.config.picklist_labels.get(output),
                )
            rows.append((update.customer_id, row))
        return rows

    def _task_key_field(self) -> str:
        key_field = self.config.task_key_field
        if key_field not in self.schema(TASK_MODULE):
            raise ConfigError(
                f"crm.task_key_field: Zoho Tasks has no field {key_field!r}; create a unique "
                "single-line field for crmtier's task keys (see crmtier doctor)"
            )
        return key_field

    def _close_rows(self, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
        if not plan.task_closes:
            return []
        key_field = self._task_key_field()
        return [(c.dedupe_key, close_row(c, key_field=key_field)) for c in plan.task_closes]

    def _task_rows(self, plan: WritePlan) -> list[tuple[str, dict[str, Any]]]:
        if not plan.tasks:
            return []
        key_field = self._task_key_field()
        rows = []
        for upsert in plan.tasks:
            task = upsert.task
            owner = task.owner_id or (self.writeback.queues.get(task.queue) if task.queue else None)
            rows.append(
                (
                    task.dedupe_key,
                    task_row(upsert, module=self.module, key_field=key_field, owner_id=owner),
                )
            )
        return rows

    def _membership_groups(self, plan: WritePlan) -> dict[tuple[str, bool], list[str]]:
        groups: dict[tuple[str, bool], list[str]] = {}
        if not plan.memberships:
            return groups
        if self.module not in MEMBER_MODULES:
            raise ConfigError(
                f"mapping.object: Zoho relates only Contacts and Leads to Campaigns, not "
                f"{self.module}; set writeback.campaign_memberships = false"
            )
        for change in plan.memberships:
            campaign_id = self.writeback.campaigns.get(change.campaign)
            if campaign_id is None:
                raise ConfigError(
                    f"writeback.campaigns: no Zoho campaign id for {change.campaign!r}"
                )
            group = groups.setdefault((change.customer_id, change.member), [])
            if campaign_id not in group:
                group.append(campaign_id)
        return groups

    def _apply_memberships(
        self,
        changes: Sequence[MembershipChange],
        groups: Mapping[tuple[str, bool], list[str]],
    ) -> list[WriteResult]:
        outcome: dict[tuple[str, bool, str], RowResult] = {}
        for (customer, member), campaign_ids in groups.items():
            for start in range(0, len(campaign_ids), 100):
                chunk = campaign_ids[start : start + 100]
                answers = (
                    self.client.relate(self.module, customer, chunk, self.config.member_status)
                    if member
                    else self.client.delink(self.module, customer, chunk)
                )
                for campaign_id, answer in zip(chunk, answers, strict=True):
                    outcome[(customer, member, campaign_id)] = answer
        return [
            _result(
                "membership",
                change.dedupe_key,
                outcome[
                    (change.customer_id, change.member, self.writeback.campaigns[change.campaign])
                ],
                "Campaigns",
            )
            for change in changes
        ]

    # --- notification channel -------------------------------------------------------------

    def ensure_channel(
        self,
        notify_url: str,
        channel_id: str,
        token: str | SecretStr,
        *,
        now: datetime | None = None,
    ) -> ChannelStatus:
        """Register the change-notification channel, or renew it when it expires within
        24 h or its URL, events or token differ (W11). Called by ``serve`` on start and
        periodically, and by ``doctor --fix``."""
        now = now or datetime.now(UTC)
        if isinstance(token, SecretStr):
            token = token.get_secret_value()
        desired = ChannelInfo(
            channel_id=str(channel_id),
            events=(f"{self.module}.all",),
            notify_url=notify_url,
            expiry=(now + CHANNEL_LIFETIME).replace(microsecond=0),
            token=token,
        )
        existing = next(
            (c for c in self.client.channels() if c.channel_id == desired.channel_id), None
        )
        if existing is not None and not _needs_renewal(existing, desired, now):
            return ChannelStatus(desired.channel_id, "unchanged", existing.expiry)
        answers = self.client.watch(desired, renew=existing is not None)
        failed = [a for a in answers if not a.ok]
        if failed or not answers:
            problem = failed[0] if failed else RowResult(False, "NO_ANSWER")
            raise ConfigError(
                f"Zoho refused notification channel {desired.channel_id}: {problem.code}"
                f"{' (' + problem.api_name + ')' if problem.api_name else ''}"
            )
        return ChannelStatus(
            desired.channel_id, "renewed" if existing is not None else "created", desired.expiry
        )

    # --- doctor ---------------------------------------------------------------------------

    def check(self) -> list[SchemaCheck]:
        try:
            fields = self.schema(self.module)
        except ConnectorError as exc:
            return [
                SchemaCheck(
                    "zoho: connect and authenticate",
                    False,
                    str(exc),
                    fix="check crm.base_url, crm.accounts_url and the credentials",
                )
            ]
        checks = [SchemaCheck("zoho: connect and authenticate", True, f"module {self.module}")]
        checks += self._check_inputs(fields)
        checks += self._check_outputs(fields)
        checks += self._check_tasks_and_campaigns()
        checks.append(self._check_channel())
        checks.append(check_profile(self.client))
        return checks

    def _check_inputs(self, fields: Mapping[str, FieldInfo]) -> list[SchemaCheck]:
        out = []
        for path, api_name in sorted(self.mapping.fields.items()):
            info = fields.get(api_name)
            typ = CANONICAL_TYPES.get(path)
            if info is None:
                out.append(
                    SchemaCheck(
                        f"mapping {path}",
                        False,
                        f"no field {api_name}",
                        fix=f"create {api_name} in {self.module} or fix [mapping]",
                    )
                )
            elif typ in (int, float) and info.data_type not in NUMERIC:
                out.append(
                    SchemaCheck(
                        f"mapping {path}",
                        False,
                        f"{api_name} is {info.data_type}, expected a number",
                        fix="values that are not numbers become data-quality issues; make it "
                        "an Integer or Decimal field once its values are clean",
                        severity="warning",
                    )
                )
            else:
                out.append(SchemaCheck(f"mapping {path}", True, api_name))
        return out

    def _check_outputs(self, fields: Mapping[str, FieldInfo]) -> list[SchemaCheck]:
        out = []
        for output, api_name in sorted(self.writeback.fields.items()):
            info = fields.get(api_name)
            name = f"writeback {output}"
            if info is None:
                out.append(
                    SchemaCheck(
                        name,
                        False,
                        f"no field {api_name}",
                        fix=f"create {api_name} in {self.module}",
                    )
                )
                continue
            if info.read_only:
                out.append(SchemaCheck(name, False, f"{api_name} is read-only"))
                continue
            labels = self.config.picklist_labels.get(output, {})
            wanted = [labels.get(v, v) for v in OUTPUT_VALUES.get(output, ())]
            missing = missing_values(info, wanted) if info.data_type == "picklist" else []
            if missing:
                out.append(
                    SchemaCheck(
                        name,
                        False,
                        f"{api_name} picklist lacks {', '.join(missing)}",
                        fix="add the values to the picklist or map them in crm.picklist_labels",
                    )
                )
            elif output in self.writeback.restricted:
                out.append(
                    SchemaCheck(
                        name,
                        True,
                        f"{api_name}: restricted output",
                        fix="make sure only compliance profiles can read it",
                        severity="warning",
                    )
                )
            else:
                out.append(SchemaCheck(name, True, api_name))
        return out

    def _check_tasks_and_campaigns(self) -> list[SchemaCheck]:
        out = []
        if self.writeback.tasks:
            key = self.config.task_key_field
            info = self.schema(TASK_MODULE).get(key)
            out.append(
                SchemaCheck(
                    "tasks: dedupe key field",
                    info is not None,
                    f"Tasks.{key}" if info else f"Tasks has no field {key}",
                    fix="" if info else f"create a unique single-line field {key} in Tasks",
                )
            )
        if self.writeback.campaign_memberships and self.writeback.campaigns:
            if self.module not in MEMBER_MODULES:
                out.append(
                    SchemaCheck(
                        "campaigns",
                        False,
                        f"{self.module} cannot be a campaign member",
                        fix="set writeback.campaign_memberships = false",
                    )
                )
                return out
            ids = sorted(set(self.writeback.campaigns.values()))
            found = {
                str(r["id"]) for r in self.client.fetch(CAMPAIGN_MODULE, ids, ["Campaign_Name"])
            }
            missing = [k for k, v in sorted(self.writeback.campaigns.items()) if v not in found]
            out.append(
                SchemaCheck(
                    "campaigns",
                    not missing,
                    f"missing {', '.join(missing)}" if missing else f"{len(ids)} campaigns found",
                    fix="fix writeback.campaigns ids" if missing else "",
                )
            )
        return out

    def _check_channel(self) -> SchemaCheck:
        now = datetime.now(UTC)
        mine = [
            c
            for c in self.client.channels()
            if any(e.startswith(f"{self.module}.") for e in c.events)
        ]
        if not mine:
            return SchemaCheck(
                "notifications: channel",
                False,
                f"no notification channel watches {self.module}",
                fix="run crmtier doctor --fix or crmtier serve",
                severity="warning",
            )
        expiry = min((c.expiry for c in mine if c.expiry), default=None)
        if expiry is None:
            return SchemaCheck("notifications: channel", True, f"{len(mine)} channel(s) active")
        if expiry - now < RENEWAL_OVERDUE:
            return SchemaCheck(
                "notifications: channel",
                True,
                f"expires {expiry:%Y-%m-%d %H:%M} UTC and was not renewed in the last 2 hours",
                fix="keep crmtier serve running: it renews the channel hourly",
                severity="warning",
            )
        return SchemaCheck(
            "notifications: channel",
            True,
            f"{len(mine)} channel(s) active, expires {expiry:%Y-%m-%d %H:%M} UTC "
            "(crmtier serve renews hourly)",
        )

    # --- usage ----------------------------------------------------------------------------

    def api_usage(self) -> ApiUsage:
        return ApiUsage(
            calls=self.client.usage(),
            allowance_used=self.client.budget.used,
            allowance_limit=self.client.budget.limit,
        )

    def close(self) -> None:
        self.client.close()


def _needs_renewal(existing: ChannelInfo, desired: ChannelInfo, now: datetime) -> bool:
    if existing.expiry is None or existing.expiry - now < RENEW_BEFORE:
        return True
    if existing.notify_url != desired.notify_url or set(existing.events) != set(desired.events):
        return True
    return not hmac.compare_digest((existing.token or "").encode(), (desired.token or "").encode())


def _result(kind: WriteKind, key: str, outcome: RowResult, module: str) -> WriteResult:
    if outcome.ok:
        return WriteResult(kind, key, True)
    return WriteResult(
        kind,
        key,
        False,
        error_code=outcome.code,
        message=refusal_text(
            "Zoho",
            outcome.code,
            field=outcome.api_name,
            obj=module,
            advice=RECORD_ADVICE.get(outcome.code),
        ),
        retryable=record_retryable(outcome.code),
    )


def build(
    crm: Mapping[str, Any], mapping: FieldMapping, writeback: WritebackConfig
) -> ZohoConnector:
    return ZohoConnector(load_config(crm), mapping, writeback)
