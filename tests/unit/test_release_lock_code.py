"""`mlops lambda update-code` under the stage's release lock, and versions published only with the code their
release read (PublishVersion's CodeSha256): two runs never publish each other's code. moto, like test_aws_cli."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_support import PREFIX, STAGE, Stack, approved_stack
from botocore.awsrequest import AWSResponse
from test_aws_cli import run
from test_aws_release import smoke

from mlops.backends.aws.front import package_sha256
from mlops.release import PromotionFailed, promote
from mlops.smoke import SmokeConfig

FUNCTION = f"{PREFIX}-classify-api"
TABLE = f"{PREFIX}-releases"
LOCK = {"pk": {"S": f"LOCK#{STAGE}"}, "sk": {"S": "LOCK"}}


stack = pytest.fixture(name="stack")(approved_stack)


def package(marker: str) -> bytes:
    """A function package whose handler differs by `marker` (so its CodeSha256 does)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classify_api/handler.py", f"# {marker}\ndef lambda_handler(event, context):\n    return {{}}\n")
    return buf.getvalue()


def latest_code(stack: Stack) -> str:
    return stack.client("lambda").get_function_configuration(FunctionName=FUNCTION)["CodeSha256"]


def lock_owner(stack: Stack) -> str | None:
    item = stack.client("dynamodb").get_item(TableName=TABLE, Key=LOCK, ConsistentRead=True).get("Item")
    return item["owner"]["S"] if item else None


def versions(stack: Stack) -> list[str]:
    return [v["Version"] for v in stack.client("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_update_code_refuses_while_a_live_holder_has_the_lock(stack: Stack, tmp_path: Path) -> None:
    zipped = tmp_path / "lambda.zip"
    zipped.write_bytes(package("new"))
    before = latest_code(stack)
    with stack.backend.lock("promote by alice"):  # a promotion under way (LOCK_WAIT_SECONDS=0: no wait)
        refused = run("lambda", "update-code", "--zip", str(zipped), "--stage", "staging")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "the staging release lock is held by promote by alice" in flat(refused.output)
    assert f"the code of function {FUNCTION} was not changed" in flat(refused.output)
    assert latest_code(stack) == before

    done = run("lambda", "update-code", "--zip", str(zipped), "--stage", "staging")  # the lock is free again
    assert done.exit_code == 0, done.output
    assert latest_code(stack) == package_sha256(zipped.read_bytes()) != before
    assert lock_owner(stack) is None  # released
    again = run("lambda", "update-code", "--zip", str(zipped), "--stage", "staging")
    assert again.exit_code == 0 and "already has this code" in again.output


def test_update_code_holds_the_lock_while_it_replaces_the_code(stack: Stack) -> None:
    seen: list[str | None] = []
    fn = stack.client("lambda")
    fn.meta.events.register("before-call.lambda.UpdateFunctionCode", lambda **_: seen.append(lock_owner(stack)))
    code = package("held")
    sha, changed = stack.backend.update_function_code(code, "lambda update-code by bob")
    assert changed and seen == ["lambda update-code by bob"]
    assert sha == package_sha256(code) == latest_code(stack)
    assert stack.backend.update_function_code(code, "lambda update-code by bob") == (sha, False)
    assert len(seen) == 1  # the same code is not uploaded again
    assert lock_owner(stack) is None and versions(stack) == ["$LATEST", "1"]  # nothing published


def test_a_dead_holders_lock_is_taken_over(stack: Stack, tmp_path: Path) -> None:
    # The lease of a killed runner (TTL 1 s): unchanged for its TTL on the waiter's clock, it is taken over.
    gone = {"owner": {"S": "promote by a killed runner"}, "lock_token": {"S": "t"}, "acquired": {"S": "earlier"}}
    expired = {"expires_at": {"N": str(int(time.time()) - 1)}, "lease": {"N": "7"}, "ttl_s": {"N": "1"}}
    stack.client("dynamodb").put_item(TableName=TABLE, Item={**LOCK, **gone, **expired})
    zipped = tmp_path / "lambda.zip"
    zipped.write_bytes(package("after a crash"))
    result = run("lambda", "update-code", "--zip", str(zipped), "--stage", "staging")
    assert result.exit_code == 0, result.output
    assert latest_code(stack) == package_sha256(zipped.read_bytes()) and lock_owner(stack) is None


class PublishPrecondition:
    """Lambda's PublishVersion check, which moto lacks: a CodeSha256 that is not $LATEST's is refused."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.sent = fn, []
        fn.meta.events.register("before-parameter-build.lambda.PublishVersion", self._record)
        fn.meta.events.register("before-call.lambda.PublishVersion", self._answer)

    def _record(self, params: dict, **_: Any) -> None:
        self.sent.append(dict(params))

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict] | None:
        asked = self.sent[-1].get("CodeSha256")
        current = self.fn.get_function_configuration(FunctionName=FUNCTION)["CodeSha256"]
        if asked is None or asked == current:
            return None  # moto publishes
        message = f"CodeSHA256 ({asked}) is different from current CodeSHA256 in $LATEST ({current})."
        error = {"Error": {"Code": "InvalidParameterValueException", "Message": message}}
        return AWSResponse(None, 400, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}


def test_a_release_publishes_only_the_code_it_read(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    check = PublishPrecondition(stack.client("lambda"))
    release = promote(stack.backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    assert release.status == "live" and release.code_id == latest_code(stack)
    assert [p["CodeSha256"] for p in check.sent] == [release.code_id]


def test_code_replaced_behind_a_release_is_never_published(stack: Stack, monkeypatch) -> None:
    """Someone replaces $LATEST outside the lock after the release read it: the release publishes nothing."""
    smoke(monkeypatch, True)
    fn = stack.client("lambda")
    PublishPrecondition(fn)
    replaced: list[str] = []

    def replace(**_: Any) -> None:
        if not replaced:
            replaced.append(fn.update_function_code(FunctionName=FUNCTION, ZipFile=package("other"))["CodeSha256"])

    fn.meta.events.register("after-call.lambda.UpdateFunctionConfiguration", replace)
    before = versions(stack)
    with pytest.raises(PromotionFailed, match="is different from current CodeSHA256"):
        promote(stack.backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    assert replaced and versions(stack) == before  # no version captured the other code
    (failed,) = stack.backend.list_releases()
    assert failed.status == "rolled_back" and failed.code_id != replaced[0] and not failed.lambda_version
