"""The ``daq`` command: one entry point with a sub-command per job."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import sys
from collections.abc import Sequence

from daq.xtc import cli as xtc_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daq", description="Simulated XFEL data acquisition")
    sub = parser.add_subparsers(dest="command", required=True)
    xtc_cli.add_commands(sub)
    from daq import cli_daq, demo, translate

    cli_daq.add_commands(sub)
    demo.add_command(sub)
    translate.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with contextlib.suppress(io.UnsupportedOperation, AttributeError, ValueError):
        faulthandler.enable()  # a crash in any process leaves a traceback in its log
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
