"""Event building logic: contracts, time order, completion, timeouts, damage, bad input."""

from __future__ import annotations

import numpy as np

from daq.eb import BufferPool, EventBuilder
from daq.xtc import (
    Damage,
    DataType,
    Decoder,
    Dgram,
    Field,
    Level,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    make_dgram,
    segment_src,
)

NAMES = {n: Names.create(f"det{n}", "t", [Field("v", DataType.INT32)], node_id=n, index=0)
         for n in (1, 2, 3)}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def contrib(node: int, key: int, service: TransitionId = TransitionId.L1Accept,
            groups: int = 1, value: int = 0) -> Dgram:
    blocks = [ShapesDataBlock(NAMES[node], {"v": value})] \
        if service == TransitionId.L1Accept else []
    if service == TransitionId.Configure:
        blocks = [NamesBlock(NAMES[node])]
    enc = make_dgram(service, 100, key, [ParentBlock(segment_src(node), blocks)],
                     readout_groups=groups)
    return Dgram(enc.tobytes())


def builder(clock: Clock, groups: dict[int, list[int]] | None = None) -> EventBuilder:
    return EventBuilder(3, groups or {0: [1, 2]}, timeout=1.0, clock=clock)


def test_complete_events_retire_in_order_with_all_contributions() -> None:
    clock = Clock()
    eb = builder(clock)
    # each node sends in order; nodes interleave arbitrarily
    assert eb.add(1, 10, contrib(1, 10, value=5)) == []
    assert eb.add(1, 11, contrib(1, 11)) == []
    out = eb.add(2, 10, contrib(2, 10, value=6))
    assert [e.key for e in out] == [10]
    out = [*out, *eb.add(2, 11, contrib(2, 11))]
    assert [e.key for e in out] == [10, 11]
    dg = out[0].dgram()
    assert dg.damage == 0 and (dg.root.src >> 28) == Level.Event and dg.root.value == 3
    dec = Decoder()
    for n in NAMES.values():
        dec.lookup[n.names_id] = n
    ev = dec.decode(dg)
    assert ev.get("det1", "v") == 5 and ev.get("det2", "v") == 6
    assert sorted(ev.nodes) == [1, 2]
    assert eb.counters.complete == 2 and eb.depth == 0


def test_newer_complete_event_supersedes_an_incomplete_one() -> None:
    clock = Clock()
    eb = builder(clock)
    eb.add(1, 10, contrib(1, 10))  # node 2's part of 10 never comes
    eb.add(1, 11, contrib(1, 11))
    out = eb.add(2, 11, contrib(2, 11))
    assert [e.key for e in out] == [10, 11]
    assert out[0].missing == (2,)
    dg = out[0].dgram()
    assert dg.damage & Damage.DroppedContribution
    kids = list(dg.children())
    assert [(k.value, k.damage, k.extent) for k in kids][1] == (2, int(Damage.DroppedContribution),
                                                                12)
    assert eb.counters.incomplete == 1 and eb.counters.superseded == 1
    assert eb.counters.missing_by_node == {2: 1}


def test_timeout_retires_an_incomplete_event() -> None:
    clock = Clock()
    eb = builder(clock)
    eb.add(1, 10, contrib(1, 10))
    assert eb.poll() == []
    clock.t = 1.5
    out = eb.poll()
    assert [e.key for e in out] == [10] and out[0].missing == (2,)
    assert eb.counters.timed_out == 1


def test_readout_groups_define_the_contract() -> None:
    clock = Clock()
    eb = builder(clock, {0: [1, 2], 1: [3]})
    # a shot read by group 0 only needs nodes 1 and 2
    eb.add(1, 10, contrib(1, 10, groups=0b01))
    out = eb.add(2, 10, contrib(2, 10, groups=0b01))
    assert [e.key for e in out] == [10] and out[0].missing == ()
    # a shot read by both groups needs node 3 too
    eb.add(1, 11, contrib(1, 11, groups=0b11))
    assert eb.add(2, 11, contrib(2, 11, groups=0b11)) == []
    out = eb.add(3, 11, contrib(3, 11, groups=0b11))
    assert [e.key for e in out] == [11] and out[0].dgram().readout_groups == 0b11
    # transitions need every node
    eb.add(1, 12, contrib(1, 12, TransitionId.Disable))
    eb.add(2, 12, contrib(2, 12, TransitionId.Disable))
    assert eb.depth == 1


