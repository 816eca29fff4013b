"""AMI on real processes (manager, global and local collectors, workers) over ipc://."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ami.comm import Status, ViewUpdate
from ami.runtime import Endpoints, ManagerClient, ResultsClient

from . import _data, _graphs

TIMEOUT = 60.0


class Procs:
    """Processes started by a test, all stopped at its end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def ami(self, *args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "ami", *args])
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs() -> Iterator[Procs]:
    ps = Procs()
    try:
        yield ps
    finally:
        ps.stop()


def _start_core(procs: Procs, ep: Endpoints, graph: Path, workers: int,
                missing_after: float) -> None:
    timing = ["--deadline", "30", "--missing-after", str(missing_after)]
    procs.ami("manager", "--command", ep.command, "--graph-pub", ep.graph, "--results",
              ep.results, "--graph", str(graph))
    procs.ami("collector", "--name", "global", "--listen", ep.collect, "--results", ep.results,
              "--manager", ep.command, "--graph-pub", ep.graph, "--expect", "1",
              "--deadline", "30", "--missing-after", "30")
    procs.ami("collector", "--name", "local0", "--listen", ep.local, "--upstream", ep.collect,
              "--expect", str(workers), *timing)


def _worker(procs: Procs, ep: Endpoints, wid: str, source: str, index: int,
            count: int, *extra: str) -> subprocess.Popen[bytes]:
    return procs.ami("worker", "--id", wid, "--source", source, "--index", str(index),
                     "--count", str(count), "--manager", ep.command, "--graph-pub", ep.graph,
                     "--collector", ep.local, *extra)


def _until(sub: ResultsClient, done, what: str) -> list:
    """Messages until ``done(msg)``; fails after TIMEOUT seconds."""
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < TIMEOUT:
        msg = sub.next(1.0)
        if msg is None:
            continue
        seen.append(msg)
        if done(msg):
            return seen
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_two_workers_match_one_process(tmp_path, procs):
    n_events = 90
    run = _data.write_run(tmp_path / "run", n_events)
    graph = tmp_path / "g.json"
    _graphs.graph().save(graph)
    ep = Endpoints.ipc(tmp_path)
    _start_core(procs, ep, graph, 2, missing_after=30)
    with ResultsClient(ep.results) as sub:
        _until(sub, lambda m: isinstance(m, Status), "the first status")  # subscribed
        for i in range(2):
            _worker(procs, ep, f"w{i}", f"xtc://{run.parent}", i, 2)
        msgs = _until(sub, lambda m: isinstance(m, Status) and m.finished, "the end")
    updates = [m for m in msgs if isinstance(m, ViewUpdate)]
    counts = {m.heartbeat: m.events for m in updates if m.view == "s"}
    assert counts == _graphs.events_per_heartbeat(n_events)
    assert all(m.heartbeat in counts and m.events == counts[m.heartbeat] for m in updates)
    final = {m.view: m.value for m in updates}
    expected = _graphs.single_process(n_events)
    assert final["s"] == pytest.approx(expected["s"])
    np.testing.assert_array_equal(final["h"]["counts"], expected["h"]["counts"])
    np.testing.assert_allclose(final["p"], expected["p"])
    assert final["e"] == expected["e"]
    bad = [m for m in updates if m.view == "bad"]
    assert bad and all("bad: ValueError" in m.error and "tile" in m.error for m in bad)
    status = [m for m in msgs if isinstance(m, Status)][-1]
    assert status.workers["w0"]["events"] + status.workers["w1"]["events"] == n_events
    assert status.errors["bad"][0] == n_events
    assert status.late == status.dropped == status.incomplete == 0
    with ManagerClient(ep.command) as client:
        reply = client.raw_frames([b"\x93\x01\x02"])
        assert not reply.ok and reply.error.startswith("malformed command")
        assert sorted(client.request("get_sources")) == ["cam:raw", "gasdet:energy",
                                                          "timing:fiducial", "timing:laser"]
        assert client.request("status")["graph_version"] == 1


@pytest.mark.slow
def test_killed_worker_is_reported_missing(tmp_path, procs):
    n_events = 60
    run = _data.write_run(tmp_path / "run", n_events)
    graph = tmp_path / "g.json"
    _graphs.graph().save(graph)
    fifo = tmp_path / "stuck.xtc2"
    os.mkfifo(fifo)  # a reader blocks on it until killed
    ep = Endpoints.ipc(tmp_path)
    _start_core(procs, ep, graph, 2, missing_after=2)
    with ResultsClient(ep.results) as sub:
        _until(sub, lambda m: isinstance(m, Status), "the first status")
        _worker(procs, ep, "w0", f"xtc://{run}", 0, 1)
        stuck = _worker(procs, ep, "w1", f"xtc://{fifo}", 0, 1)
        _until(sub, lambda m: isinstance(m, Status) and "w1" in m.workers, "w1 to join")
        stuck.kill()
        stuck.wait(timeout=10)
        msgs = _until(sub, lambda m: isinstance(m, Status) and m.finished, "the end")
    status = msgs[-1]
    assert status.workers["w1"]["state"] == "missing"
    assert status.workers["w0"]["state"] == "done"
    counts = {m.heartbeat: m.events for m in msgs if isinstance(m, ViewUpdate)}
    assert counts == _graphs.events_per_heartbeat(n_events)  # w0 read all, alone


