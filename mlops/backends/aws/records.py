"""Release records and the promotion lock of the aws backend: items of the DynamoDB releases table.

Key schema (infra/dynamodb.tf): pk/sk. A release is pk = "STAGE#<stage>", sk = "RELEASE#<id>";
the lock is pk = "LOCK#<stage>", sk = "LOCK", taken with a conditional write and an expires_at
lease (also the table's TTL attribute) that its holder renews while alive, and released by a
delete conditioned on its token.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.backends.aws.config import AwsClients, aws_call, error_code
from mlops.backends.base import BackendError, LockBusyError, Release

CONDITION_FAILED = "ConditionalCheckFailedException"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class ReleaseTable:
    """One stage's releases and its lock in the releases table."""

    def __init__(
        self,
        clients: AwsClients,
        table: str,
        stage: str,
        lock_ttl_s: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 5.0,
    ) -> None:
        self.clients = clients
        self.table = table
        self.stage = stage
        self.lock_ttl_s = lock_ttl_s
        self.clock = clock
        self.sleep = sleep
        self.poll_s = poll_s

    @property
    def db(self) -> Any:
        return self.clients.get("dynamodb")

    @property
    def lock_key(self) -> dict[str, Any]:
        return {"pk": {"S": f"LOCK#{self.stage}"}, "sk": {"S": "LOCK"}}

    # --- releases --------------------------------------------------------------------------------
    def save(self, release: Release) -> None:
        item = {
            "pk": {"S": f"STAGE#{release.stage}"},
            "sk": {"S": f"RELEASE#{release.release_id}"},
            "release_id": {"S": release.release_id},
            "model_version": {"S": str(release.model_version)},
            "release_status": {"S": release.status},
            "started": {"S": release.started or ""},
            "data": {"S": json.dumps(release.to_dict(), sort_keys=True, default=str)},
        }
        with aws_call(f"saving release {release.release_id} in {self.table}"):
            self.db.put_item(TableName=self.table, Item=item)

    def all(self) -> list[Release]:
        releases = []
        with aws_call(f"reading releases from {self.table}"):
            pages = self.db.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": f"STAGE#{self.stage}"}, ":prefix": {"S": "RELEASE#"}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    data = json.loads(item["data"]["S"])
                    known = {k: v for k, v in data.items() if k in Release.__dataclass_fields__}
                    releases.append(Release(**known))
        return sorted(releases, key=lambda r: (r.started, r.release_id))

    # --- lock ------------------------------------------------------------------------------------
    def _holder(self) -> str:
        try:
            item = self.db.get_item(TableName=self.table, Key=self.lock_key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError):
            item = None
        if not item:
            return "another promotion or rollback"
        owner = item.get("owner", {}).get("S", "?")
        acquired = item.get("acquired", {}).get("S", "?")
        expires = _iso(float(item.get("expires_at", {}).get("N", "0")))
        return f"{owner} (since {acquired}, expires {expires})"

    def _take(self, owner: str, token: str) -> bool:
        """One conditional write: True when the lock is ours (free, or its holder's lease ran out)."""
        now = self.clock()
        try:
            self.db.put_item(
                TableName=self.table,
                Item={
                    **self.lock_key,
                    "owner": {"S": owner},
                    "lock_token": {"S": token},
                    "acquired": {"S": _iso(now)},
                    "expires_at": {"N": str(int(now) + self.lock_ttl_s)},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise BackendError(f"taking the {self.stage} release lock in {self.table}: {exc}") from exc
        except BotoCoreError as exc:
            raise BackendError(f"taking the {self.stage} release lock in {self.table}: {exc}") from exc
        return True

    def _renew(self, token: str) -> None:
        """Extend our lease; a failure is left to the next beat (the lease outlives two missed beats)."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self.db.update_item(
                TableName=self.table,
                Key=self.lock_key,
                UpdateExpression="SET expires_at = :exp",
                ConditionExpression="lock_token = :token",
                ExpressionAttributeValues={
                    ":exp": {"N": str(int(self.clock()) + self.lock_ttl_s)},
                    ":token": {"S": token},
                },
            )

    @contextlib.contextmanager
    def lock(self, owner: str, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the stage's release lock: a lease renewed every third of LOCK_TTL_SECONDS while held.

        A live holder is waited for, up to `wait_s`; a holder that died (hard kill, lost runner) stops
        renewing, and its lock is taken over once its lease runs out."""
        token = uuid.uuid4().hex
        deadline = self.clock() + wait_s
        while not self._take(owner, token):
            if self.clock() >= deadline:
                raise LockBusyError(f"the {self.stage} release lock is held by {self._holder()}")
            self.sleep(max(0.0, min(self.poll_s, deadline - self.clock())))
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(token, stop), name="release-lock-lease", daemon=True)
        beat.start()
        try:
            yield
        except BaseException:
            stop.set()
            self._release(token, quiet=True)  # the body's error is the one to report
            raise
        finally:
            stop.set()
        self._release(token, quiet=False)

    def _beat(self, token: str, stop: threading.Event) -> None:
        while not stop.wait(max(1.0, self.lock_ttl_s / 3)):
            self._renew(token)

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
            # CONDITION_FAILED: the lock expired and was taken over, it is no longer ours to release.
            if error_code(exc) != CONDITION_FAILED and not quiet:
                raise BackendError(f"releasing the {self.stage} release lock (it expires by itself): {exc}") from exc
