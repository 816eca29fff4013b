"""``Detector.read_batch``: row i is bit for bit ``read(shot_i)``, written into strided views."""

from __future__ import annotations

import numpy as np
import pytest

from daq.sim import DETECTOR_KINDS, Acqiris, Detector, Hsd, make_detector
from daq.sim._draws import gamma, normal, poisson, stream, substream
from daq.sim._kernels import NOISE_SCALE
from daq.timing import (
    PULSE_ID_MAX,
    SHOT_DTYPE,
    Shot,
    TimingConfig,
    TimingSystem,
    decode_shots,
)

START = 1_700_000_000.0
MIXED = TimingSystem(
    TimingConfig(start_time=START, xray_off_fraction=0.3, laser_off_every=3, seed=4)
)
AREA = {"cspad", "epix100", "jungfrau", "opal"}
SMALL = {
    "jungfrau": {"modules": 1},
    "acqiris": {"channels": 2, "samples": 300},
    "encoder": {"channels": 3},
}


def varied_shots(n_timing: int) -> list[Shot]:
    """Timing-system shots plus hand-made ones: beam off, x-ray off, laser on/off, extreme ids."""
    base = [MIXED.shot(k) for k in range(n_timing)]
    s = base[1]
    made = [
        s._replace(beam_present=False, xray_on=False, laser_on=True),
        s._replace(beam_present=False, xray_on=True, laser_on=False),  # odd, but on the wire
        s._replace(beam_present=True, xray_on=False, laser_on=False, counter=2**40 + 7),
        s._replace(beam_present=True, xray_on=True, laser_on=True, pulse_id=PULSE_ID_MAX),
        s._replace(pulse_id=0, counter=0, event_codes=(1 << 255) | (1 << 140) | 1),
        s._replace(pulse_id=2**55 + 12345, seconds=2**32 - 2, nanoseconds=999_999_999),
        s._replace(beam_present=True, xray_on=True, laser_on=False, pulse_id=s.pulse_id + 3),
        s._replace(readout_groups=0xFFFF, event_codes=(1 << 256) - 1),
    ]
    return base + made


def to_batch(shots: list[Shot]) -> np.ndarray:
    """The shots as the timing stream carries them: a read-only SHOT_DTYPE view of bytes."""
    return decode_shots(b"".join(s.encode() for s in shots))


def detector(kind: str) -> Detector:
    return make_detector(kind, f"{kind}_b", seed=11, **SMALL.get(kind, {}))


