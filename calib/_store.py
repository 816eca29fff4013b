"""The calibration constant store: a directory tree of run-range files, as in LCLS-I.

Layout: ``<root>/<det_type>/<det_name>/<ctype>/<begin>-<end>.<ext>`` where ``end`` may be the word
``end`` (open ended) and ``ext`` is ``data`` (psana text layout) or ``npy``. Each ctype folder keeps
a ``HISTORY`` log with one line per deploy. Lookup follows psana's ``CalibFileFinder``: among the
files whose range covers the run, the latest-starting one wins; for equal starts the shorter range
(the more specific one) wins; for an identical range ``npy`` wins over ``data``.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import CalibError
from ._geometry import Geometry
from ._textarray import format_text_array, parse_text_array

CTYPES = (
    "pedestals",
    "pixel_rms",
    "pixel_status",
    "pixel_gain",
    "pixel_mask",
    "pixel_offset",
    "pixel_bkgd",
    "common_mode",
    "geometry",
)
FORMATS = ("data", "npy")
_EXT_PRIORITY = {"npy": 0, "data": 1}  # lower wins when two files have the same range
# dtype of headerless psana text files, per constant type
_TEXT_DTYPES = {"pixel_status": np.uint64, "pixel_mask": np.uint8}


@dataclass(frozen=True)
class RunRange:
    """Runs ``begin..end`` inclusive; ``end=None`` is open ended (``<begin>-end``)."""

    begin: int
    end: int | None = None

    def __post_init__(self) -> None:
        if self.begin < 0 or (self.end is not None and self.end < self.begin):
            raise CalibError(f"invalid run range {self.begin}-{self.end}")

    def covers(self, run: int) -> bool:
        return self.begin <= run and (self.end is None or run <= self.end)

    def __str__(self) -> str:
        return f"{self.begin}-{'end' if self.end is None else self.end}"

    @classmethod
    def parse(cls, text: str, source: str = "") -> RunRange:
        """``"5-end"`` or ``"5-20"``; errors name ``source`` (the file)."""
        where = f"{source}: " if source else ""
        begin, sep, end = text.partition("-")
        try:
            if not sep:
                raise ValueError("no '-'")
            b = int(begin)
            e = None if end == "end" else int(end)
            return cls(b, e)
        except (ValueError, CalibError) as exc:
            raise CalibError(
                f"{where}cannot parse run range {text!r} (expected <begin>-<end>, "
                f"e.g. 1-end or 5-20): {exc}"
            ) from exc


@dataclass(frozen=True)
class CalibEntry:
    """One constants file of the store."""

    det_type: str
    det_name: str
    ctype: str
    runs: RunRange
    fmt: str
    path: Path

    def _rank(self) -> tuple[int, float, int]:
        # larger rank wins: later begin, then shorter range, then preferred format
        end = float("inf") if self.runs.end is None else self.runs.end
        return (self.runs.begin, -end, -_EXT_PRIORITY[self.fmt])


def _check_name(kind: str, value: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\0" in value:
        raise CalibError(f"invalid {kind} {value!r} for a calibration path")
    return value


class CalibStore:
    """Constants on disk under ``root``; construction does no I/O.

    ``clock`` (seconds since the epoch) and ``user`` are injected for the HISTORY log.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, clock: Callable[[], float] = time.time,
        user: str | None = None,
    ) -> None:
        self.root = Path(root)
        self._clock = clock
        self._user = user

    def __repr__(self) -> str:
        return f"CalibStore({str(self.root)!r})"

    # -- layout ---------------------------------------------------------------------------------
    def folder(self, det_type: str, det_name: str, ctype: str) -> Path:
        """The folder of one constant type of one detector."""
        return (
            self.root
            / _check_name("detector type", det_type)
            / _check_name("detector name", det_name)
            / _check_name("constant type", ctype)
        )

    def entries(self, det_type: str, det_name: str, ctype: str) -> list[CalibEntry]:
        """Files of one ctype folder in lookup order (the first covering entry wins)."""
        folder = self.folder(det_type, det_name, ctype)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            stem, dot, ext = path.name.rpartition(".")
            if not dot or ext not in FORMATS or path.name.startswith(".") or not path.is_file():
                continue  # HISTORY, temporary files, notes
            runs = RunRange.parse(stem, source=str(path))
            found.append(CalibEntry(det_type, det_name, ctype, runs, ext, path))
        return sorted(found, key=CalibEntry._rank, reverse=True)

    @staticmethod
    def _subdirs(parent: Path, only: str | None) -> list[Path]:
        if only is not None:
            p = parent / only
            return [p] if p.is_dir() else []
        if not parent.is_dir():
            return []
        return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))

    # -- lookup ---------------------------------------------------------------------------------
    def find(self, det_type: str, det_name: str, ctype: str, run: int) -> Path | None:
        """Path of the file valid for ``run``, or None when there is none."""
        for entry in self.entries(det_type, det_name, ctype):
            if entry.runs.covers(run):
                return entry.path
        return None

    def load(
        self, det_type: str, det_name: str, ctype: str, run: int,
        expected_shape: tuple[int, ...] | None = None,
    ) -> Any:
        """Constants valid for ``run`` (an array; text for ``geometry``), or None if none.

        With ``expected_shape`` a file of another shape raises CalibError naming both shapes.
        """
        path = self.find(det_type, det_name, ctype, run)
        return None if path is None else read_constants(path, ctype, expected_shape)

    def require(
        self, det_type: str, det_name: str, ctype: str, run: int,
        expected_shape: tuple[int, ...] | None = None,
    ) -> Any:
        """Like :meth:`load`, but a missing constant raises CalibError saying what exists."""
        value = self.load(det_type, det_name, ctype, run, expected_shape)
        if value is None:
            have = [str(e.runs) for e in self.entries(det_type, det_name, ctype)]
            raise CalibError(
                f"no {ctype} for {det_type}/{det_name} run {run} in {self.root}"
                + (f" (files cover runs {', '.join(have)})" if have else " (none deployed)")
            )
        return value

    # -- deploy ---------------------------------------------------------------------------------
    def deploy(
        self, det_type: str, det_name: str, ctype: str, value: npt.ArrayLike | str,
        runs: tuple[int, int | None] | RunRange = (0, None), fmt: str | None = None,
        source: str = "",
    ) -> Path:
        """Write constants valid for ``runs``; appends a line to the folder's HISTORY.

        Text (``str``) is written as is (geometry); arrays as psana text (``fmt="data"``, the
        default) or ``.npy``. A file of the same range in the other format is replaced.
        """
        rr = runs if isinstance(runs, RunRange) else RunRange(int(runs[0]), runs[1])
        is_text = isinstance(value, str)
        fmt = fmt or "data"
        if fmt not in FORMATS or (is_text and fmt != "data"):
            raise CalibError(f"unsupported format {fmt!r} for {ctype} (use one of {FORMATS})")
        folder = self.folder(det_type, det_name, ctype)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{rr}.{fmt}"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        if isinstance(value, str):
            tmp.write_text(value if value.endswith("\n") else value + "\n")
        elif fmt == "npy":
            with tmp.open("wb") as f:
                np.save(f, np.asarray(value), allow_pickle=False)
        else:
            tmp.write_text(format_text_array(value, comments=(f"{ctype} runs {rr}",)))
        os.replace(tmp, path)
        for other in FORMATS:
            twin = folder / f"{rr}.{other}"
            if other != fmt and twin.exists():
                twin.unlink()
                source = f"{source} (replaces {twin.name})".strip()
        self._log(folder, path.name, source)
        return path

    def geometry(self, det_type: str, det_name: str, run: int) -> Geometry | None:
        """The geometry valid for ``run``, parsed (GeometryError names the file and line)."""
        path = self.find(det_type, det_name, "geometry", run)
        return None if path is None else Geometry.read(path)

    def history(self, det_type: str, det_name: str, ctype: str) -> list[str]:
        """Lines of the folder's HISTORY log (oldest first)."""
        log = self.folder(det_type, det_name, ctype) / "HISTORY"
        return log.read_text().splitlines() if log.exists() else []

    def _log(self, folder: Path, name: str, source: str) -> None:
        when = datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="seconds")
        line = f"{when}  user: {self._who()}  file: {name}  source: {source or '-'}\n"
        with (folder / "HISTORY").open("a") as f:
            f.write(line)

    def _who(self) -> str:
        if self._user is not None:
            return self._user
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


    def list(
        self, det_type: str | None = None, det_name: str | None = None, ctype: str | None = None
    ) -> list[CalibEntry]:
        """All files, optionally restricted to a detector type, name and constant type."""
        out: list[CalibEntry] = []
        for t in self._subdirs(self.root, det_type):
            for n in self._subdirs(t, det_name):
                for c in self._subdirs(n, ctype):
                    out.extend(self.entries(t.name, n.name, c.name))
        return sorted(out, key=lambda e: (e.det_type, e.det_name, e.ctype, e.runs.begin))

def read_constants(
    path: str | os.PathLike[str], ctype: str = "", expected_shape: tuple[int, ...] | None = None
) -> Any:
    """Read one constants file: text for geometry, else an array (shape-checked if asked)."""
    p = Path(path)
    if ctype == "geometry":
        return p.read_text()
    if p.suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CalibError(f"{p}: cannot read constants: {exc}") from exc
    else:
        arr = parse_text_array(
            p.read_text(), str(p), expected_shape, _TEXT_DTYPES.get(ctype, np.float64)
        )
    if expected_shape is not None and arr.shape != tuple(expected_shape):
        raise CalibError(
            f"{p}: {ctype or 'constants'} shape {arr.shape} does not match the detector's "
            f"expected shape {tuple(expected_shape)}"
        )
    return arr
