"""The release promises on the aws backend (moto + the stand-ins of aws_support): version choice, the
production gate, failed restores and repair, signals, a failed first release, the bake's alarms,
function-code releases, images pinned by digest, and the lease lock."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile

import pytest
from aws_support import (
    IMAGE,
    PREFIX,
    STAGE,
    Stack,
    approved_stack,
    aws_env,
    make_stack,
    new_backend,
    quiet,
)
from moto import mock_aws
from test_aws_release import live_state, smoke

from mlops.backends.base import BackendError, LockBusyError
from mlops.release import PromotionFailed, PromotionRefused, RollbackFailed, promote, repair, rollback, status
from mlops.smoke import SmokeConfig

FUNCTION = f"{PREFIX}-classify-api"


stack = pytest.fixture(name="stack")(approved_stack)


def new_code(stack: Stack, marker: str) -> str:
    """`mlops lambda update-code`: new code in $LATEST; returns its CodeSha256."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classify_api/handler.py", f"# {marker}\ndef lambda_handler(event, context):\n    return {{}}\n")
    return stack.client("lambda").update_function_code(FunctionName=FUNCTION, ZipFile=buf.getvalue())["CodeSha256"]


def test_no_version_named_never_flips_back_and_an_ordinary_push_is_a_no_op(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, True)
    backend, log = stack.backend, []
    second = promote(backend, "2", "alice", SmokeConfig(), log=log.append)
    before = live_state(stack)
    for _ in range(2):  # v1 approved, v2 live: two ordinary pushes keep v2
        assert promote(backend, None, "push", SmokeConfig(), log=log.append).release_id == second.release_id
    assert live_state(stack) == before and len(backend.list_releases()) == 1
    assert any("already live" in line and "nothing to do" in line for line in log)
    downgrade = promote(backend, "1", "alice", SmokeConfig(), log=log.append)
    assert downgrade.model_version == "1" and "downgrade" in downgrade.kind
    assert any("downgrade from version 2 to version 1" in line for line in log)


def test_nothing_approved_is_a_no_op(monkeypatch) -> None:
    aws_env(monkeypatch)
    with mock_aws():
        stack = make_stack((0.95,))
        log: list[str] = []
        assert promote(stack.backend, None, "push", SmokeConfig(), log=log.append) is None
        assert "no Approved model version" in log[-1] and stack.backend.list_releases() == []


def test_a_version_rolled_back_here_is_not_retried_by_a_push(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, False)
    backend, log = stack.backend, []
    promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    with pytest.raises(PromotionFailed):
        promote(backend, None, "push", SmokeConfig(), log=quiet)
    assert promote(backend, None, "push", SmokeConfig(), log=log.append) is None
    assert "was rolled back in staging" in log[-1] and backend.live_release().model_version == "1"


def test_a_code_change_rolled_back_beside_the_same_live_model_is_not_retried_by_a_push(
    stack: Stack, monkeypatch
) -> None:
    # (v2, code C1) live; (v2, C2) rolled back: the next push must not release (v2, C2) again.
    smoke(monkeypatch, True, False, True)
    backend, log = stack.backend, []
    live = promote(backend, "2", "alice", SmokeConfig(), log=quiet)
    new_code(stack, "C2")
    with pytest.raises(PromotionFailed):
        promote(backend, None, "push", SmokeConfig(), log=quiet)
    before = live_state(stack)
    assert promote(backend, None, "push", SmokeConfig(), log=log.append) is None
    assert "was rolled back in staging with this function code" in log[-1]
    assert live_state(stack) == before and backend.live_release().release_id == live.release_id
    new_code(stack, "C3")  # other code: released, with the same model
    third = promote(backend, None, "push", SmokeConfig(), log=quiet)
    assert third.model_version == "2" and third.code_id == backend.function_code_id() != live.code_id


