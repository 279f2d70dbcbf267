"""What one write call's outcome means for its items: the pool's classification of an
``apply()`` that answered, failed as a whole, or answered out of shape (``WritePool``).

A call is answered per item (the connector's results), or not at all: then either the
CRM made nothing (``UNSENT``: refused outright before any CRM call of its plan left) or
it may have made some of it (``UNANSWERED``, kept in doubt), or, once a call of the plan
left before a stop error, ``STOPPED`` per item (unanswered, no attempt counted:
``sync.records.STOPPED``). A failure as a whole also says how the run stops (``Stop``).
Kept apart from the pool's queueing and threads: a pure function of the call's items,
its future and the CRM calls it made, table-tested on its own.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from connectors.contract import WriteResult
from connectors.errors import (
    UNANSWERED,
    AuthExpiredError,
    ConfigError,
    RateLimitedError,
    ReadOnlyError,
    TransientError,
)
from sync.errortext import error_text
from sync.outbox import OutboxItem
from sync.records import STOPPED, Stop

#: the answer given a withdrawn write (``WritePool.withdrawn``) whose call never left, or
#: was refused as a whole: it made nothing in the CRM
UNSENT = "UNSENT"

#: the answer given every item of a plan a failure nobody foresaw (a connector's bug) ended
#: before any CRM call of it left: the CRM made nothing (not in doubt), yet the failure may
#: be the plan's own, so its attempt counts and it is dead-lettered once out of attempts
#: rather than failing every run at the same plan, the tenant's sync stuck behind it
FAILED_UNSENT = "FAILED_BEFORE_SENDING"

#: A call refused as a whole, by the CRM or by crmtier's own guards, before it could make
#: anything: it halts the pool (the calls behind it would be refused alike) and, when no
#: call of its plan left, its items are exact unsent. One tuple for both, so that a new
#: kind of refusal (``ReadOnlyError`` came later) cannot halt the pool yet count as
#: possibly made.
REFUSED_OUTRIGHT = (RateLimitedError, ReadOnlyError, AuthExpiredError, ConfigError)


@dataclass(frozen=True)
class CallAnswer:
    """One result per item (``results``), or none (``results`` None: the items go back
    in the queue, those withdrawn answered ``code``/``message``); ``stop``: how the run
    stops, when the call says it must."""

    results: list[WriteResult] | None
    code: str = ""
    message: str = ""
    stop: Stop | None = None


def answer_of(items: list[OutboxItem], future: Future[list[WriteResult]], calls: int) -> CallAnswer:
    """The answer of a call that left (not withdrawn unsent), having made ``calls`` CRM
    calls (``CallTally`` of its plan)."""
    try:
        results = future.result()
    except TransientError as exc:
        return CallAnswer(
            [WriteResult(i.kind, i.key, False, UNANSWERED, str(exc), retryable=True) for i in items]
        )
    except Exception as exc:
        return _failed(items, exc, calls)
    if len(results) != len(items):
        stop = Stop("failed", f"connector answered {len(results)} results for {len(items)} writes")
        return CallAnswer(None, UNANSWERED, "the connector's answer did not fit", stop)
    return CallAnswer(results)


def _failed(items: list[OutboxItem], exc: Exception, calls: int) -> CallAnswer:
    """A call that failed as a whole and stops the run (quota, read-only, login,
    configuration, anything unforeseen) after making ``calls`` CRM calls. One apply()
    is several calls: its membership adds may be made when its removals' call is
    refused. So once any call of it left (``calls``), every item is answered
    ``STOPPED``: unanswered, possibly made, in doubt on record (``AnswerBatch``), a
    re-send a resend, a later sanctions hit removing or closing what it may have made,
    no attempt counted (an unforeseen failure: ``UNANSWERED``, its attempt counted).
    Put back as never sent, the adds were forgotten: superseded by a hit's plan as
    exact, their membership never removed. Only a plan refused before any call left
    (the quota guard, a login refused first) is exact; an unforeseen failure before any
    call left is ``FAILED_UNSENT``, its attempt counted. A call the CRM itself refuses is
    counted too (it went out, as does one whose answer was lost: connectors count a
    call as it is sent), so such a plan is in doubt even when that was its first call:
    a look-up more on its re-send, never a membership forgotten."""
    text = error_text(exc)
    stop = stop_for(exc)
    refused = isinstance(exc, REFUSED_OUTRIGHT)
    if calls:
        # an unforeseen failure may be the plan's own (a connector choking on its answer):
        # unanswered with an attempt counted, so that it dead-letters in the end rather
        # than fail every run at the same plan; a refusal says nothing against the write
        code = STOPPED if refused else UNANSWERED
        results = [WriteResult(i.kind, i.key, False, code, text, retryable=True) for i in items]
        return CallAnswer(results, stop=stop)
    if not refused:  # nothing left, yet nothing says the plan is not its cause
        results = [
            WriteResult(i.kind, i.key, False, FAILED_UNSENT, text, retryable=True) for i in items
        ]
        return CallAnswer(results, stop=stop)
    return CallAnswer(None, UNSENT, text, stop)


def stop_for(exc: BaseException) -> Stop:
    """How a write call that failed as a whole stops the run."""
    if isinstance(exc, RateLimitedError):
        return Stop("paused_quota", f"CRM quota or rate limit: {exc}")
    if isinstance(exc, ReadOnlyError):  # hours of maintenance: the next run sends the writes
        message = f"CRM is read-only, writes kept for the next run: {exc}"
        return Stop("paused_quota", message, read_only=True)
    if isinstance(exc, AuthExpiredError | ConfigError):
        return Stop("failed", error_text(exc), config=isinstance(exc, ConfigError))
    return Stop("failed", f"write call failed: {error_text(exc)}")
