"""Named leases in the database: at most one instance at a time does a singleton job.

A lease is a `KeyValue` row (scope "lease") holding its holder and expiry. `acquire()` takes a
free or expired lease, or renews one already held; it is a compare-and-set on the row's
`updated_at`, so when several instances race exactly one wins. A holder that dies stops
renewing and another instance takes over once `ttl` seconds have passed — by the database's
clock (`db.now`), so an instance whose own clock runs ahead cannot take a live lease, nor one
whose clock lags hold a dead one.
"""

from __future__ import annotations

import uuid

from tortoise.exceptions import IntegrityError

from handoff import db
from handoff.models import KeyValue

SCOPE = "lease"


class Lease:
    """One named lease, as seen by one holder (an instance)."""

    def __init__(self, name: str, ttl: float = 15.0, holder: str | None = None) -> None:
        self.name = name
        self.ttl = ttl
        self.holder = holder or uuid.uuid4().hex

    async def acquire(self) -> bool:
        """Take or renew the lease; False when another holder has it and it has not expired."""
        now = await db.now()
        value = {"holder": self.holder, "until": now.timestamp() + self.ttl}
        row = await KeyValue.get_or_none(scope=SCOPE, key=self.name)
        if row is None:
            try:
                await KeyValue.create(scope=SCOPE, key=self.name, value=value)
            except IntegrityError:
                return False
            return True
        current = row.value or {}
        if current.get("holder") != self.holder and float(current.get("until") or 0) > now.timestamp():
            return False
        taken = await KeyValue.filter(id=row.id, updated_at=row.updated_at).update(value=value, updated_at=now)
        return bool(taken)

    async def release(self) -> None:
        """Give the lease up (if held) so another instance can take it at once."""
        row = await KeyValue.get_or_none(scope=SCOPE, key=self.name)
        if row is not None and (row.value or {}).get("holder") == self.holder:
            await KeyValue.filter(id=row.id, updated_at=row.updated_at).delete()
