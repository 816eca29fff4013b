"""Constant arrays as psana-style text: rows x last dimension, with a shape header.

psana writes an N-d constant as a 2-D table (all leading dimensions flattened into rows, the last
dimension as whitespace-separated columns). The table alone loses the shape, so we add one comment
line, ``# shape 32 185 388 dtype float32``; plain psana files without it still read when the
caller supplies the expected shape.
"""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt

from ._errors import CalibError

_FLOAT_FORMATS = {np.dtype(np.float16): "%.5g", np.dtype(np.float32): "%.9g"}


def format_text_array(arr: npt.ArrayLike, comments: tuple[str, ...] = ()) -> str:
    """Text of ``arr`` in the psana layout with a ``# shape ... dtype ...`` header line."""
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise CalibError(f"cannot write {a.dtype} arrays as text constants")
    shape = a.shape
    table = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(-1, shape[-1])
    if a.dtype.kind == "b":
        table = table.astype(np.uint8)
    fmt = "%d" if table.dtype.kind in "iu" else _FLOAT_FORMATS.get(table.dtype, "%.17g")
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    buf.write(f"# shape {' '.join(str(n) for n in shape)} dtype {a.dtype.name}\n")
    if table.size:
        np.savetxt(buf, table, fmt=fmt, delimiter=" ")
    return buf.getvalue()


def _parse_header(text: str, source: str) -> tuple[tuple[int, ...] | None, np.dtype | None]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            break  # the header comes before the data
        tokens = line[1:].split()
        if not tokens or tokens[0].lower() != "shape":
            continue
        try:
            if "dtype" in tokens:
                cut = tokens.index("dtype")
                dims, dtype = tokens[1:cut], np.dtype(tokens[cut + 1])
            else:
                dims, dtype = tokens[1:], None
            return tuple(int(d) for d in dims), dtype
        except (ValueError, TypeError, IndexError) as exc:
            raise CalibError(f"{source}: malformed shape header {line!r}") from exc
    return None, None


def parse_text_array(
    text: str,
    source: str = "<string>",
    expected_shape: tuple[int, ...] | None = None,
    dtype: npt.DTypeLike | None = None,
) -> np.ndarray:
    """Array from psana-style text; the header shape wins, else ``expected_shape``, else 2-D.

    ``dtype`` is used when the file has no header (default float64).
    """
    shape, hdr_dtype = _parse_header(text, source)
    if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise CalibError(f"{source}: no constant values in the file")
    want = hdr_dtype if hdr_dtype is not None else np.dtype(dtype if dtype is not None else float)
    try:
        try:
            table = np.loadtxt(io.StringIO(text), dtype=want, comments="#", ndmin=2)
        except ValueError:
            if want.kind not in "iub":
                raise
            # integers written as floats ("0.0"): parse as float, then cast.
            table = np.loadtxt(io.StringIO(text), dtype=float, comments="#", ndmin=2).astype(want)
    except ValueError as exc:
        raise CalibError(f"{source}: cannot parse constants: {exc}") from exc
    if shape is not None:
        if math.prod(shape) != table.size:
            raise CalibError(
                f"{source}: header says shape {shape} ({math.prod(shape)} values) "
                f"but the file holds {table.size} values ({table.shape[0]} x {table.shape[1]})"
            )
        return table.reshape(shape)
    if expected_shape is not None:
        expected = tuple(expected_shape)
        if math.prod(expected) != table.size:
            raise CalibError(
                f"{source}: expected shape {expected} ({math.prod(expected)} values) "
                f"but found a {table.shape[0]} x {table.shape[1]} table ({table.size} values)"
            )
        return table.reshape(expected)
    return table[0] if table.shape[0] == 1 else table
