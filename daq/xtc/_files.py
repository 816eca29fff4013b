"""Run file naming: ``<expt>-r<run>-s<stream>-c<chunk>.xtc2``, ``smalldata/``, ``.inprogress``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

INPROGRESS = ".inprogress"
_NAME_RE = re.compile(
    r"^(?P<expt>[0-9A-Za-z_]+)-r(?P<run>\d{4,})-s(?P<stream>\d{3,})-c(?P<chunk>\d{3,})"
    r"(?P<smd>\.smd)?\.xtc2(?P<inprogress>\.inprogress)?$"
)
_EXPT_RE = re.compile(r"^[0-9A-Za-z_]+$")


def check_experiment(expt: str) -> str:
    if not _EXPT_RE.match(expt):
        raise ValueError(f"experiment name {expt!r} must match [0-9A-Za-z_]+")
    return expt


def chunk_name(expt: str, run: int, stream: int, chunk: int) -> str:
    """Big-data file name of one chunk of one stream."""
    return f"{check_experiment(expt)}-r{run:04d}-s{stream:03d}-c{chunk:03d}.xtc2"


def smd_name(expt: str, run: int, stream: int) -> str:
    """Small-data file name of a stream (one file, named after chunk 000)."""
    return f"{check_experiment(expt)}-r{run:04d}-s{stream:03d}-c000.smd.xtc2"


def xtc_dir(root: str | Path, expt: str) -> Path:
    return Path(root) / check_experiment(expt) / "xtc"


def smd_dir(root: str | Path, expt: str) -> Path:
    return xtc_dir(root, expt) / "smalldata"


@dataclass(frozen=True)
class RunFileName:
    expt: str
    run: int
    stream: int
    chunk: int
    smd: bool
    inprogress: bool


def parse_name(name: str | Path) -> RunFileName | None:
    """Parse a run file name (big or small data, finished or in progress), or None."""
    m = _NAME_RE.match(Path(name).name)
    if not m:
        return None
    return RunFileName(m["expt"], int(m["run"]), int(m["stream"]), int(m["chunk"]),
                       m["smd"] is not None, m["inprogress"] is not None)


def big_path_for_smd(smd_path: str | Path, chunk: int = 0) -> Path:
    """The big-data chunk beside a small-data file (``smalldata/x.smd.xtc2`` -> ``../x.xtc2``)."""
    p = Path(smd_path)
    info = parse_name(p)
    if info is None:
        raise ValueError(f"{p} is not named like a small-data file")
    name = chunk_name(info.expt, info.run, info.stream, chunk)
    return p.parent.parent / name


def smd_path_for_big(big_path: str | Path) -> Path:
    p = Path(big_path)
    info = parse_name(p)
    if info is None:
        raise ValueError(f"{p} is not named like a run file")
    return p.parent / "smalldata" / smd_name(info.expt, info.run, info.stream)


def run_streams(root: str | Path, expt: str, run: int,
                include_inprogress: bool = False) -> dict[int, list[Path]]:
    """Big-data chunks of a run by stream, in chunk order."""
    out: dict[int, list[tuple[int, Path]]] = {}
    d = xtc_dir(root, expt)
    if not d.is_dir():
        return {}
    for p in d.iterdir():
        info = parse_name(p)
        if info is None or info.smd or info.run != run or info.expt != expt:
            continue
        if info.inprogress and not include_inprogress:
            continue
        out.setdefault(info.stream, []).append((info.chunk, p))
    return {s: [p for _, p in sorted(v)] for s, v in sorted(out.items())}
