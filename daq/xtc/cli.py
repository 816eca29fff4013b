"""``daq xtc``: dump, validate and index XTC2 files from the command line."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ._decode import Decoder
from ._dump import DEFAULT_WORDS, dgram_lines
from ._errors import XtcError, XtcTruncatedWarning
from ._file import XtcFileReader
from ._smd import SmdGenerator
from ._validate import validate_file
from ._writer import writev_all


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``dump``, ``validate`` and ``smd`` under a ``xtc`` command."""
    xtc = sub.add_parser("xtc", help="inspect, validate and index XTC2 files")
    xsub = xtc.add_subparsers(dest="xtc_command", required=True)

    dump = xsub.add_parser("dump", help="print dgrams as the reference xtcreader does")
    dump.add_argument("file", type=Path)
    dump.add_argument("-d", "--detail", action="store_true",
                      help="print every Names block and every value")
    dump.add_argument("-w", "--words", type=int, default=DEFAULT_WORDS,
                      help="array elements printed per field (default %(default)s)")
    dump.add_argument("-n", "--max-dgrams", type=int, default=None)
    dump.add_argument("-c", "--config", type=Path, default=None,
                      help="take the Names from this file's Configure (for later chunks)")
    dump.set_defaults(func=cmd_dump)

    val = xsub.add_parser("validate", help="check files strictly; exit 1 if any is invalid")
    val.add_argument("files", type=Path, nargs="+")
    val.add_argument("-c", "--config", type=Path, default=None,
                     help="file whose Configure describes these (chunks after the first)")
    val.add_argument("--no-smd", action="store_true", help="skip small-data offset checks")
    val.add_argument("--big", type=Path, action="append", default=None, metavar="CHUNK",
                     help="big-data chunk file(s), in order, that small-data files index "
                     "(default: found beside them)")
    val.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    val.set_defaults(func=cmd_validate)

    smd = xsub.add_parser("smd", help="write the small-data file of an existing big file")
    smd.add_argument("big", type=Path)
    smd.add_argument("-o", "--output", type=Path, required=True)
    smd.add_argument("--inline", type=int, default=0, metavar="BYTES",
                     help="copy contributions up to this size into the small data (default 0)")
    smd.set_defaults(func=cmd_smd)


def cmd_dump(args: argparse.Namespace) -> int:
    decoder = Decoder()
    out = sys.stdout
    try:
        if args.config is not None:
            with XtcFileReader(args.config) as cfg:
                first = next(iter(cfg), None)
            if first is not None:
                decoder.lookup.add_configure(first)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", XtcTruncatedWarning)
            with XtcFileReader(args.file) as reader:
                for number, dg in enumerate(reader, start=1):
                    if args.max_dgrams is not None and number > args.max_dgrams:
                        break
                    for line in dgram_lines(number, dg, decoder, args.detail, args.words):
                        out.write(line + "\n")
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except XtcError as err:
        out.flush()
        print(f"error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        report = validate_file(path, config=args.config, check_smd=not args.no_smd,
                               big=args.big)
        if report.ok:
            if not args.quiet:
                print(f"{path}: valid ({report.dgrams} dgrams, {report.events} events)")
        else:
            bad += 1
            for problem in report.problems:
                print(f"INVALID {problem}")
        if not args.quiet:
            for note in report.notes:
                print(f"{path}: note: {note}")
    return 1 if bad else 0


def cmd_smd(args: argparse.Namespace) -> int:
    gen = SmdGenerator(args.inline)
    n = 0
    try:
        with XtcFileReader(args.big, strict=True) as reader, open(args.output, "wb") as out:
            offset = 0
            for dg in reader:
                enc = gen.convert(dg, offset)
                out.flush()
                writev_all(out.fileno(), enc.parts)
                offset += dg.size
                n += 1
    except XtcError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.output}: small data for {n} dgrams of {args.big}")
    return 0