@pytest.mark.slow
def test_two_nodes_feed_one_global_collector(tmp_path, procs):
    """Two groups of workers, each with its local collector, one global collector."""
    n_events = 60
    run = _data.write_run(tmp_path / "run", n_events)
    graph = tmp_path / "g.json"
    _graphs.graph().save(graph)
    ep = Endpoints.ipc(tmp_path)
    procs.ami("manager", "--command", ep.command, "--graph-pub", ep.graph, "--results",
              ep.results, "--graph", str(graph))
    procs.ami("collector", "--name", "global", "--listen", ep.collect, "--results", ep.results,
              "--manager", ep.command, "--graph-pub", ep.graph, "--expect", "2",
              "--deadline", "30", "--missing-after", "30")
    locals_ = [f"ipc://{tmp_path / f'node{n}'}" for n in range(2)]
    for n, listen in enumerate(locals_):
        procs.ami("collector", "--name", f"node{n}", "--listen", listen, "--upstream",
                  ep.collect, "--expect", "1", "--deadline", "30", "--missing-after", "30")
    with ResultsClient(ep.results) as sub:
        _until(sub, lambda m: isinstance(m, Status), "the first status")
        for n, listen in enumerate(locals_):
            procs.ami("worker", "--id", f"n{n}w0", "--source", f"xtc://{run}", "--index",
                      str(n), "--count", "2", "--manager", ep.command, "--graph-pub",
                      ep.graph, "--collector", listen)
        msgs = _until(sub, lambda m: isinstance(m, Status) and m.finished, "the end")
    updates = [m for m in msgs if isinstance(m, ViewUpdate)]
    status = msgs[-1]
    assert (status.late, status.dropped, status.incomplete, status.mismatched) == (0, 0, 0, 0)
    assert {m.heartbeat: m.events for m in updates} == _graphs.events_per_heartbeat(n_events)
    expected = _graphs.single_process(n_events)
    final = {m.view: m.value for m in updates}
    assert final["s"] == pytest.approx(expected["s"])
    np.testing.assert_array_equal(final["h"]["counts"], expected["h"]["counts"])
    assert {"n0w0", "n1w0", "collector:node0", "collector:node1"} <= set(msgs[-1].workers)


@pytest.mark.slow
def test_ami_local_runs_to_the_end(tmp_path):
    run = _data.write_run(tmp_path / "run", 30)
    graph = tmp_path / "g.json"
    _graphs.graph().save(graph)
    done = subprocess.run(
        [sys.executable, "-m", "ami", "local", "--source", f"xtc://{run.parent}", "-n", "2",
         "--graph", str(graph), "--ipc", str(tmp_path), "--until-done", "--duration", "60"],
        timeout=90, check=False)
    assert done.returncode == 0


@pytest.mark.slow
def test_shared_memory_replay_into_two_workers_matches_one_process(tmp_path, procs):
    """A recorded run replayed through shared memory into 2 distributed workers gives the
    sums and histograms one process computes over the same events; heartbeats are coherent."""
    import uuid

    n_events = 90
    run = _data.write_run(tmp_path / "run", n_events)
    graph = tmp_path / "g.json"
    _graphs.graph().save(graph)
    tag = f"ami{uuid.uuid4().hex[:8]}"
    ep = Endpoints.ipc(tmp_path)
    serve = subprocess.Popen([sys.executable, "-m", "shmem", "serve", "--tag", tag, "--replay",
                              str(run), "--rate", "300", "--wait-clients", "2",
                              "--buffers", "128", "--linger", "60"])
    procs.procs.append(serve)
    _start_core(procs, ep, graph, 2, missing_after=30)
    with ResultsClient(ep.results) as sub:
        _until(sub, lambda m: isinstance(m, Status), "the first status")
        for i in range(2):  # a generous grace: a starved worker on a busy machine loses nothing
            _worker(procs, ep, f"w{i}", f"shmem://{tag}", i, 2, "--grace", "20")
        seen: dict[str, dict[int, int]] = {}

        def all_events(m: object) -> bool:
            if isinstance(m, ViewUpdate):
                seen.setdefault(m.view, {})[m.heartbeat] = m.events
            return all(sum(seen.get(v, {}).values()) >= n_events for v in ("s", "h", "p"))

        msgs = _until(sub, all_events, "every event in every view")
    updates = [m for m in msgs if isinstance(m, ViewUpdate)]
    # coherent heartbeats: every view of a heartbeat comes from the same events
    for view, per_hb in seen.items():
        if view in ("s", "h"):
            for hb, n in per_hb.items():
                assert seen["s"].get(hb, n) == n, (view, hb)
    assert sum(seen["s"].values()) == n_events
    final = {m.view: m.value for m in updates}
    expected = _graphs.single_process(n_events)
    assert final["s"] == pytest.approx(expected["s"])
    np.testing.assert_array_equal(final["h"]["counts"], expected["h"]["counts"])
    with ManagerClient(ep.command) as client:
        status = client.request("status")
    events = {w: status["workers"][w]["events"] for w in ("w0", "w1")}
    assert sum(events.values()) == n_events and min(events.values()) > 0  # the load is shared