def test_production_refuses_what_did_not_pass_staging(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, False, True)
    monkeypatch.setenv("FUNCTION_NAME", FUNCTION)  # production reads the same function code in this emulation
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", f"{PREFIX}-models")
    monkeypatch.setenv("RELEASE_TABLE", f"{PREFIX}-releases")
    monkeypatch.setenv("REST_API_ID", stack.rest_api_id)  # and the same API: a promotion first reads what it serves
    monkeypatch.setenv("STAGE_NAME", STAGE)
    production = new_backend("production")
    with pytest.raises(PromotionRefused, match="has not passed its smoke tests in staging and a bake of at least 0 s"):
        promote(production, "2", "alice", SmokeConfig(), log=quiet)
    with pytest.raises(PromotionFailed):  # staging: rolled back, so still not qualified
        promote(stack.backend, "2", "alice", SmokeConfig(), log=quiet)
    with pytest.raises(PromotionRefused, match="has not passed"):
        promote(production, "2", "alice", SmokeConfig(), log=quiet)
    promote(stack.backend, "2", "alice", SmokeConfig(), log=quiet)  # passes in staging
    from mlops.release.choice import require_qualified

    require_qualified(production, production.get_version("2"), production.function_code_id())  # now allowed
    new_code(stack, "changed")  # other function code: not what staging tested
    with pytest.raises(PromotionRefused, match="has not passed"):
        require_qualified(production, production.get_version("2"), production.function_code_id())
    assert production.list_releases() == []