def test_duplicates_stale_and_foreign_contributions_are_counted_and_dropped() -> None:
    clock = Clock()
    eb = builder(clock)
    eb.add(1, 10, contrib(1, 10))
    eb.add(1, 10, contrib(1, 10))
    assert eb.counters.duplicates == 1
    eb.add(2, 10, contrib(2, 10))
    eb.add(2, 9, contrib(2, 9))  # older than what was retired
    assert eb.counters.stale == 1
    eb.add(7, 11, contrib(1, 11))  # unknown node id
    assert eb.counters.unknown_node == 1
    eb.add(2, 12, contrib(1, 12))  # claims node 2 but holds node 1's Segment
    assert eb.counters.malformed == 1
    assert eb.depth == 0


def test_flush_retires_everything_in_order() -> None:
    clock = Clock()
    eb = builder(clock)
    for k in (5, 3, 4):
        eb.add(1, k, contrib(1, k))
    out = eb.flush()
    assert [e.key for e in out] == [3, 4, 5]
    assert all(e.missing == (2,) for e in out)


def test_large_contributions_are_copied_exactly() -> None:
    clock = Clock()
    big = Names.create("cam", "opal", [Field("img", DataType.UINT16, 2)], node_id=1, index=1)
    img = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512)
    enc = make_dgram(TransitionId.L1Accept, 1, 1, [ParentBlock(segment_src(1), [
        ShapesDataBlock(big, {"img": img})])], readout_groups=1)
    eb = EventBuilder(0, {0: [1]}, clock=clock)
    out = eb.add(1, 1, Dgram(enc.tobytes()))
    dec = Decoder()
    dec.lookup[big.names_id] = big
    np.testing.assert_array_equal(dec.decode(out[0].dgram()).get("cam", "img"), img)


def test_events_missing_only_an_absent_node_retire_at_once() -> None:
    clock = Clock()
    eb = builder(clock)
    eb.add(1, 10, contrib(1, 10))
    eb.add(2, 10, contrib(2, 10))
    # node 2 dies: its first missed events wait for the timeout ...
    for k in (11, 12, 13):
        assert eb.add(1, k, contrib(1, k)) == []
        clock.t += 1.1
        assert [e.key for e in eb.poll()] == [k]
    assert eb.absent() == [2] and eb.counters.timed_out == 3
    # ... then it is absent, and events missing only it leave at once
    out = eb.add(1, 14, contrib(1, 14))
    assert [e.key for e in out] == [14] and out[0].missing == (2,)
    assert eb.counters.absent == 1
    # a late contribution shows it is alive (slow, not dead): no longer absent
    eb.add(2, 13, contrib(2, 13))
    assert eb.counters.stale == 1 and eb.absent() == []
    eb.add(1, 15, contrib(1, 15))
    assert eb.depth == 1  # waits for node 2 again
    eb.add(2, 15, contrib(2, 15))
    assert eb.depth == 0 and eb.absent() == []


def test_transitions_wait_longer_than_events() -> None:
    clock = Clock()
    eb = EventBuilder(0, {0: [1, 2]}, timeout=1.0, transition_timeout=20.0, clock=clock)
    eb.add(1, 5, contrib(1, 5, TransitionId.Configure))
    clock.t = 5.0  # a node preparing a big detector takes seconds to configure
    assert eb.poll() == []
    out = eb.add(2, 5, contrib(2, 5, TransitionId.Configure))
    assert [e.key for e in out] == [5] and out[0].missing == ()
    eb.add(1, 6, contrib(1, 6, TransitionId.BeginRun))
    clock.t = 26.0
    assert [e.missing for e in eb.poll()] == [(2,)]


