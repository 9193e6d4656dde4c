"""The release lock fails safe on the aws backend (moto): written as the faults it stops.

Skewed clocks cannot steal a live lock; a holder whose renewals fail stops at its next step and rolls
back; a holder whose lock was taken over changes nothing more and writes no record.
"""

from __future__ import annotations

import time

import pytest
from aws_support import STAGE, Stack, approved_stack, new_backend, quiet
from test_aws_release import live_state, smoke

from mlops.backends.aws.lease import Lease
from mlops.backends.base import LockBusyError, LockLostError, Release
from mlops.release import PromotionFailed, promote
from mlops.smoke import SmokeConfig

stack = pytest.fixture(name="stack")(approved_stack)


@pytest.mark.parametrize("skew", [180.0, -180.0], ids=["taker-ahead", "holder-behind"])
def test_a_skewed_clock_cannot_take_a_live_lock(stack: Stack, skew: float) -> None:
    holder, taker = stack.backend, new_backend(STAGE)
    holder.records.lock_ttl_s = 3  # renewed every second
    if skew > 0:
        taker.records.clock = lambda: time.time() + skew  # the holder's lease looks long expired to it
    else:
        holder.records.clock = lambda: time.time() + skew  # it writes deadlines already in the past
    taker.records.poll_s = 0.1
    with holder.records.lock("promote by alice"):
        started = time.monotonic()
        with pytest.raises(LockBusyError, match="alice"), taker.records.lock("promote by bob", wait_s=4.5):
            pass
        assert time.monotonic() - started >= 4.5  # it watched the lease for longer than its TTL, and saw it renewed
        assert holder.records.lease is not None and not holder.records.lease.taken_by


def test_renewals_that_fail_stop_the_release_at_its_next_step_and_roll_it_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    smoke(monkeypatch, True, True)
    backend = stack.backend
    first = promote(backend, "1", "alice", SmokeConfig(), log=quiet)
    before = live_state(stack)
    monkeypatch.setenv("MLOPS_BAKE_SECONDS", "6")
    monkeypatch.setenv("MLOPS_BAKE_POLL_SECONDS", "0.5")
    backend.records.lock_ttl_s = 2
    lost: list[Lease] = []
    monkeypatch.setattr(backend.records, "_renew", lambda lease: lost.append(lease))  # throttled, every time
    with pytest.raises(PromotionFailed, match="rolled back: the staging release lock's lease was not renewed"):
        promote(backend, "2", "bob", SmokeConfig(), log=quiet)
    assert lost  # renewals were attempted, and none went through
    assert live_state(stack) == before and backend.live_release().release_id == first.release_id
    assert [r.status for r in backend.list_releases() if r.model_version == "2"] == ["rolled_back"]


def test_a_holder_whose_lock_was_taken_over_changes_nothing_more(stack: Stack, monkeypatch) -> None:
    smoke(monkeypatch, True)
    alice, bob = stack.backend, new_backend(STAGE)
    promote(alice, "1", "alice", SmokeConfig(), log=quiet)
    before = live_state(stack)
    alice.records.lock_ttl_s = 1
    monkeypatch.setattr(alice.records, "_beat", lambda lease, stop: None)  # a runner that stopped renewing
    bob.records.poll_s = 0.1
    record = Release(release_id="r20260101-000000-aaaaaa", model_version="2", stage=STAGE, started="now")
    with alice.lock("promote by alice"):
        time.sleep(1.1)  # past alice's deadline: bob watches her lease stay unchanged for its TTL
        with bob.records.lock("promote by bob", wait_s=5):
            with pytest.raises(LockLostError) as moved:
                alice.move_alias("2")
            assert moved.value.taken and "changes nothing more" in str(moved.value)
            with pytest.raises(LockLostError, match="not saved: the staging release lock is now held by promote"):
                alice.save_release(record)  # the record write carries her token: refused
            assert live_state(stack) == before
    assert [r.release_id for r in alice.list_releases()] != [] and record.release_id not in {
        r.release_id for r in alice.list_releases()
    }
