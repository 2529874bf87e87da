"""Who holds the Stasis application: the lease's decisions, without Asterisk."""

from __future__ import annotations

import os
import socket

from ari_app.services.lease import Holder, Lease, lease_variable


class _NoAri:
    pass


def _lease() -> Lease:
    return Lease(_NoAri(), "ari-app", ttl=15)  # type: ignore[arg-type]


def test_a_holder_round_trips_through_its_text() -> None:
    holder = Holder("pbx1", 42, "abc", 1000.0)
    assert Holder.decode(holder.encode()) == holder
    assert Holder.decode("garbage") is None
    assert Holder.decode("a|b|c|d") is None


def test_the_variable_name_is_a_valid_asterisk_variable() -> None:
    assert lease_variable("ari-app.north") == "ARI_APP_LEASE_ari_app_north"


def test_a_fresh_lease_of_another_live_instance_is_respected() -> None:
    other = Holder("elsewhere", 1, "other", 1000.0).encode()
    assert _lease().other_holder(other, now=1010.0) is not None


def test_an_expired_lease_is_free() -> None:
    other = Holder("elsewhere", 1, "other", 1000.0).encode()
    assert _lease().other_holder(other, now=1016.0) is None


def test_our_own_lease_is_not_another_holder() -> None:
    lease = _lease()
    assert lease.other_holder(Holder(*lease.me.__dict__.values()).encode(), now=0) is None


def test_a_fresh_lease_of_a_dead_process_on_this_machine_is_free() -> None:
    dead_pid = 2**22 + 7  # above pid_max on common systems
    assert not os.path.exists(f"/proc/{dead_pid}")
    lease = Holder(socket.gethostname(), dead_pid, "crashed", 1000.0).encode()
    assert _lease().other_holder(lease, now=1001.0) is None


def test_an_empty_or_unreadable_lease_is_free() -> None:
    assert _lease().other_holder("", now=0) is None
