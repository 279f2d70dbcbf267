"""The state store's tables and their ordered migrations (``sync.migrate`` applies them).

One ``MetaData`` holds every table of the store. Schema versions are kept per *component*
(``sync`` here; the webhook inbox registers its own component with its own migrations), so
each owner evolves its tables without renumbering anyone else's. A migration is a plain
function run inside the transaction that records its version, so a crash mid-upgrade leaves
the old version recorded and the upgrade is simply retried (PostgreSQL has transactional
DDL; on SQLite each migration is written to be safe to repeat). What a step is, and the
reusable DDL steps, are in ``sync/migration_steps.py``; the steps that also fill data are in
``sync/backfill_steps.py`` and ``sync/unanswered_backfill.py``; writing a ``meta`` fact once
is in ``sync/meta_facts.py``.

Timestamps are stored as fixed-width UTC ISO text (``2026-01-01T00:00:00.000000Z``): the
text order is the time order on every backend, which the cursor comparisons rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from sync.backfill_steps import key_audit_chain, run_liveness, task_rules
from sync.crypto import EncryptedJSON, EncryptedText
from sync.migration_steps import Migration, add_column, create_tables, widen_to_text
from sync.unanswered_backfill import mark_unanswered, mark_unanswered_adds

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied_at", sa.String(32), nullable=False),
)

#: small key/value facts: the generated pseudonym key, the audit chain head.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: one row per stream (``<crm>:<object>``): where the next incremental read starts.
bookmarks = sa.Table(
    "bookmarks",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("modstamp", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("read_at", sa.String(32), nullable=False),
    sa.Column("tie_set", sa.JSON, nullable=False),
    sa.Column("state_version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: what crmtier last decided and wrote per customer. ``customer_id`` is the CRM id (needed
#: to act); ``pseudonym`` is how logs and the audit trail name the customer. No raw PII, but
#: ``fields`` and ``pending`` quote amounts in the reasons text: encrypted when the store
#: has a key (``sync/crypto.py``); tier codes stay clear, as in the audit trail.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(32), nullable=False, index=True),
    sa.Column("tiers", sa.JSON, nullable=True),  # value/needs/credit/aml/ops/status
    sa.Column("fields", EncryptedJSON("customers.fields"), nullable=True),  # last written
    sa.Column("assessed_at", sa.String(10), nullable=True),
    sa.Column("below_floor_since", sa.String(10), nullable=True),
    sa.Column("input_hash", sa.String(64), nullable=True),  # of the inputs last assessed
    sa.Column("pending", EncryptedJSON("customers.pending"), nullable=True),  # to be written
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
    # the value of the customer's last ``override`` audit row (None: none, or the last said
    # the override ended), so a row is written when the outcome is new, not on every run
    # (``sync.overrides``); clear, as in the audit trail: tier codes, dates,
    # staff ids and whether a reason was given, never the reason itself
    sa.Column("override", sa.JSON, nullable=True),
)

#: tasks and campaign memberships crmtier has made (key = the deterministic dedupe key).
side_effects = sa.Table(
    "side_effects",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # task | membership
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("campaign", sa.String(64), nullable=True),
    sa.Column("rule", sa.String(64), nullable=True),  # a task's rule (from version 6)
    sa.Column("active", sa.Boolean, nullable=False),
    # a task whose write call went unanswered (version 11): the CRM may hold it open although
    # nothing says it made it; cleared once a write of it is answered (made, or closed)
    sa.Column("in_doubt", sa.Boolean, nullable=True),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("side_effects_by_customer", "stream", "customer_id"),
)

#: the inputs each customer was last assessed on (its canonical profile, without
#: ``previous``) and the CRM's write-back values as read then, so ``crmtier simulate`` can
#: re-assess the book and ``crmtier explain`` can show what a decision rested on without
#: reading the CRM again. Amounts are customer data: encrypted when the store has a key.
assessed_inputs = sa.Table(
    "assessed_inputs",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("profile", EncryptedText("assessed_inputs.profile"), nullable=False),  # JSON
    sa.Column("current", EncryptedJSON("assessed_inputs.current"), nullable=False),
    sa.Column("as_of", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: planned CRM writes, recorded in the same transaction that advances the bookmark past the
#: records they come from, drained in full batches, marked done with the state they change.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # field_update|task|membership|task_close
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("payload", EncryptedJSON("outbox.payload"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|done|dead|superseded
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.String(200), nullable=True),
    # some call of it went unanswered (version 11): whatever later attempts answered, the
    # CRM may have applied it (``outbox.may_have_landed``)
    sa.Column("unanswered", sa.Boolean, nullable=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("source_event_id", sa.String(200), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("outbox_open", "stream", "status", "id"),
    sa.Index("outbox_by_customer", "stream", "customer_id", "status"),
)

#: per-item failures that outlived their retries; retried on every run until they succeed
#: or an operator acknowledges them.
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("pseudonym", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("reason", EncryptedText("dead_letters.reason"), nullable=False),  # CRM's words
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open|resolved|superseded|acked
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("first_at", sa.String(32), nullable=False),
    sa.Column("last_at", sa.String(32), nullable=False),
    sa.Index("dead_letters_open", "stream", "status", "customer_id"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("api_calls", sa.JSON, nullable=False),
    sa.Column("min_calls", sa.JSON, nullable=True),  # docs/targets.md P1, by kind (None: older run)
    sa.Column("error", sa.String(500), nullable=True),
    # who runs it (``sync.claims.owner_id``: host, pid, thread) and until when it is known
    # alive (epoch seconds of the database clock, renewed by the run's heartbeat): a
    # ``running`` record whose owner stopped renewing it is a dead run's (``sync.runs``)
    sa.Column("owner", sa.String(120), nullable=True),
    sa.Column("expires_at", sa.Float(53), nullable=True),
    sa.Index("runs_by_stream", "stream", "started_at"),
    # the records still running, looked at as every run and webhook pass starts
    sa.Index("runs_by_status", "stream", "status"),
)

#: append-only, hash-chained (``hash = HMAC-SHA256(audit key, prev_hash + canonical row)``,
#: the key named by ``key_id``; rows of before version 5: unkeyed SHA-256, ``key_id`` NULL).
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("customer_ref", sa.String(32), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # sync.audit.AuditEvent
    sa.Column("old", sa.JSON, nullable=True),
    sa.Column("new", sa.JSON, nullable=True),
    sa.Column("reason_codes", sa.JSON, nullable=False),
    sa.Column("policy_version", sa.String(80), nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("source_event_id", sa.String(200), nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

#: tasks beyond their rule's per-run budget or per-owner cap (``waiting``, revisited by the
#: next run), and bounded tasks crmtier made (``made``, counted as open until due). No
#: personal data: ids, rule, owner (a CRM user id), priority rank, due date.
task_queue = sa.Table(
    "task_queue",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),  # the task's dedupe key
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("owner_id", sa.String(64), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),  # 0 high, 1 normal, 2 low
    sa.Column("due", sa.String(10), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # waiting | made
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("task_queue_waiting", "stream", "status", "priority", "due"),
    sa.Index("task_queue_by_customer", "stream", "customer_id"),
)

#: each customer's household memberships as the sync last read them from the CRM, so a
#: member leaving a household or a split re-tiers the household it left (``sync.households``)
#: and ``crmtier simulate`` and ``explain`` decide households without a CRM call. The role
#: (spouse, child, ...) is family information: encrypted when the store has a key.
household_links = sa.Table(
    "household_links",
    metadata,
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("role", EncryptedText("household_links.role"), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("household_links_by_household", "stream", "household_id"),
)

#: leases that keep two schedulers from syncing the same stream at once.
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(160), primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("host", sa.String(120), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
)


def utc_text(ts: datetime) -> str:
    """Fixed-width, sortable UTC text of ``ts`` (naive values are taken as UTC)."""
    if ts.tzinfo is UTC:  # every record's modstamp (a page's claims write each one's text):
        # its own isoformat, the "+00:00" cut, the same text without the two datetimes the
        # conversion below makes (tests/sync/test_utc_text.py holds it to that path)
        return ts.isoformat(timespec="microseconds")[:-6] + "Z"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    # isoformat writes the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") some six times
    # faster (every record's modstamp passes here); it also pads a year below 1000
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def now_text() -> str:
    return utc_text(datetime.now(UTC))


#: ``meta`` key of the last row of the unkeyed audit prefix (``sync/audit.py`` seals it)
AUDIT_UNKEYED_UPTO = "audit_unkeyed_upto"


#: the sync component's migrations, in order. Append; never edit a released step.
SYNC_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial sync state: bookmarks, customers, side effects, outbox, dead letters, "
        "runs, audit, meta, locks",
        create_tables(
            meta, bookmarks, customers, side_effects, outbox, dead_letters, runs, audit, locks
        ),
    ),
    Migration(
        2,
        "customers.input_hash: a record that comes back only because of our own write "
        "(same inputs, same day, CRM shows what we wrote) is not assessed again",
        add_column(customers, "input_hash"),
    ),
    Migration(
        3,
        "runs.min_calls: the run's minimum API calls by kind, computed with the CRM's own "
        "call shape (memberships may cost one call per contact), so reports need not guess",
        add_column(runs, "min_calls"),
    ),
    Migration(
        4,
        "dead_letters.reason as text: the CRM's message can quote a rejected value, so it is "
        "encrypted when the store has a key, and its ciphertext outgrows 300 characters",
        widen_to_text(dead_letters, "reason"),
    ),
    Migration(
        5,
        "audit.key_id: the chain is keyed (HMAC-SHA256) from here on, so whoever can write "
        "the database cannot edit a row and recompute the chain; the rows written before "
        "stay verifiable as an unkeyed prefix, whose end is recorded in meta (sealed with "
        "the key by the store right after this step)",
        key_audit_chain(audit, meta, AUDIT_UNKEYED_UPTO),
    ),
    Migration(
        6,
        "side_effects.rule: the rule that made each task, so a sanctions hit can withdraw "
        "the customer's open sales tasks (made in any earlier run) in the same run; filled "
        "from the audit trail for tasks made before",
        task_rules(side_effects, audit),
    ),
    Migration(
        7,
        "task_queue: tasks waiting beyond their rule's per-run budget or per-owner cap, "
        "and the bounded tasks made (open until due), so task volume stays bounded",
        create_tables(task_queue),
    ),
    Migration(
        8,
        "household_links: each customer's households as last read, so a member leaving a "
        "household re-tiers the household it left in the same run, and simulate and "
        "explain decide households from the store",
        create_tables(household_links),
    ),
    Migration(
        9,
        "runs.owner and runs.expires_at: each run record names its process and is kept "
        "alive by a heartbeat, so a later run or webhook pass marks a killed webhook pass "
        "failed (interrupted) instead of leaving it running forever, and never a live one; "
        "runs_by_status: the running records are looked for as every run and pass starts",
        run_liveness(runs),
    ),
    Migration(
        10,
        "customers.override: the last override audit row's value per customer, so an "
        "override row is written whenever the override's outcome is new (a refusal or an "
        "applied override that leaves the tiers as they were too), once, not on every run; "
        "stores of before start with none recorded, so an override still in the CRM gets "
        "its row once on the first run after the upgrade",
        add_column(customers, "override"),
    ),
    Migration(
        11,
        "outbox.unanswered and side_effects.in_doubt: a task whose write call went "
        "unanswered stays in doubt (the CRM may hold it) until a write of it is answered, "
        "so a sanctions hit closes it whatever became of its dead letter; filled from the "
        "writes whose last call went unanswered and those pending after an attempt",
        mark_unanswered(outbox, side_effects, now_text),
    ),
    Migration(
        12,
        "side_effects.in_doubt for membership adds: an add whose call went unanswered "
        "before version 11 (which marked tasks only) is in doubt too, so a sanctions hit "
        "removes it; filled from the outbox rows version 11 flagged unanswered",
        mark_unanswered_adds(outbox, side_effects, now_text),
    ),
)


#: the assessed-inputs component's migrations: its own component, so its steps never
#: renumber the sync component's (``sync.inputs.ensure_table`` applies them).
INPUTS_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "assessed_inputs: the inputs each customer was last assessed on, for simulate and explain",
        create_tables(assessed_inputs),
    ),
)
