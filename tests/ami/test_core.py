"""Workers, collectors and results without sockets: merging, coherence, late data, commands."""

from __future__ import annotations

import numpy as np
import pytest

from ami.comm import Command, Contribution, Done, Progress, Reply, WireError, decode, encode
from ami.ops import RunningSum
from ami.runtime import ManagerConfig, ManagerState, Merger, Results, WorkerCore

from . import _data, _graphs

N_EVENTS = 90


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _wire(msg):
    """Through the wire format and back, as between processes."""
    return decode([bytes(memoryview(f)) for f in encode(msg)])


def _run_workers(n_workers: int) -> list:
    dgrams = _data.dgrams(N_EVENTS)
    out = []
    for w in range(n_workers):
        core = WorkerCore(f"w{w}")
        core.set_graph(_graphs.graph(), 1)
        n = 0
        for d in dgrams:
            if d.service == 12:
                n += 1
                if (n - 1) % n_workers != w:
                    continue
            out.extend(_wire(m) for m in core.on_dgram(d))
        out.extend(_wire(m) for m in core.finish())
    return out


def test_two_workers_two_levels_match_one_process():
    clock = FakeClock()
    local, top = Merger(expected=2, clock=clock), Merger(expected=1, clock=clock)
    results = Results()
    from ami.comm import GraphUpdate

    results.set_graph(GraphUpdate(graph_version=1, graph=_graphs.graph().to_dict(), sources={
        "cam:raw": "image", "gasdet:energy": "scalar", "timing:laser": "scalar"}))
    for msg in _run_workers(2):
        local.receive(msg)
    published = []
    for m in local.release():
        top.receive(_wire(Contribution(sender="l0", heartbeat=m.heartbeat,
                                       graph_version=m.graph_version,
                                       watermark=local.watermark(), events=m.events,
                                       states=m.states, errors=m.errors)))
    top.receive(Done(sender="l0"))
    published = results.publish(top.release())
    views = {}
    counts = {}
    for _topic, msg in published:
        views[msg.view] = msg.value
        counts[msg.heartbeat] = msg.events
    assert counts == _graphs.events_per_heartbeat(N_EVENTS)
    expected = _graphs.single_process(N_EVENTS)
    assert views["s"] == pytest.approx(expected["s"])
    np.testing.assert_array_equal(views["h"]["counts"], expected["h"]["counts"])
    np.testing.assert_allclose(views["p"], expected["p"])
    assert views["e"] == expected["e"]
    bad = [msg for _t, msg in published if msg.view == "bad"]
    assert bad and all("tile" in msg.error for msg in bad)
    assert results.errors["bad"][0] == N_EVENTS


def test_late_contribution_is_counted_not_merged():
    clock = FakeClock()
    merger = Merger(expected=2, deadline=1.0, clock=clock)

    def contrib(sender: str, k: int, value: float) -> Contribution:
        acc = RunningSum()
        acc.update(value)
        return Contribution(sender=sender, heartbeat=k, graph_version=1, watermark=k, events=1,
                            states={"node:s": acc})

    merger.receive(Progress(sender="b", watermark=-1))
    merger.receive(contrib("a", 5, 1.0))
    assert merger.release() == []
    clock.t = 2.0
    (released,) = merger.release()
    assert not released.complete and released.states["node:s"].result() == 1.0
    merger.receive(contrib("b", 5, 10.0))
    assert merger.late == 1 and merger.release() == []
    merger.receive(contrib("b", 6, 2.0))
    merger.receive(contrib("a", 6, 3.0))
    (released,) = merger.release()
    assert released.complete and released.states["node:s"].result() == 5.0


def test_silent_child_is_missing_and_no_longer_waited_for():
    clock = FakeClock()
    merger = Merger(expected=2, deadline=100.0, missing_after=3.0, clock=clock)
    merger.receive(Contribution(sender="a", heartbeat=1, graph_version=0, watermark=1,
                                events=2))
    merger.receive(Contribution(sender="b", heartbeat=0, graph_version=0, watermark=0,
                                events=1))
    assert [m.heartbeat for m in merger.release()] == [0]
    clock.t = 5.0
    merger.receive(Contribution(sender="a", heartbeat=2, graph_version=0, watermark=2,
                                events=2))
    assert [m.heartbeat for m in merger.release()] == [1, 2]
    assert merger.statistics()["children"] == {"a": "ok", "b": "missing"}


