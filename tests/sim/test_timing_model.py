"""The timing model: clock, fiducials, pulse ids, timestamps, event codes, readout groups."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.timing import (
    EPICS_EPOCH_OFFSET,
    FIDUCIAL_ERROR,
    FIDUCIAL_MAX,
    FIDUCIAL_PERIOD,
    LCLS2_BASE_RATE,
    SHOT_SIZE,
    ConfigError,
    EventCodes,
    Shot,
    TimingConfig,
    TimingSystem,
    decode_shot,
    decode_shots,
    mix_key,
    pace,
    splitmix64,
    splitmix64_array,
    uniform,
    uniform_array,
)

START = 1_700_000_000.0  # POSIX seconds, November 2023


def system(**kw: object) -> TimingSystem:
    kw.setdefault("start_time", START)
    return TimingSystem(TimingConfig(**kw))  # type: ignore[arg-type]


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"beam_rate": 100.0}, "beam_rate"),
        ({"mode": "lcls3"}, "mode"),
        ({"mode": "lcls2", "beam_rate": 2e6}, "beam_rate"),
        ({"xray_off_fraction": 1.5}, "xray_off_fraction"),
        ({"drop_fraction": -0.1}, "drop_fraction"),
        ({"readout_groups": {16: 1}}, "readout_groups"),
        ({"readout_groups": {2: 0}}, "readout_groups[2]"),
        ({"laser_pattern": (1, 0), "laser_off_every": 3}, "laser_pattern"),
        ({"rate_divisor": 0}, "rate_divisor"),
        ({"pulse_id_start": 1 << 56}, "pulse_id_start"),
        ({"extra_codes": [(300, 2, 0)]}, "extra_codes[0].code"),
    ],
)
def test_config_errors_name_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        TimingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_dict_round_trip_and_unknown_key() -> None:
    cfg = TimingConfig(
        beam_rate=60, readout_groups={0: 1, 3: 10}, codes=EventCodes(laser_on=92), seed=7
    )
    again = TimingConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ConfigError, match="'beamrate'"):
        TimingConfig.from_dict({"beamrate": 120})
    with pytest.raises(ConfigError, match="event code 140"):
        TimingConfig.from_dict({"codes": {"laser_on": 140}})


def test_rates_and_divisors() -> None:
    assert TimingConfig().divisor == 3
    assert TimingConfig(beam_rate=0.5).divisor == 720
    lcls2 = TimingConfig(mode="lcls2", beam_rate=1e6)
    assert lcls2.divisor == 1 and lcls2.actual_beam_rate == pytest.approx(LCLS2_BASE_RATE)
    ten_k = TimingConfig(mode="lcls2", beam_rate=10e3)
    assert ten_k.divisor == 93 and abs(ten_k.actual_beam_rate - 10e3) < 100


# -- clock, fiducials, timestamps --------------------------------------------------------------
def test_lcls1_pulse_ids_fiducials_and_times() -> None:
    ts = system()
    shots = [ts.shot(n) for n in range(400)]
    pids = np.array([s.pulse_id for s in shots])
    assert np.all(np.diff(pids) == 3) and pids[0] % 3 == 0
    assert all(s.fiducial == s.pulse_id % FIDUCIAL_PERIOD for s in shots)
    t = np.array([s.timestamp64 for s in shots], dtype=np.uint64)
    assert np.all(np.diff(t.astype(np.int64)) > 0)
    ns = np.array([s.seconds * 10**9 + s.nanoseconds for s in shots])
    assert np.all(np.abs(np.diff(ns) - 10**9 / 120) <= 1)
    # EPICS epoch, and the first shot is within one beam period of the start
    assert 0 <= shots[0].posix_time - START < 1 / 120 + 1e-6
    assert shots[0].seconds == int(START) - EPICS_EPOCH_OFFSET


def test_fiducial_wraps_after_131040() -> None:
    ts = system(beam_rate=360.0, pulse_id_start=FIDUCIAL_PERIOD * 5 - 3)
    fids = [ts.shot(n).fiducial for n in range(6)]
    assert fids == [FIDUCIAL_MAX - 2, FIDUCIAL_MAX - 1, FIDUCIAL_MAX, 0, 1, 2]
    batch = ts.shots(0, 1000)
    assert batch["fiducial"].max() == FIDUCIAL_MAX and FIDUCIAL_ERROR not in batch["fiducial"]


def test_lcls2_fiducial_follows_the_360hz_tick() -> None:
    ts = system(mode="lcls2", beam_rate=1e6)
    b = ts.shots(0, 20_000)
    assert np.all(np.diff(b["pulse_id"].astype(np.int64)) == 1)
    period_ns = 1e9 / LCLS2_BASE_RATE
    t = b["seconds"].astype(np.int64) * 10**9 + b["nanoseconds"]
    assert np.allclose(np.diff(t), period_ns, atol=1)
    # the fiducial counts 360 Hz ticks of the pulse-id clock: it steps every ~2579 pulses
    steps = np.flatnonzero(np.diff(b["fiducial"].astype(np.int64)))
    assert np.allclose(np.diff(steps), LCLS2_BASE_RATE / 360, atol=1)
    expect = (b["pulse_id"].astype(np.int64) * 63 // 162_500) % FIDUCIAL_PERIOD
    assert np.array_equal(b["fiducial"], expect)
    assert int(b["pulse_id"].max()) < 1 << 56


def test_shots_are_pure_functions_of_the_counter() -> None:
    a, b = system(seed=3, xray_off_fraction=0.3), system(seed=3, xray_off_fraction=0.3)
    order = [17, 3, 999, 3, 0]
    assert [a.shot(n) for n in order] == [b.shot(n) for n in order]
    assert a.shot(17) == a.shot(17)
    assert list(a.iter_shots(5, 8)) == [a.shot(5), a.shot(6), a.shot(7)]


def test_clock_is_injected_and_read_once() -> None:
    readings = iter([int(START * 1e9), 0])
    ts = TimingSystem(TimingConfig(), clock=lambda: next(readings))  # ns int
    first = ts.shot(0)
    assert ts.shot(0) == first  # the clock was not read again
    float_clock = TimingSystem(TimingConfig(), clock=lambda: START)
    assert float_clock.shot(0) == first
    with pytest.raises(ValueError, match="EPICS epoch"):
        TimingSystem(TimingConfig(), clock=lambda: 1_700_000_000).start()  # int: ns, 1970


def test_counter_of_inverts_pulse_id() -> None:
    ts = system()
    s = ts.shot(1234)
    assert ts.counter_of(s.pulse_id) == 1234
    assert ts.counter_of(s.pulse_id + 1) is None


# -- event codes -------------------------------------------------------------------------------
def test_event_code_fractions_and_meaning() -> None:
    ts = system(xray_off_fraction=0.2, drop_fraction=0.05, laser_off_every=4, seed=11)
    n = 20_000
    b = ts.shots(0, n)
    shots = [Shot.from_record(r) for r in b[:3000]]
    codes = np.unpackbits(b["event_codes"], axis=1, bitorder="little").astype(bool)
    beam, xray_off, laser_on, laser_off = codes[:, 140], codes[:, 162], codes[:, 90], codes[:, 91]
    assert abs((~beam).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n)
    kicked = xray_off[beam].mean()
    assert abs(kicked - 0.2) < 4 * np.sqrt(0.2 * 0.8 / beam.sum())
    assert not np.any(xray_off & ~beam)
    assert np.all(laser_on ^ laser_off) and laser_off.mean() == 0.25
    assert np.all(codes[:, 40])  # every 120 Hz shot opens a 120 Hz tick
    assert np.array_equal(codes[:, 45], b["pulse_id"] % 360 == 0)
    for s in shots:
        assert s.xray_on == (s.has_code(140) and not s.has_code(162))
        assert s.laser_on == s.has_code(90) and s.beam_present == s.has_code(140)


def test_xray_decisions_depend_only_on_seed_and_pulse_id() -> None:
    a = system(xray_off_fraction=0.5, pulse_id_start=3000)
    b = system(xray_off_fraction=0.5, pulse_id_start=3000 + 3 * 50, start_time=START + 100)
    assert [a.shot(n + 50).xray_on for n in range(200)] == [b.shot(n).xray_on for n in range(200)]
    c = system(xray_off_fraction=0.5, pulse_id_start=3000, seed=1)
    assert [a.shot(n).xray_on for n in range(200)] != [c.shot(n).xray_on for n in range(200)]


def test_laser_pattern_and_extra_codes() -> None:
    ts = system(laser_pattern=(1, 1, 0), extra_codes=[(77, 5, 2)])
    shots = [ts.shot(n) for n in range(30)]
    assert [s.laser_on for s in shots[:6]] == [True, True, False, True, True, False]
    assert [s.counter for s in shots if s.has_code(77)] == [2, 7, 12, 17, 22, 27]


def test_readout_group_prescales() -> None:
    ts = system(readout_groups={0: 1, 2: 10, 5: 120})
    b = ts.shots(0, 1200)
    masks = b["readout_groups"]
    assert np.all(masks & 1)
    assert np.array_equal(np.flatnonzero(masks & 4), np.arange(0, 1200, 10))
    assert np.count_nonzero(masks & 32) == 10
    assert ts.shot(20).reads(2) and not ts.shot(21).reads(2)


def test_large_prescale_periods_use_the_direct_formula() -> None:
    ts = system(readout_groups={0: 65537, 1: 3})
    assert ts.shot(65537 * 3).readout_groups == 3
    assert ts.shots(65537, 1)["readout_groups"][0] == 1


# -- batches and encoding ----------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["lcls1", "lcls2"]),
    divisor=st.integers(1, 1000),
    start=st.integers(0, 10**7),
    xoff=st.floats(0, 1),
    drop=st.floats(0, 1),
    seed=st.integers(0, 2**64 - 1),
    prescale=st.integers(1, 50),
)
def test_batch_matches_single_shots(
    mode: str, divisor: int, start: int, xoff: float, drop: float, seed: int, prescale: int
) -> None:
    ts = system(
        mode=mode,
        rate_divisor=divisor,
        xray_off_fraction=xoff,
        drop_fraction=drop,
        seed=seed,
        readout_groups={0: 1, 7: prescale},
        extra_codes=[(200, 3, 1)],
    )
    batch = ts.shots(start, 50)
    for i in range(0, 50, 7):
        shot = ts.shot(start + i)
        assert batch[i].tobytes() == shot.encode()
        assert Shot.from_record(batch[i]) == shot


@settings(max_examples=100, deadline=None)
@given(
    pid=st.integers(0, 2**56 - 1),
    fid=st.integers(0, FIDUCIAL_MAX),
    sec=st.integers(0, 2**32 - 1),
    ns=st.integers(0, 10**9 - 1),
    counter=st.integers(0, 2**64 - 1),
    codes=st.integers(0, 2**256 - 1),
    groups=st.integers(0, 0xFFFF),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_shot_encoding_round_trip(
    pid: int,
    fid: int,
    sec: int,
    ns: int,
    counter: int,
    codes: int,
    groups: int,
    flags: tuple[bool, bool, bool],
) -> None:
    shot = Shot(pid, fid, sec, ns, counter, codes, groups, *flags)
    buf = shot.encode()
    assert len(buf) == SHOT_SIZE
    assert decode_shot(buf) == shot
    assert Shot.from_record(decode_shots(buf)[0]) == shot
    assert int.from_bytes(buf[24:32], "little") == shot.timestamp64


def test_decode_rejects_bad_input() -> None:
    good = system().shot(0).encode()
    with pytest.raises(ValueError, match="64 bytes"):
        decode_shot(good[:-1])
    with pytest.raises(ValueError, match="version"):
        decode_shot(b"\x02" + good[1:])
    with pytest.raises(ValueError, match="flag"):
        decode_shot(good[:1] + b"\x80" + good[2:])
    with pytest.raises(ValueError, match="whole number"):
        decode_shots(good + b"x")


# -- hashing -----------------------------------------------------------------------------------
def test_scalar_and_vector_hashes_agree() -> None:
    x = np.array([0, 1, 2**63, 2**64 - 1, 123456789], dtype=np.uint64)
    assert [int(v) for v in splitmix64_array(x)] == [splitmix64(int(v)) for v in x]
    key = mix_key(5, "stream")
    idx = np.arange(1000, 1100)
    assert np.array_equal(uniform_array(key, idx), [uniform(key, int(i)) for i in idx])
    u = uniform_array(key, np.arange(100_000))
    assert abs(u.mean() - 0.5) < 0.005 and abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02


# -- pacing and cost ---------------------------------------------------------------------------
def test_pace_sleeps_until_the_shot_is_due() -> None:
    now = [START]
    slept: list[float] = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        now[0] += dt

    ts = TimingSystem(TimingConfig(), clock=lambda: now[0], sleep=sleep)
    for n in range(5):
        assert ts.pace(ts.shot(n)) == 0.0
    assert now[0] == pytest.approx(ts.shot(4).posix_time)
    now[0] += 1.0
    assert ts.pace(ts.shot(5)) == pytest.approx(1.0 - 1 / 120, abs=1e-3)  # late, no sleep
    assert len(slept) <= 5
    unpaced = TimingSystem(TimingConfig(unpaced=True), clock=lambda: 0.0, sleep=sleep)
    n_slept = len(slept)
    unpaced.start(START)
    assert unpaced.pace(unpaced.shot(10**6)) == 0.0 and len(slept) == n_slept
    assert pace(ts.shot(0), clock=lambda: START + 10, sleep=sleep) > 9


def test_shot_generation_is_cheap() -> None:
    ts = system(xray_off_fraction=0.1, drop_fraction=0.01, readout_groups={0: 1, 1: 7, 2: 100})
    n = 20_000
    t0 = time.perf_counter()
    for i in range(n):
        ts.shot(i)
    per_shot = (time.perf_counter() - t0) / n
    assert per_shot < 25e-6, f"{per_shot * 1e6:.1f} us per shot"  # ~4 us unloaded
    t0 = time.perf_counter()
    ts.shots(0, 1_000_000)
    assert time.perf_counter() - t0 < 2.0
