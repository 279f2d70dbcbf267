"""The FXiaoke sandbox's record locks (锁定): "Lock Object" and "Unlock Object", and the
refused update of a locked record.

Documented (developer.fxiaoke.com/openapi_v2/en/common/system/lock/lock.html and
…/unlock.html): ``POST /cgi/crm/v2/object/lock`` (``/unlock``) with ``data``
``{dataObjectApiName, dataIds: [...], detailObjStrategy}``, answered with the bare success
envelope. A locked record holds ``lock_status`` ``"1"`` (``"0"`` unlocked; FXiaoke's own
``LockStatus`` constants). A record under approval is ``life_status`` ``under_review`` or
``in_change``.

Not documented: the error code of an update refused because the record is locked. The
sandbox answers ``lock_refusal_code`` (default 32000, 参数错误, the generic code FXiaoke
answers for a refused write), settable so tests show a client does not depend on the code.
``skipDataStatusValidate: true`` in the update's ``data`` writes through the lock, as the
parameter's name says; crmtier never sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.sandbox.fxiaoke_auth import ApiError
from connectors.sandbox.server import Request, Router

LOCKED, UNLOCKED = "1", "0"
#: What the sandbox answers a locked record's update with until a test says otherwise.
DEFAULT_REFUSAL_CODE = 32000
#: ``life_status`` values of a record an approval flow holds.
UNDER_APPROVAL = frozenset({"under_review", "in_change"})


def lock_refusal(sandbox: Any, record: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """Raise the sandbox's refusal when an update (``data``) meets a locked ``record``."""
    if data.get("skipDataStatusValidate") is True:
        return
    locked = str(record.get("lock_status", UNLOCKED)) == LOCKED
    if locked or record.get("life_status") in UNDER_APPROVAL:
        raise ApiError(sandbox.lock_refusal_code, "数据已锁定，不能编辑 (the record is locked)")


def set_lock(sandbox: Any, obj: str, record_ids: list[str], value: str) -> None:
    """Lock (``"1"``) or unlock (``"0"``) records; an unknown id is refused (32000)."""
    missing = [rid for rid in record_ids if not sandbox.store.exists(obj, rid)]
    if missing:
        raise ApiError(32000, f"数据 {missing[0]} 不存在")
    for rid in record_ids:
        sandbox.store.update(obj, rid, {"lock_status": value})


def install_fxiaoke_lock(sandbox: Any, router: Router, wrap: Callable[..., Any]) -> None:
    """The two lock endpoints, behind ``wrap``: the sandbox's usual checks."""

    def handler(value: str) -> Callable[..., Any]:
        def serve(request: Request, body: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
            obj = data.get("dataObjectApiName")
            ids = data.get("dataIds")
            if obj not in sandbox.objects:
                raise ApiError(15002, f"对象 {obj} 不存在")
            if not isinstance(ids, list) or not ids:
                raise ApiError(10001, "缺少参数dataIds")
            set_lock(sandbox, str(obj), [str(i) for i in ids], value)
            return {}

        return serve

    router.add("POST", "/cgi/crm/v2/object/lock", wrap(handler(LOCKED)), "lock")
    router.add("POST", "/cgi/crm/v2/object/unlock", wrap(handler(UNLOCKED)), "unlock")