def batch_views(det: Detector, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A (n, size) uint8 block with every field as a strided, unaligned column view."""
    offsets, pos = {}, 1  # odd offsets: no view is aligned
    for f in det.fields:
        offsets[f.name] = pos
        pos += f.nbytes + 3
    block = np.full((n, pos + 5), 0xAB, np.uint8)  # odd row size too
    views = {}
    for f in det.fields:
        a = offsets[f.name]
        v = block[:, a : a + f.nbytes].view(f.dtype).reshape(n, *f.shape)
        assert np.shares_memory(v, block) and (n < 2 or not v.flags.c_contiguous)
        views[f.name] = v
    return block, views


def assert_rows_equal(det: Detector, shots: list[Shot], out: dict[str, np.ndarray]) -> None:
    for i, shot in enumerate(shots):
        single = det.read(shot)
        assert list(single) == [f.name for f in det.fields]
        for f in det.fields:
            one = np.asarray(single[f.name])
            assert one.dtype == f.dtype and one.shape == f.shape
            assert one.tobytes() == out[f.name][i].tobytes(), (det.kind, i, f.name)


# -- every kind ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(DETECTOR_KINDS))
def test_read_batch_rows_equal_single_reads(kind: str) -> None:
    shots = varied_shots(3 if kind in AREA else 40)
    det = detector(kind)
    out = {f.name: np.empty((len(shots), *f.shape), f.dtype) for f in det.fields}
    det.read_batch(to_batch(shots), out)
    assert_rows_equal(det, shots, out)
    # a fresh detector (nothing cached) and the batch in another order agree as well
    again = detector(kind)
    order = np.arange(len(shots))[::-1]
    out2 = {f.name: np.empty((len(shots), *f.shape), f.dtype) for f in det.fields}
    again.read_batch(to_batch([shots[i] for i in order]), out2)
    for f in det.fields:
        assert out2[f.name].tobytes() == out[f.name][order].tobytes(), f.name


@pytest.mark.parametrize("kind", sorted(DETECTOR_KINDS))
def test_read_batch_writes_into_strided_unaligned_views(kind: str) -> None:
    shots = varied_shots(2 if kind in AREA else 12)
    det = detector(kind)
    block, views = batch_views(det, len(shots))
    written = np.zeros(block.shape, bool)
    for v in views.values():
        written |= _touched(block, v)
    det.read_batch(to_batch(shots), views)
    assert_rows_equal(det, shots, views)
    assert np.all(block[~written] == 0xAB), "read_batch wrote outside its fields"


def _touched(block: np.ndarray, view: np.ndarray) -> np.ndarray:
    """The bytes of ``block`` that ``view`` covers."""
    mask = np.zeros(block.shape, bool)
    start = view.__array_interface__["data"][0] - block.__array_interface__["data"][0]
    mask[:, start : start + view[0].nbytes] = True
    return mask


@pytest.mark.parametrize("kind", ["timing", "gasdet", "ebeam", "ipm", "encoder", "phasecav",
                                  "acqiris", "hsd", "epics"])  # fmt: skip
def test_read_batch_of_timing_system_batches_and_empty_batches(kind: str) -> None:
    det = detector(kind)
    batch = MIXED.shots(100, 64)
    out = {f.name: np.zeros((64, *f.shape), f.dtype) for f in det.fields}
    det.read_batch(batch, out)
    assert_rows_equal(det, [Shot.from_record(r) for r in batch], out)
    empty = {f.name: np.zeros((0, *f.shape), f.dtype) for f in det.fields}
    det.read_batch(batch[:0], empty)


def test_read_batch_checks_its_arguments() -> None:
    det = detector("gasdet")
    batch = to_batch(varied_shots(4))
    out = {f.name: np.empty(len(batch)) for f in det.fields}
    with pytest.raises(ValueError, match="no field 'f_22_ENRC'"):
        det.read_batch(batch, {k: v for k, v in out.items() if k != "f_22_ENRC"})
    with pytest.raises(ValueError, match=rf"out\['f_11_ENRC'\] must be float64 \({len(batch)},\)"):
        det.read_batch(batch, out | {"f_11_ENRC": np.empty(3)})
    with pytest.raises(ValueError, match="must be float64"):
        det.read_batch(batch, out | {"f_11_ENRC": np.empty(len(batch), np.float32)})
    with pytest.raises(ValueError, match="SHOT_DTYPE"):
        det.read_batch(np.zeros(len(batch), np.uint64), out)
    assert batch.dtype == SHOT_DTYPE


# -- what the batch kernels compute --------------------------------------------------------------
@pytest.mark.parametrize("cls", [Acqiris, Hsd])
def test_digitizer_noise_reads_the_bank_where_noise_stream_says(cls: type[Acqiris]) -> None:
    """Without pulses a waveform is round(baseline + noise x bank[NoiseStream.start + i])."""
    det = cls("quiet", hits=0.0, samples=64, channels=2)
    p = det.params
    for pid in (0, 1, 12345, 2**40 + 3, PULSE_ID_MAX):
        shot = MIXED.shot(1)._replace(pulse_id=pid)
        z = det._noise.bank[det._noise.start(pid) :][:128].astype(np.float64) * NOISE_SCALE
        expect = np.clip(np.floor(p.baseline + p.noise * z + 0.5), *det.adc_range)
        assert np.array_equal(det.read(shot)["waveforms"].ravel(), expect)


def test_digitizer_pulse_statistics() -> None:
    """Poisson counts per nominal time, gamma heights, Gaussian jitter (the documented physics)."""
    det = Acqiris("stats", channels=2, samples=200, peak_times=(60.0,), hits=1.5,
                  time_jitter=5.0, amplitude=1000.0, amplitude_shape=4.0)  # fmt: skip
    counts, rel, peaks, amps = [], [], [], []
    for n in range(3000):
        shot = MIXED.shot(n)
        t = det.truth_event(shot)
        r = det.beam.relative_energy(shot)
        if r <= 0:
            assert t["channel"].size == 0
            continue
        rel.append(r)
        counts.append(t["channel"].size)
        peaks.extend(t["peak_samples"])
        amps.extend(t["amplitude"])
    assert np.mean(counts) == pytest.approx(2 * 1.5 * np.mean(rel), rel=0.05)
    assert np.std(peaks) == pytest.approx(5.0, rel=0.05) and abs(np.mean(peaks) - 60) < 0.2
    assert np.mean(amps) == pytest.approx(1000.0, rel=0.03)
    assert np.var(amps) == pytest.approx(1000.0**2 / 4.0, rel=0.1)


@pytest.mark.parametrize("mean", [0.3, 2.5, 150.0])
def test_poisson_draws(mean: float) -> None:
    # numba hands uint64 results back as Python ints: re-wrap them for the next call
    h = [np.uint64(substream(np.uint64(stream(np.uint64(7), np.uint64(i))), 0))
         for i in range(20000)]  # fmt: skip
    x = np.array([poisson(x, mean) for x in h])
    assert x.mean() == pytest.approx(mean, rel=0.03)
    assert x.var() == pytest.approx(mean, rel=0.06)


@pytest.mark.parametrize("shape", [0.5, 1.0, 4.0])
def test_gamma_and_normal_draws(shape: float) -> None:
    h = [np.uint64(stream(np.uint64(9), np.uint64(i))) for i in range(20000)]
    g = np.array([gamma(x, shape, 2.0) for x in h])
    assert g.min() > 0 and g.mean() == pytest.approx(2.0 * shape, rel=0.03)
    assert g.var() == pytest.approx(4.0 * shape, rel=0.08)
    z = np.array([normal(x, 0) for x in h])
    assert abs(z.mean()) < 0.03 and z.std() == pytest.approx(1.0, rel=0.03)
