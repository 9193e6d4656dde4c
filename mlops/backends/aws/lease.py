"""The stage's release lock on the aws backend: a lease in the releases table that fails safe.

The lock item (pk = "LOCK#<stage>", sk = "LOCK") names its holder, a token, the lease's TTL and a
`lease` counter that the holder increments every third of the TTL. Nobody compares clocks:

- taking over: a waiter takes the lock from another holder only after seeing the same token and
  counter for a whole TTL on its own monotonic clock (a conditional write on both), so a skewed
  clock cannot steal a live lock. The holder's `expires_at` (its wall clock; also the table's TTL
  attribute) only decides whether a waiter whose wait ran out keeps watching a lease that looks stale;
- losing it: a renewal refused because the token changed means the lock was taken over; renewals
  failing for half the TTL mean it may soon be. Either way `check_lease()` stops the holder at its
  next step (LockLostError). A holder whose lock was taken (or whose lease went unrenewed for a whole
  TTL) changes nothing more; one whose renewals fail may still restore what it changed meanwhile;
- the holder's record writes carry its token (ReleaseTable.save: a transaction with a condition on
  the lock item), so a holder that lost the lock cannot write a record.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws.config import error_code
from mlops.backends.base import BackendError, LockBusyError, LockLostError, StageNotDeployed

CONDITION_FAILED = "ConditionalCheckFailedException"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass
class Lease:
    """What the holder knows of its lease while it holds the lock."""

    token: str
    ttl_s: float
    renewed: float  # monotonic time of the last successful write of the lease
    taken_by: str = ""
    stopping: bool = False  # the holder was told once; from then on only a takeover stops it


class StageLock:
    """The lock methods of ReleaseTable (mlops/backends/aws/records.py)."""

    db: Any
    table: str
    stage: str
    lock_ttl_s: int
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    poll_s: float
    monotonic: Callable[[], float] = staticmethod(time.monotonic)
    lease: Lease | None = None

    @property
    def lock_key(self) -> dict[str, Any]:
        return {"pk": {"S": f"LOCK#{self.stage}"}, "sk": {"S": "LOCK"}}

    def _read_lock(self) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] | None = self.db.get_item(
                TableName=self.table, Key=self.lock_key, ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise BackendError(f"reading the {self.stage} release lock in {self.table}: {exc}") from exc
        return item

    @staticmethod
    def _describe(item: dict[str, Any] | None) -> str:
        if not item:
            return "another promotion or rollback"
        owner = item.get("owner", {}).get("S", "?")
        acquired = item.get("acquired", {}).get("S", "?")
        return f"{owner} (since {acquired}, lease {item.get('lease', {}).get('N', '?')})"

    def _holder(self) -> str:
        try:
            return self._describe(self._read_lock())
        except BackendError:
            return "another promotion or rollback"

    def _put(self, owner: str, token: str, replacing: tuple[str, str] | None) -> bool:
        """One conditional write: True when the lock is now ours (it was free, or `replacing` is still its lease)."""
        now = self.clock()
        item = {
            **self.lock_key,
            "owner": {"S": owner},
            "lock_token": {"S": token},
            "lease": {"N": "0"},
            "ttl_s": {"N": str(self.lock_ttl_s)},
            "acquired": {"S": _iso(now)},
            "expires_at": {"N": str(int(now) + self.lock_ttl_s)},
        }
        if replacing is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        elif replacing[1]:
            condition = {
                "ConditionExpression": "lock_token = :token AND lease = :lease",
                "ExpressionAttributeValues": {":token": {"S": replacing[0]}, ":lease": {"N": replacing[1]}},
            }
        else:  # a lock item written without a lease counter
            condition = {
                "ConditionExpression": "lock_token = :token AND attribute_not_exists(lease)",
                "ExpressionAttributeValues": {":token": {"S": replacing[0]}},
            }
        try:
            self.db.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            if error_code(exc) == "ResourceNotFoundException":
                raise StageNotDeployed(
                    f"{self.stage} has no release table {self.table}: its stack is not applied"
                ) from exc
            raise BackendError(f"taking the {self.stage} release lock in {self.table}: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"taking the {self.stage} release lock in {self.table}: {exc}") from exc
        return True

    def _acquire(self, owner: str, token: str, wait_s: float) -> None:
        """Wait for a live holder up to `wait_s`; take over a lease that stays unchanged for its TTL."""
        start = self.monotonic()
        seen: tuple[str, str] | None = None
        since, alive = start, False
        while not self._put(owner, token, None):
            item = self._read_lock()
            if not item:
                continue  # released meanwhile: try again at once
            now = self.monotonic()
            key = (item.get("lock_token", {}).get("S", ""), item.get("lease", {}).get("N", ""))
            ttl = float(item.get("ttl_s", {}).get("N", self.lock_ttl_s))
            if key != seen:
                alive, seen, since = seen is not None, key, now  # a renewal or a new holder: someone is alive
            elif now - since >= ttl:
                if self._put(owner, token, key):
                    return  # its holder stopped renewing a whole TTL ago, by our own clock
                continue
            looks_live = float(item.get("expires_at", {}).get("N", "0")) > self.clock()
            if now - start >= wait_s and (alive or looks_live):
                raise LockBusyError(f"the {self.stage} release lock is held by {self._describe(item)}")
            step = min(self.poll_s, ttl - (now - since))
            if wait_s - (now - start) > 0:  # still within the wait: not past its end
                step = min(step, wait_s - (now - start))
            self.sleep(max(0.05, step))

    def _renew(self, lease: Lease) -> None:
        """Increment our lease. Refused because the token changed: taken over. Other failures: retried."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self.lock_key,
                UpdateExpression="SET expires_at = :exp, lease = lease + :one",
                ConditionExpression="lock_token = :token",
                ExpressionAttributeValues={
                    ":exp": {"N": str(int(self.clock()) + self.lock_ttl_s)},
                    ":token": {"S": lease.token},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                lease.taken_by = self._holder()
            return
        except BotoCoreError:
            return
        lease.renewed = self.monotonic()

    def _beat(self, lease: Lease, stop: threading.Event) -> None:
        while not stop.wait(max(1.0, self.lock_ttl_s / 3)) and not lease.taken_by:
            self._renew(lease)

    def check_lease(self) -> None:
        """Raise LockLostError when the lock was taken over, or (once) when its renewals have failed for
        half the TTL: the holder stops at this step. No-op outside the lock."""
        lease = self.lease
        if lease is None:
            return
        if lease.taken_by:
            raise LockLostError(
                f"the {self.stage} release lock was taken over by {lease.taken_by}: this release changes "
                "nothing more (the holder checks what is served)",
                taken=True,
            )
        silent = self.monotonic() - lease.renewed
        if silent >= lease.ttl_s:  # unchanged for a whole TTL: a waiter may have taken it over by now
            raise LockLostError(
                f"the {self.stage} release lock's lease was not renewed for {silent:.0f} s, its whole TTL: another "
                "holder may have it, so this release changes nothing more",
                taken=True,
            )
        if not lease.stopping and silent > lease.ttl_s / 2:
            lease.stopping = True
            raise LockLostError(
                f"the {self.stage} release lock's lease was not renewed for {silent:.0f} s (TTL {lease.ttl_s:g} s): "
                "the release stops before another holder may take over",
                taken=False,
            )

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the stage's release lock (see the module's docstring)."""
        token = uuid.uuid4().hex
        self._acquire(owner, token, wait_s)
        lease = Lease(token, float(self.lock_ttl_s), self.monotonic())
        self.lease = lease
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(lease, stop), name="release-lock-lease", daemon=True)
        beat.start()
        try:
            yield
        except BaseException:
            stop.set()
            self._release(token, quiet=True)  # the body's error is the one to report
            raise
        finally:
            stop.set()
            self.lease = None
        self._release(token, quiet=False)

    def _release(self, token: str, quiet: bool) -> None:
        try:
            self.db.delete_item(
                TableName=self.table,
                Key=self.lock_key,
                ConditionExpression="lock_token = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except BotoCoreError as exc:
            if not quiet:
                raise BackendError(f"releasing the {self.stage} release lock (it expires by itself): {exc}") from exc
        except ClientError as exc:
            # CONDITION_FAILED: the lock was taken over, it is no longer ours to release.
            if error_code(exc) != CONDITION_FAILED and not quiet:
                raise BackendError(f"releasing the {self.stage} release lock (it expires by itself): {exc}") from exc
