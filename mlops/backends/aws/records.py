"""Release records and the promotion lock of the aws backend: items of the DynamoDB releases table.

Key schema (infra/dynamodb.tf): pk/sk. A release is pk = "STAGE#<stage>", sk = "RELEASE#<id>",
written only by the holder of the stage's lock (pk = "LOCK#<stage>", sk = "LOCK";
mlops/backends/aws/lease.py), in one transaction with a check that the lock is still its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mlops.backends.aws.config import AwsClients, aws_call, error_code
from mlops.backends.aws.lease import StageLock
from mlops.backends.base import BackendError, LockLostError, Release


class ReleaseTable(StageLock):
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
        lease = self.lease
        if lease is None:
            raise BackendError(f"release {release.release_id}: records are written under the {self.stage} release lock")
        held = {
            "TableName": self.table,
            "Key": self.lock_key,
            "ConditionExpression": "lock_token = :token",
            "ExpressionAttributeValues": {":token": {"S": lease.token}},
        }
        with aws_call(f"saving release {release.release_id} in {self.table}"):
            try:
                self.db.transact_write_items(
                    TransactItems=[{"ConditionCheck": held}, {"Put": {"TableName": self.table, "Item": item}}]
                )
            except ClientError as exc:
                reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
                if error_code(exc) == "TransactionCanceledException" and reasons[:1] == ["ConditionalCheckFailed"]:
                    lease.taken_by = lease.taken_by or self._holder()
                    raise LockLostError(
                        f"release {release.release_id} not saved: the {self.stage} release lock is now held by "
                        f"{lease.taken_by}",
                        taken=True,
                    ) from exc
                raise

    def qualify(self, release: Release) -> None:
        """A qualification of another stage's release, in this stage's table (pk QUALIFIED#<this stage>): the
        table's writers are this stage's release roles, so no role of the stage before can forge one."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        item = {
            "pk": {"S": f"QUALIFIED#{self.stage}"},
            "sk": {"S": f"RELEASE#{release.release_id}#{at}"},
            "release_id": {"S": release.release_id},
            "data": {"S": json.dumps(release.to_dict(), sort_keys=True, default=str)},
        }
        with aws_call(f"recording the qualification of {release.stage} release {release.release_id} in {self.table}"):
            self.db.put_item(TableName=self.table, Item=item)

    def qualifications(self) -> list[Release]:
        return self._query(f"QUALIFIED#{self.stage}")

    def all(self) -> list[Release]:
        return self._query(f"STAGE#{self.stage}")

    def _query(self, pk: str) -> list[Release]:
        releases = []
        with aws_call(f"reading releases from {self.table}"):
            pages = self.db.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": "RELEASE#"}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    data = json.loads(item["data"]["S"])
                    known = {k: v for k, v in data.items() if k in Release.__dataclass_fields__}
                    releases.append(Release(**known))
        return sorted(releases, key=lambda r: (r.started, r.release_id))
