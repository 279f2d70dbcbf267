"""Each Person Account's Person Contact, as the reads saw it: what a campaign membership
names (a CampaignMember takes a ContactId; a Person Account's is its PersonContactId)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class PersonContacts:
    """Account id → its Person Contact id (None for a business account), for the records
    read most recently: a membership write usually follows the page that was just read, so
    a bounded cache saves the look-up without holding a million ids."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, str | None] = OrderedDict()
        # The sync engine applies plans from several threads while the reader fills this.
        self._lock = threading.Lock()

    def __setitem__(self, account_id: str, contact_id: str | None) -> None:
        self.update(((account_id, contact_id),))

    def update(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        """Many at once (a page read), in order, under one lock."""
        with self._lock:
            ids = self._ids
            for account_id, contact_id in pairs:
                ids[account_id] = contact_id
                ids.move_to_end(account_id)
            while len(ids) > self.capacity:
                ids.popitem(last=False)

    def __contains__(self, account_id: object) -> bool:
        with self._lock:
            return account_id in self._ids

    def get(self, account_id: str) -> str | None:
        with self._lock:
            return self._ids.get(account_id)
