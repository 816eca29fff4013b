"""Batches of small contributions: wire format, building whole batches, recording rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daq.eb import BuiltBatch, BuiltEvent, EventBuilder
from daq.net import FragmentError, batch_capacity, batch_payload, parse_batch
from daq.xtc import (
    Damage,
    DataType,
    Dgram,
    DgramTemplate,
    Field,
    Names,
    TransitionId,
    read_dgrams,
    segment_src,
)
from daq.xtc._stream import StreamWriter

NAMES = {n: Names.create(f"det{n}", "t", [Field("v", DataType.INT32),
                                          Field("wf", DataType.UINT16, 1)], node_id=n, index=0)
         for n in (1, 2, 3)}
TEMPLATES = {n: DgramTemplate(TransitionId.L1Accept, [(segment_src(n), [(names, {"wf": (50,)})])])
             for n, names in NAMES.items()}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def rows_for(node: int, pids: list[int], groups: int = 1) -> np.ndarray:
    """Contributions of ``node`` for ``pids``, encoded column-wise as a node does."""
    batch = TEMPLATES[node].bind_batch(len(pids))
    p = np.array(pids, np.uint64)
    batch.set_times(np.full(len(p), 100, np.uint32), p.astype(np.uint32))
    batch.set_envs(np.full(len(p), groups, np.uint16))
    batch.field(NAMES[node], "v")[...] = p.astype(np.int32) * 10 + node
    batch.field(NAMES[node], "wf")[...] = (p[:, None] + np.arange(50)).astype(np.uint16)
    return batch.data


def one_at_a_time(pids: list[int], nodes: tuple[int, ...] = (1, 2)) -> list[bytes]:
    eb = EventBuilder(7, {0: list(nodes)}, timeout=1.0, clock=Clock())
    out: list[bytes] = []
    for node in nodes:
        for pid, row in zip(pids, rows_for(node, pids), strict=True):
            for ev in eb.add(node, pid, Dgram(row.tobytes())):
                assert isinstance(ev, BuiltEvent)
                out.append(bytes(ev.data))
    return out


def flat(events: list) -> list[bytes]:
    out: list[bytes] = []
    for ev in events:
        if isinstance(ev, BuiltBatch):
            out += [row.tobytes() for row in ev.data]
        else:
            out.append(bytes(ev.data))
    return out


def test_wire_round_trip_and_capacity() -> None:
    rows = rows_for(1, [5, 6, 9])
    payload = b"".join(batch_payload(np.array([5, 6, 9]), rows))
    pids, back = parse_batch(payload)
    assert pids.tolist() == [5, 6, 9] and np.array_equal(back, rows)
    assert batch_capacity(60000, rows.shape[1]) == (60000 - 48) // (rows.shape[1] + 8)
    assert batch_capacity(1000, 5000) == 0


@pytest.mark.parametrize("cut", [0, 4, 9, 10, -1])
def test_malformed_batches_are_refused(cut: int) -> None:
    rows = rows_for(1, [5, 6])
    payload = b"".join(batch_payload(np.array([5, 6]), rows))
    bad = payload[:cut] if cut >= 0 else payload + b"x"
    with pytest.raises(FragmentError, match="batch"):
        parse_batch(bad)
    with pytest.raises(FragmentError, match="increasing"):
        parse_batch(b"".join(batch_payload(np.array([6, 5]), rows)))


def test_matching_batches_build_exactly_what_single_events_give() -> None:
    pids = [10, 12, 14, 16]
    eb = EventBuilder(7, {0: [1, 2]}, timeout=1.0, clock=Clock())
    assert eb.add_batch(1, np.array(pids, np.uint64), rows_for(1, pids)) == []
    out = eb.add_batch(2, np.array(pids, np.uint64), rows_for(2, pids))
    assert len(out) == 1 and isinstance(out[0], BuiltBatch)
    assert flat(out) == one_at_a_time(pids)
    c = eb.counters
    assert (c.events, c.complete, c.contributions, eb.depth) == (4, 4, 8, 0)
    # a late duplicate batch is stale now
    assert eb.add_batch(1, np.array(pids, np.uint64), rows_for(1, pids)) == []
    assert c.stale == 4


def test_differing_batches_fall_back_to_single_events() -> None:
    eb = EventBuilder(7, {0: [1, 2]}, timeout=1.0, clock=Clock())
    eb.add_batch(1, np.array([10, 12, 14], np.uint64), rows_for(1, [10, 12, 14]))
    # node 2 splits its datagrams differently: the unit explodes, events still complete
    out = eb.add_batch(2, np.array([10, 12], np.uint64), rows_for(2, [10, 12]))
    out += eb.add(2, 14, Dgram(rows_for(2, [14])[0].tobytes()))
    assert flat(out) == one_at_a_time([10, 12, 14])
    assert eb.counters.complete == 3 and eb.depth == 0


def test_a_missing_batch_times_out_into_damaged_events_in_order() -> None:
    clock = Clock()
    eb = EventBuilder(7, {0: [1, 2]}, timeout=1.0, clock=clock)
    assert eb.add_batch(1, np.array([10, 12], np.uint64), rows_for(1, [10, 12])) == []
    clock.t = 1.5
    out = eb.poll()
    assert [e.key for e in out] == [10, 12]
    for ev in out:
        assert isinstance(ev, BuiltEvent) and ev.missing == (2,)
        assert ev.dgram().damage & Damage.DroppedContribution
    assert eb.counters.timed_out == 2 and eb.counters.missing_by_node == {2: 2}


def test_a_newer_complete_batch_supersedes_an_older_incomplete_one() -> None:
    eb = EventBuilder(7, {0: [1, 2]}, timeout=30.0, clock=Clock())
    eb.add_batch(1, np.array([10, 12], np.uint64), rows_for(1, [10, 12]))  # node 2's is lost
    eb.add_batch(1, np.array([20, 22], np.uint64), rows_for(1, [20, 22]))
    out = eb.add_batch(2, np.array([20, 22], np.uint64), rows_for(2, [20, 22]))
    assert [getattr(e, "key", None) for e in out[:2]] == [10, 12]
    assert all(isinstance(e, BuiltEvent) and e.missing == (2,) for e in out[:2])
    assert isinstance(out[2], BuiltBatch) and out[2].keys.tolist() == [20, 22]
    assert eb.counters.superseded == 2


def test_mixed_readout_groups_and_transitions_keep_time_order() -> None:
    eb = EventBuilder(7, {0: [1, 2]}, timeout=1.0, clock=Clock())
    rows1, rows2 = rows_for(1, [10, 12]), rows_for(2, [10, 12])
    rows1[1, 8:12] = rows1[1, 8:12].view("<u4") | 2  # one event also reads group 1
    rows2[1, 8:12] = rows2[1, 8:12].view("<u4") | 2
    eb.add_batch(1, np.array([10, 12], np.uint64), rows1)  # not uniform: one by one
    out = eb.add_batch(2, np.array([10, 12], np.uint64), rows2)
    assert [type(e).__name__ for e in out] == ["BuiltEvent", "BuiltEvent"]
    assert eb.counters.complete == 2


def test_rows_record_exactly_as_single_dgrams(tmp_path: Path) -> None:
    pids = list(range(100, 140, 2))
    events = one_at_a_time(pids, (1, 2, 3))
    eb = EventBuilder(7, {0: [1, 2, 3]}, timeout=1.0, clock=Clock())
    out: list = []
    for node in (1, 2, 3):
        out += eb.add_batch(node, np.array(pids, np.uint64), rows_for(node, pids))
    (batch,) = out
    for name, write_rows in (("single", False), ("rows", True)):
        with StreamWriter(tmp_path / name, "x", 1, 0, inline_limit=200) as w:
            if write_rows:
                w.write_rows(batch.data)
            else:
                for ev in events:
                    w.write(Dgram(ev))
    for kind in ("xtc", "xtc/smalldata"):
        a = sorted((tmp_path / "single" / "x" / kind).glob("*.xtc2"))
        b = sorted((tmp_path / "rows" / "x" / kind).glob("*.xtc2"))
        assert [p.name for p in a] == [p.name for p in b] and a
        assert a[0].read_bytes() == b[0].read_bytes()
    (big,) = sorted((tmp_path / "rows" / "x" / "xtc").glob("*.xtc2"))
    assert [bytes(d.memoryview()) for d in read_dgrams(big)] == events


def test_a_batch_with_a_bad_row_joins_the_pending_batch_event_by_event() -> None:
    clock = Clock()
    eb = EventBuilder(7, {0: [1, 2]}, timeout=1.0, clock=clock)
    eb.add_batch(1, np.array([10, 12], np.uint64), rows_for(1, [10, 12]))
    rows2 = rows_for(2, [10, 12])
    rows2[1, 24:28] = rows2[1, 24:28].view("<u4") + 1  # row 1 claims another node's segment
    out = eb.add_batch(2, np.array([10, 12], np.uint64), rows2)
    assert [e.key for e in out] == [10]
    assert flat(out) == one_at_a_time([10])
    assert eb.counters.malformed == 1
    clock.t = 2.0
    (late,) = eb.poll()
    assert isinstance(late, BuiltEvent) and late.key == 12 and late.missing == (2,)
