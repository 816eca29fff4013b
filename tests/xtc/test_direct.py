"""DirectOut: O_DIRECT staging buffers written by a thread; the file is always what was appended."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from daq.xtc._direct import ALIGN, DirectOut


def _parts(rng: np.random.Generator, n: int) -> list[bytes]:
    sizes = rng.integers(1, 3 * ALIGN, n)
    sizes[::7] = 70_000  # some parts span staging buffers
    return [rng.integers(0, 256, s, dtype=np.uint8).tobytes() for s in sizes]


@pytest.mark.parametrize("o_direct", [True, False])
def test_appended_bytes_land_in_order(tmp_path: Path, o_direct: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not o_direct:  # a file system that refuses O_DIRECT (EINVAL), as older tmpfs does
        real_open = os.open

        def refuse(path: str, flags: int, *args: int) -> int:
            if flags & getattr(os, "O_DIRECT", 0):
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", refuse)
    path = tmp_path / "f.xtc2"
    rng = np.random.default_rng(1)
    parts = _parts(rng, 200)
    out = DirectOut(path, buffer_bytes=16 * ALIGN, buffers=2)
    out.open()
    want = bytearray()
    for k, p in enumerate(parts):
        out.write([p[:5], p[5:]], len(p))
        want += p
        if k == 100:
            out.flush()
            assert path.read_bytes() == bytes(want)
    out.close()
    assert out.size == len(want)
    assert path.read_bytes() == bytes(want)
    assert out.direct == (o_direct and hasattr(os, "O_DIRECT"))


def test_flush_makes_the_tail_visible_before_close(tmp_path: Path) -> None:
    path = tmp_path / "f.xtc2"
    out = DirectOut(path, buffer_bytes=4 * ALIGN, buffers=2)
    out.open()
    try:
        data = bytes(range(256)) * 50  # 12,800 bytes: three 4 KiB blocks and a tail
        out.write([data], len(data))
        out.flush()
        assert path.read_bytes() == data
        more = b"xyz" * 1000
        out.write([more], len(more))
        out.flush(wait=False)
        out.flush()
        assert path.read_bytes() == data + more
    finally:
        out.close()
    assert path.read_bytes() == data + more


def test_write_errors_surface_on_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "f.xtc2"
    out = DirectOut(path, buffer_bytes=4 * ALIGN, buffers=2)
    out.open()
    os.close(out.fd)  # the writer thread's next write fails with EBADF
    try:
        with pytest.raises(OSError, match="cannot write"):
            for _ in range(100):
                out.write([bytes(ALIGN)], ALIGN)
    finally:
        out._fd = -1  # already closed above
        with pytest.raises(OSError):
            out.close()