def test_children_that_are_only_silent_never_finish_a_collector():
    """Live workers busy compiling (or starved) go silent: missing, but not done."""
    clock = FakeClock()
    merger = Merger(expected=2, deadline=100.0, missing_after=3.0, clock=clock)
    for name in ("a", "b"):
        merger.receive(Contribution(sender=name, heartbeat=0, graph_version=0, watermark=0,
                                    events=1))
    merger.release()
    clock.t = 10.0  # both silent
    merger.release()
    assert merger.statistics()["children"] == {"a": "missing", "b": "missing"}
    assert not merger.finished


def test_idle_live_worker_reports_by_wall_clock():
    wall = FakeClock()
    core = WorkerCore("w", 10.0, live=True, grace=0.1, clock=wall, monotonic=wall)
    d = _data.dgrams(1)
    core.on_dgram(d[0])
    wall.t = _data.T0 + 631152000 + 0.01  # the event arrives 10 ms after its time
    assert core.on_dgram(d[3]) == []
    wall.t += 0.05
    assert not [m for m in core.idle() if isinstance(m, Contribution)]
    wall.t += 0.2  # past the heartbeat's end + grace
    (msg,) = [m for m in core.idle() if isinstance(m, Contribution)]
    assert msg.events == 1


def test_commands_are_validated(tmp_path):
    state = ManagerState(ManagerConfig("", "", "", graph_dir=str(tmp_path)))
    state.handle(Command(cmd="announce", args={"name": "w0", "sources": {
        "cam:raw": {"type": "image"}, "gasdet:energy": {"type": "scalar"}}}))
    r = state.handle(Command(cmd="explode"))
    assert not r.ok and "unknown command 'explode'" in r.error
    r = state.handle(Command(cmd="remove_node", args={"name": 3}))
    assert not r.ok and "argument 'name' has the wrong type" in r.error
    r = state.handle(Command(cmd="get_graph", args={"x": 1}))
    assert not r.ok and "unknown argument" in r.error
    r = state.handle(Command(cmd="add_node", args={"node": {"name": "r", "op": "roi",
                                                            "inputs": {"image": "cam:rwa"}}}))
    assert not r.ok and "did you mean 'cam:raw'" in r.error
    r = state.handle(Command(cmd="add_node", args={"node": {"name": "r", "op": "roi",
                                                            "inputs": {"image": "cam:raw"}}}))
    assert r.ok and r.result["version"] == 1
    r = state.handle(Command(cmd="save_graph", args={"file": "../x.json"}))
    assert not r.ok and "plain file name" in r.error
    assert state.handle(Command(cmd="save_graph", args={"file": "g.json"})).ok
    assert (tmp_path / "g.json").exists()


def test_malformed_frames_are_refused():
    with pytest.raises(WireError, match="unknown message type"):
        decode([b"\x81\xa4type\xa4boom"])
    with pytest.raises(WireError, match="unreadable header"):
        decode([b"\xc1garbage"])
    frames = encode(Reply(ok=True, result=np.arange(3.0)))
    with pytest.raises(WireError, match="bytes for an array"):
        decode([frames[0], b"123"])
    with pytest.raises(WireError, match="field 'cmd' has the wrong type"):
        from ami.comm import pack

        decode(pack({"type": "command", "version": 1, "cmd": 5}))


def test_graph_change_takes_effect_at_the_given_heartbeat():
    from ami.graph import Graph, Node

    core = WorkerCore("w")
    core.set_graph(_graphs.graph(), 1)
    dgrams = _data.dgrams(60)
    msgs = [m for d in dgrams[:10] for m in core.on_dgram(d)]
    first = 11_000_000_000
    g2 = Graph((Node("s", "running_sum", {"value": "gasdet:energy"}),), {"s": "s"})
    core.set_graph(g2, 2, apply_from=first + 2)
    msgs += [m for d in dgrams[10:] for m in core.on_dgram(d)] + core.finish()
    versions = {m.heartbeat: m.graph_version for m in msgs if isinstance(m, Contribution)}
    assert versions == {first: 1, first + 1: 1, first + 2: 2, first + 3: 2, first + 4: 2}


def test_binding_off_loopback_needs_keys_or_insecure(tmp_path):
    from ami.comm import Security, check_bind

    check_bind("tcp://127.0.0.1:5560", Security())
    check_bind(f"ipc://{tmp_path}/x", Security())
    with pytest.raises(PermissionError, match="CURVE keys"):
        check_bind("tcp://0.0.0.0:5560", Security())
    check_bind("tcp://0.0.0.0:5560", Security(insecure=True))