def test_production_refuses_a_staging_record_that_skipped_or_failed_its_bake(stack: Stack, monkeypatch) -> None:
    """Records as a staging-level writer could put them: live with smoke tests passed, but no bake, a breached
    one, one shorter than staging's bake time, or the version's name beside other model content. None
    qualifies the version for production."""
    from mlops.backends.base import Release
    from mlops.release.choice import require_qualified

    monkeypatch.setenv("FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("MODEL_PACKAGE_GROUP_NAME", f"{PREFIX}-models")
    monkeypatch.setenv("RELEASE_TABLE", f"{PREFIX}-releases")
    monkeypatch.setenv("MLOPS_BAKE_SECONDS", "60")  # the bake time both stages apply here
    production = new_backend("production")
    code = production.function_code_id()
    bakes = [{}, {"seconds": 60, "breaches": ["alarm catdog-staging-lambda-errors is in ALARM"]}, {"seconds": 5}]
    for n, bake in enumerate(bakes):
        record = Release(f"r-staging-{n}", "2", "staging", status="live", code_id=code, smoke={"passed": True})
        record.bake = {"breaches": [], **bake}
        with stack.backend.lock("a staging writer"):
            stack.backend.save_release(record)
        with pytest.raises(
            PromotionRefused, match="has not passed its smoke tests in staging and a bake of at least 60 s"
        ):
            require_qualified(production, production.get_version("2"), code)
    registered = production.get_version("2").model_sha256
    assert len(registered) == 64
    # A record naming version 2 beside other weights: the content staging tested is not the registered one.
    other = Release("r-staging-8", "2", "staging", status="live", code_id=code, smoke={"passed": True})
    other.model_sha256, other.bake = "0" * 64, {"seconds": 61.5, "breaches": []}
    with stack.backend.lock("a staging writer"):
        stack.backend.save_release(other)
    with pytest.raises(PromotionRefused, match=f"version 2 \\(model {registered[:12]}\\) with function code"):
        require_qualified(production, production.get_version("2"), code)
    baked = Release("r-staging-9", "2", "staging", status="live", code_id=code, smoke={"passed": True})
    baked.model_sha256, baked.bake = registered, {"seconds": 61.5, "breaches": []}
    with stack.backend.lock("staging"):
        stack.backend.save_release(baked)
    require_qualified(production, production.get_version("2"), code)  # its content, smoke passed, baked long enough


def test_a_failed_restore_is_recorded_and_repaired(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, False)
    monkeypatch.setenv("MLOPS_RESTORE_ATTEMPTS", "3")
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    real_move, calls = backend.front.move_alias, []

    def throttled(version: str) -> None:
        calls.append(version)
        if version == first.lambda_version:
            raise BackendError("moving alias live: TooManyRequestsException: Rate exceeded")
        real_move(version)

    monkeypatch.setattr(backend.front, "move_alias", throttled)
    with pytest.raises(RollbackFailed, match="run `mlops repair --backend aws --stage staging`"):
        promote(backend, "2", "bob", SmokeConfig(), log=quiet)
    assert calls.count(first.lambda_version) == 3  # retried with backoff
    info = status(backend)
    assert info["model_version"] == "1" and info["drift"]["function_version"] == {"recorded": "2", "served": "3"}
    failed = next(r for r in backend.list_releases() if r.model_version == "2")
    assert failed.status == "rollback_failed" and failed.observed["function_version"] == "3"
    assert info["needs_repair"] == [failed.release_id]

    monkeypatch.setattr(backend.front, "move_alias", real_move)
    target, found = repair(backend, "carol", log=quiet)
    assert target.release_id == first.release_id and "function_version" in found
    assert live_state(stack)[:3] == (first.endpoint_config, "2", first.deployment_id)
    after = status(backend)
    assert after["drift"] == {} and after["needs_repair"] == []
    assert repair(backend, "carol", log=quiet) == (backend.live_release(), {})  # nothing left to do


def test_promoting_the_recorded_live_version_repairs_a_drifted_stage(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    promote(backend, "2", "alice", SmokeConfig(), log=quiet)
    rollback(backend, "carol", log=quiet)
    backend.front.move_alias("1")  # someone moved the alias by hand (to the version Terraform created)
    log: list[str] = []
    assert promote(backend, "1", "alice", SmokeConfig(), log=log.append).release_id == first.release_id
    assert "drifted" in log[0] and backend.current_function_version() == first.lambda_version


def test_sigterm_during_a_release_rolls_it_back(stack: Stack, monkeypatch) -> None:
    backend = stack.backend
    smoke(monkeypatch, True)
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    before = live_state(stack)

    def cancelled(*_: object, **__: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # what a cancelled GitHub job sends
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the release")

    import mlops.release as release_mod

    monkeypatch.setattr(release_mod, "run_smoke", cancelled)
    with pytest.raises(PromotionFailed, match="rolled back to version 1: interrupted by SIGTERM"):
        promote(backend, "2", "bob", SmokeConfig(), log=quiet)
    assert live_state(stack) == before and backend.live_release().release_id == first.release_id
    assert status(backend)["drift"] == {} and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_failed_first_release_leaves_nothing_serving(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, False)
    with pytest.raises(PromotionFailed, match="rolled back to nothing serving"):
        promote(stack.backend, "1", "alice", SmokeConfig(), log=quiet)
    assert stack.backend.current_endpoint_config() == ""  # the endpoint is gone, not serving the rejected model
    assert stack.backend.list_releases()[0].status == "rolled_back"


def test_an_alarm_during_the_bake_rolls_the_release_back(stack: Stack, monkeypatch) -> None:
    backend = stack.backend
    smoke(monkeypatch, True, True)
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    alarm = f"{PREFIX}-lambda-errors"
    import mlops.release as release_mod

    passing = release_mod.run_smoke

    def smoke_then_errors(*args: object, **kwargs: object):
        result = passing(*args, **kwargs)
        stack.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="Errors >= 1")
        return result

    monkeypatch.setattr(release_mod, "run_smoke", smoke_then_errors)
    with pytest.raises(PromotionFailed, match=f"breach during the bake: alarm {alarm} is in ALARM"):
        promote(backend, "2", "bob", SmokeConfig(), log=quiet)
    assert backend.live_release().release_id == first.release_id
    assert backend.current_function_version() == first.lambda_version


def test_a_missing_alarm_is_a_breach(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    stack.client("cloudwatch").delete_alarms(AlarmNames=[f"{PREFIX}-api-5xx"])
    with pytest.raises(PromotionFailed, match="api-5xx does not exist: the release cannot be watched"):
        promote(stack.backend, "1", "alice", SmokeConfig(), log=quiet)


def test_function_code_alone_is_released_with_the_same_model(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True, True)
    backend = stack.backend
    first = promote(backend, "2", "alice", SmokeConfig(), log=quiet)
    sha = new_code(stack, "handler fix")
    code = promote(backend, None, "push", SmokeConfig(), log=quiet)  # the ordinary push after update-code
    assert code is not None and code.kind == "code" and code.code_id == sha != first.code_id
    assert code.model_version == "2" and code.endpoint_config == first.endpoint_config
    assert code.lambda_version != first.lambda_version == "2"
    assert len(stack.updates.calls) == 0  # the endpoint was not touched
    assert promote(backend, None, "push", SmokeConfig(), log=quiet).release_id == code.release_id


def test_the_serving_image_is_pinned_by_digest_and_kept(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    release = promote(stack.backend, "1", "alice", SmokeConfig(), log=quiet)
    repo = IMAGE.split("/", 1)[1].split(":")[0]
    assert release.image.startswith(IMAGE.split(":")[0] + "@sha256:")
    model = stack.client("sagemaker").describe_model(ModelName=release.endpoint_config)
    assert model["PrimaryContainer"]["Image"] == release.image
    digest = release.image.split("@")[1]
    tags = stack.client("ecr").describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])
    assert f"release-{release.release_id}" in tags["imageDetails"][0]["imageTags"]


def test_a_second_promotion_waits_for_a_live_holder(stack: Stack) -> None:
    holder, waiter = stack.backend, new_backend(STAGE)
    waiter.records.poll_s = 0.1
    held = holder.lock("promote by alice")
    held.__enter__()
    threading.Timer(1.0, held.__exit__, args=(None, None, None)).start()
    started = time.monotonic()
    with waiter.records.lock("promote by bob", wait_s=10):
        assert time.monotonic() - started >= 0.9
    with (
        pytest.raises(LockBusyError, match="held by promote by carol"),
        holder.lock("promote by carol"),
        waiter.records.lock("promote by dave", wait_s=0.3),
    ):
        pass


def test_a_live_holder_renews_its_lease_and_a_dead_one_is_taken_over(stack: Stack) -> None:
    alive, other = stack.backend, new_backend(STAGE)
    alive.records.lock_ttl_s = 3  # renewed every second
    with alive.records.lock("promote by alice"):
        time.sleep(4.5)  # longer than the lease: only the renewals keep it
        with pytest.raises(LockBusyError, match="alice"), other.records.lock("promote by bob"):
            pass
    dead = new_backend(STAGE)
    dead.records.lock_ttl_s = 1
    dead.records._beat = lambda token, stop: None  # a holder killed hard renews nothing
    dead.records.lock("killed promotion").__enter__()
    time.sleep(2.2)
    with other.records.lock("promote by bob"):  # its lease ran out: taken over
        pass


def test_clients_sending_broken_images_during_a_release_do_not_roll_it_back(stack: Stack, monkeypatch) -> None:
    """Images whose header passes the function's check and whose body does not decode reach the model server,
    which answers 4xx: Invocation4XXErrors, alarmed by endpoint-4xx (infra/alarms.tf). Anyone can send them,
    so that alarm only notifies: in ALARM through the whole release, the release still goes live."""
    backend = stack.backend
    smoke(monkeypatch, True, True)
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    cloudwatch, alarm = stack.client("cloudwatch"), f"{PREFIX}-endpoint-4xx"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, MetricName="Invocation4XXErrors", Namespace="AWS/SageMaker", Statistic="Sum", Period=60,
        EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=5, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="broken-body PNGs from a client")
    second = promote(backend, "2", "bob", SmokeConfig(), log=quiet)
    assert second.status == "live" and second.release_id != first.release_id
    assert not second.bake["breaches"] and backend.live_release().model_version == "2"
    assert alarm not in backend.cfg.alarm_names + backend.cfg.release_alarm_names  # nor in UpdateEndpoint's
