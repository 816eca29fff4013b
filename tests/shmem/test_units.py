"""Pure parts: tags, layout, transition cache, messages, dgram views, replay order."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.xtc import Dgram, TransitionId, XtcError
from shmem import TransitionCache, validate_tag
from shmem._layout import Layout
from shmem._proto import BadMessageError, check_attach, decode, encode
from shmem._replay import ReplaySource
from shmem._view import DgramFactory

from .conftest import event, transition

T = TransitionId


@pytest.mark.parametrize("tag", ["demo", "a.b-c_1", "x" * 64])
def test_good_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "../etc", "a/b", "a b", "x" * 65, "é", "a\0"])
def test_bad_tags(tag: str) -> None:
    with pytest.raises(ValueError):
        validate_tag(tag)


def test_layout_offsets_do_not_overlap() -> None:
    lay = Layout(16, 8, 5_000_000, 70_000, 4, 64)
    assert lay.control_size % 4096 == 0
    ends = [lay.buffer_offset(s) + lay.capacity(s) for s in range(lay.n_slots)]
    starts = [lay.buffer_offset(s) for s in range(lay.n_slots)]
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))
    assert starts[0] >= lay.rings_offset + 4 * 64 * 8
    assert ends[-1] <= lay.total
    with pytest.raises(ValueError):
        Layout(16, 8, 4096, 4096, 4, 48)  # ring not a power of two


def test_cache_end_pops_its_begin_and_deeper() -> None:
    c = TransitionCache()
    for slot, t in enumerate([T.Configure, T.BeginRun, T.BeginStep, T.Enable]):
        assert c.push(t, 1, slot) == (True, [])
    assert c.push(T.SlowUpdate, 2, 9) == (False, [])
    assert c.push(T.Disable, 3, 10) == (False, [3])
    assert c.push(T.EndRun, 4, 11) == (False, [1, 2])
    assert c.slots() == [0]
    assert c.push(T.BeginRun, 5, 12) == (True, [])
    assert [e.service for e in c.entries()] == [T.Configure, T.BeginRun]


def test_cache_keeps_each_streams_configure_and_replaces_an_old_one() -> None:
    c = TransitionCache()
    c.push(T.Configure, 1, 0)
    c.push(T.Configure, 1, 1)  # a second stream, same time
    assert c.slots() == [0, 1]
    assert c.push(T.Configure, 2, 2) == (True, [0, 1])  # a new Configure without Unconfigure


def test_messages_are_checked() -> None:
    msg = decode(encode("attach", group="g", mode="shared", pid=1, name="n"))
    assert check_attach(msg) == ("g", "shared", 0, 1, "n")
    for bad in [b"", b"\xc1", encode("x")[:-1], b"\x93\x01\x02\x03"]:
        with pytest.raises(BadMessageError):
            decode(bad)
    with pytest.raises(BadMessageError):
        check_attach(decode(encode("attach", group="g", mode="serial")))


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.sampled_from(list(T)),
       st.integers(48, 300))
def test_fast_dgram_views_match_dgram(sec: int, ns: int, t: TransitionId, size: int) -> None:
    data = bytearray(event(3, size))
    struct.pack_into("<III", data, 0, ns, sec, (int(t) << 24) | 5)
    ref = Dgram(data)
    fast = DgramFactory("x").make(memoryview(data), len(data))
    for name in ("offset", "nanoseconds", "seconds", "env", "root", "size", "service"):
        assert getattr(fast, name) == getattr(ref, name)
    assert bytes(fast.memoryview()) == bytes(ref.memoryview())


def test_fast_dgram_rejects_what_dgram_rejects() -> None:
    data = bytearray(event(1))
    struct.pack_into("<I", data, 20, 4)  # extent too small
    with pytest.raises(XtcError):
        DgramFactory("x").make(memoryview(data), len(data))


def _write(path: Path, dgrams: list[bytes]) -> None:
    path.write_bytes(b"".join(dgrams))


def test_replay_merges_streams_in_time_order_and_loops_cleanly(tmp_path: Path) -> None:
    def ev(ns: int) -> bytes:
        d = bytearray(event(ns))
        return bytes(d)

    def tr(t: TransitionId, ns: int) -> bytes:
        return transition(t, 1, ns).tobytes()

    s0 = [tr(T.Configure, 0), tr(T.BeginRun, 1), tr(T.Enable, 2), ev(10), ev(30)]
    s1 = [tr(T.Configure, 0), tr(T.BeginRun, 1), tr(T.Enable, 2), ev(20), ev(40)]
    _write(tmp_path / "e-r0001-s000-c000.xtc2", s0)
    _write(tmp_path / "e-r0001-s001-c000.xtc2", s1)
    (tmp_path / "smalldata").mkdir()
    _write(tmp_path / "e-r0001-s000-c000.smd.xtc2", [tr(T.Configure, 0)])
    src = ReplaySource([tmp_path], loop=True)
    out = []
    for dg in src:
        out.append((TransitionId.name_of(dg.service), dg.nanoseconds))
        if len(out) == 16:
            break
    names = [n for n, _ in out]
    assert names[:3] == ["Configure", "BeginRun", "Enable"]  # once, though both streams hold them
    assert [ns for n, ns in out[3:7]] == [10, 20, 30, 40]
    assert names[7:10] == ["Disable", "EndRun", "Unconfigure"]  # closed before the next pass
    assert names[10] == "Configure"


def test_spin_policy_follows_recent_cpu_pressure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client spins long only if tasks waited little for a CPU since it last looked (the
    growth of PSI's total stall time); ``avg10``, which lags, only after a long gap."""
    from shmem import _client

    psi = {"avg10": 50.0, "total": 10_000_000}

    def fake_open(path: str, mode: str = "r") -> io.BytesIO:
        assert path == "/proc/pressure/cpu"
        return io.BytesIO(f"some avg10={psi['avg10']:.2f} avg60=0.00 avg300=0.00 "
                          f"total={psi['total']}\n".encode())

    monkeypatch.setattr(_client, "open", fake_open, raising=False)
    c = _client.ShmemClient("t")
    assert not c._core_free(100.0)  # first look: avg10 (50 %)
    psi["total"] += 10_000  # 10 ms of waiting in 1 s: 1 %, though avg10 still says 50 %
    assert not c._core_free(100.4)  # looked at twice a second at most: as before
    assert c._core_free(101.0)
    psi["total"] += 100_000  # 100 ms in 1 s: 10 %
    assert not c._core_free(102.0)
    psi["avg10"] = 1.0
    assert c._core_free(130.0)  # after a long gap: avg10


def test_monitor_first_line_counts_from_the_attach_time() -> None:
    from daq.xtc import Dgram, TransitionId, make_dgram
    from shmem._monitor import MonitorSummary

    summary = MonitorSummary()
    summary.start(100.0)
    event = Dgram(make_dgram(TransitionId.L1Accept, 1, 2).tobytes())
    for _ in range(10):
        summary.add(event)
    assert "rate 5.0 Hz" in summary.line(102.0)
    assert "rate 0.0 Hz" in summary.line(103.0)  # nothing since the last line