def test_a_transition_announced_by_control_is_recorded_even_if_every_datagram_is_lost() -> None:
    clock = Clock()
    eb = builder(clock)
    eb.add(1, 10, contrib(1, 10))
    eb.add(2, 10, contrib(2, 10))
    assert eb.expect(11, TransitionId.Disable, 100, 11) == []  # waits for its contributions
    eb.add(1, 12, contrib(1, 12, TransitionId.EndStep))
    clock.t = 40.0  # the transition timeout passes with nothing from the nodes for 11
    out = eb.poll()
    assert [(e.key, e.service) for e in out] == [(11, TransitionId.Disable),
                                                 (12, TransitionId.EndStep)]
    dg = out[0].dgram()
    assert dg.timestamp == (100 << 32) | 11 and dg.damage & Damage.DroppedContribution
    assert out[0].missing == (1, 2)
    # an announcement that comes after the event was built changes nothing
    assert eb.expect(11, TransitionId.Disable, 100, 11) == [] and eb.depth == 0
    # contributions and an announcement of the same transition make one event
    eb.expect(13, TransitionId.EndRun, 100, 13)
    eb.add(1, 13, contrib(1, 13, TransitionId.EndRun))
    out = eb.add(2, 13, contrib(2, 13, TransitionId.EndRun))
    assert [e.key for e in out] == [13] and out[0].missing == ()


def _big_contrib(node: int, key: int, pool: BufferPool) -> Dgram:
    """A contribution of ~100 kB held in a pooled buffer, as reassembly makes them."""
    names = Names.create(f"img{node}", "t", [Field("raw", DataType.UINT16, 1)], node_id=node,
                         index=0)
    enc = make_dgram(TransitionId.L1Accept, 100, key, [ParentBlock(segment_src(node), [
        ShapesDataBlock(names, {"raw": np.full(50_000, key * 10 + node, np.uint16)})])],
                     readout_groups=1)
    data = enc.tobytes()
    buf = pool.get(len(data))
    buf[:] = data
    return Dgram(buf)


def test_pooled_buffers_are_reused_and_events_stay_identical() -> None:
    """With a pool, contributions' buffers go back once copied and built events are reused
    after release: events built later are still exactly what a pool-less builder makes."""
    pool = BufferPool(min_size=1 << 10)
    clock = Clock()
    pooled = EventBuilder(3, {0: [1, 2]}, timeout=1.0, clock=clock, pool=pool)
    plain = EventBuilder(3, {0: [1, 2]}, timeout=1.0, clock=clock)
    for key in range(10, 20):
        got: list[bytes] = []
        for node in (1, 2):
            for ev in pooled.add(node, key, _big_contrib(node, key, pool)):
                got.append(bytes(ev.data))
                ev.release()
        want = [bytes(ev.data) for node in (1, 2)
                for ev in plain.add(node, key, _big_contrib(node, key, BufferPool()))]
        assert got == want and len(got) == 1
    # three ~100 kB buffers in flight at most (two contributions and one event), then reuse
    assert pool.allocated <= 3 and pool.reused >= 27


def test_pool_ignores_foreign_and_small_buffers() -> None:
    pool = BufferPool(min_size=1 << 10)
    small = pool.get(10)
    assert isinstance(small, bytearray) and len(small) == 10
    pool.put(small)
    pool.put(bytearray(1 << 12))  # never issued: not adopted
    big = pool.get(1 << 12)
    assert len(big) == 1 << 12 and pool.allocated == 1 and pool.reused == 0
    pool.put(big)
    again = pool.get(3000)  # fits (between the size and twice the size)
    assert len(again) == 3000 and pool.reused == 1


def test_a_single_contribution_becomes_its_event_in_place() -> None:
    """A one-node event reuses the contribution's pooled buffer (only the header changes)."""
    pool = BufferPool(min_size=1 << 10)
    clock = Clock()
    pooled = EventBuilder(3, {0: [1]}, timeout=1.0, clock=clock, pool=pool)
    plain = EventBuilder(3, {0: [1]}, timeout=1.0, clock=clock)
    for key in range(10, 15):
        contribution = _big_contrib(1, key, pool)
        (ev,) = pooled.add(1, key, contribution)
        assert ev.data is contribution.buf  # no copy
        (want,) = plain.add(1, key, _big_contrib(1, key, BufferPool()))
        assert bytes(ev.data) == bytes(want.data)
        ev.release()
    assert pool.allocated == 1 and pool.reused == 4
