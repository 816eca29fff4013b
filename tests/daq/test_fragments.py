"""The fragment header: split and reassemble, and every kind of bad datagram refused."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.net import HEADER_SIZE, FragmentError, Reassembly, fragments, parse


def datagrams(payload: bytes, size: int = 1000, full_crc: bool = True) -> list[bytes]:
    return [b"".join(bytes(p) for p in parts) for parts in fragments(
        payload, fragment_size=size, transition=12, partition=7, node=3, pulse_id=99, epoch=2,
        full_crc=full_crc)]


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=5000), st.integers(HEADER_SIZE + 1, 2000), st.randoms())
def test_any_order_reassembles(payload: bytes, size: int, rnd: object) -> None:
    grams = datagrams(payload, size)
    rnd.shuffle(grams)  # type: ignore[attr-defined]
    heads = [parse(memoryview(g), len(g)) for g in grams]
    r = Reassembly(heads[0].total, heads[0].count)
    done = [r.add(h, memoryview(g), len(g)) for h, g in zip(heads, grams, strict=True)]
    assert done[-1] and not any(done[:-1])
    assert bytes(r.buf) == payload
    h = heads[0]
    assert (h.transition, h.partition, h.node, h.pulse_id, h.epoch) == (12, 7, 3, 99, 2)


def test_bad_datagrams() -> None:
    good = datagrams(os.urandom(3000))[1]
    mv = memoryview(good)
    with pytest.raises(FragmentError) as e:
        parse(mv, 20)
    assert e.value.reason == "short"
    bad = bytearray(good)
    bad[0] ^= 0xFF
    with pytest.raises(FragmentError) as e:
        parse(memoryview(bad), len(bad))
    assert e.value.reason == "foreign"
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    with pytest.raises(FragmentError) as e:
        parse(memoryview(bad), len(bad))
    assert e.value.reason == "checksum"
    bad = bytearray(good)
    struct.pack_into("<I", bad, 28, 1 << 29)  # offset beyond total
    with pytest.raises(FragmentError) as e:
        parse(memoryview(bad), len(bad))
    assert e.value.reason == "malformed"
    head = parse(mv, len(good))
    r = Reassembly(head.total, head.count)
    r.add(head, mv, len(good))
    with pytest.raises(FragmentError) as e:
        r.add(head, mv, len(good))
    assert e.value.reason == "duplicate"


def test_header_only_checksum_still_guards_the_header() -> None:
    good = datagrams(os.urandom(3000), full_crc=False)[0]
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # the payload is not covered by default: UDP checksums it
    parse(memoryview(bad), len(bad))
    bad = bytearray(good)
    bad[16] ^= 0x01  # a pulse id bit flipped in the header is caught
    with pytest.raises(FragmentError) as e:
        parse(memoryview(bad), len(bad))
    assert e.value.reason == "checksum"
