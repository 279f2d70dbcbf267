"""Keyed pseudonyms: how a customer is named anywhere outside the CRM itself.

Logs, audit rows, run records and dead letters refer to a customer by an HMAC of the CRM id
under a secret key (docs/targets.md S2; PIPL Art. 51 de-identification). The same customer always
gets the same pseudonym under one key, so an operator can follow a customer through the
logs, while a leaked log names nobody without the key.
"""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(customer_id: str, key: bytes) -> str:
    digest = hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"cust_{digest[:20]}"
