"""``ami gui`` / ``ami-gui``: the control-room window, or the headless status-and-snapshots
mode (chosen automatically when there is no display)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ami.comm import Security

from ._client import AmiClient, ClientConfig

DEFAULT_PORT = 5560


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ami-gui", description=__doc__)
    p.add_argument("--manager", default=None,
                   help="the manager's command endpoint (default tcp://HOST:PORT)")
    p.add_argument("--results", default=None,
                   help="the global collector's results endpoint (default: manager port + 2)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"base port of the default endpoints ({DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="host of the default endpoints")
    p.add_argument("--ipc", default=None, help="ipc:// endpoints in this folder (ami local --ipc)")
    p.add_argument("--keys", default=None, help="CURVE key folder (needed off loopback)")
    p.add_argument("--graph", default=None, help="graph JSON to apply at start")
    p.add_argument("--session", default=None, help="session file to restore at start")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="seconds without an answer before the manager counts as lost")
    p.add_argument("--headless", action="store_true",
                   help="no window: print the status, write PNGs of every view, exit")
    p.add_argument("--duration", type=float, default=10.0, help="headless: seconds to run")
    p.add_argument("--interval", type=float, default=1.0,
                   help="headless: seconds between status lines")
    p.add_argument("--snapshots", default="data/snapshots",
                   help="headless: folder of the PNG files ('' for none)")
    return p


def endpoints(args: argparse.Namespace) -> tuple[str, str]:
    """(command, results) endpoints from the options."""
    if args.ipc:
        folder = Path(args.ipc)
        command, results = f"ipc://{folder / 'command'}", f"ipc://{folder / 'results'}"
    else:
        command = f"tcp://{args.host}:{args.port}"
        results = f"tcp://{args.host}:{args.port + 2}"
    if args.manager:
        command = args.manager
        if not args.results and args.manager.startswith("tcp://"):
            host, _, port = args.manager[6:].rpartition(":")
            if port.isdigit():
                results = f"tcp://{host}:{int(port) + 2}"
    return command, args.results or results


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM"))


_OFFSCREEN_NOTICES = ("propagateSizeHints", "XDG_RUNTIME_DIR", "does not support raise()")


def _quiet_offscreen_plugin() -> None:
    """Headless: drop the offscreen platform's notices about window hints (one per view)."""
    from PyQt5.QtCore import qInstallMessageHandler

    def handler(mode: object, context: object, message: str | None) -> None:
        if message and any(notice in message for notice in _OFFSCREEN_NOTICES):
            return
        sys.stderr.write(f"{message}\n")

    qInstallMessageHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ami-gui`` and ``ami gui``."""
    args = parser().parse_args(argv)
    headless = args.headless
    if not headless and not has_display():
        print("ami-gui: no display: running headless (--headless)", file=sys.stderr)
        headless = True
    if headless:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _quiet_offscreen_plugin()
    from PyQt5.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    command, results = endpoints(args)
    security = Security(Path(args.keys) if args.keys else None)
    client = AmiClient(ClientConfig(command, results, security, timeout=args.timeout))
    if headless:
        from ._headless import HeadlessConfig, run_headless

        cfg = HeadlessConfig(duration=args.duration, interval=args.interval,
                             snapshots=Path(args.snapshots) if args.snapshots else None,
                             graph=Path(args.graph) if args.graph else None,
                             session=Path(args.session) if args.session else None)
        return run_headless(client, cfg)
    return _interactive(app, client, args)


def _interactive(app: object, client: AmiClient, args: argparse.Namespace) -> int:
    import signal

    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from ._main import MainWindow

    window = MainWindow(client)
    window.show()
    window.start()
    if args.session:
        QTimer.singleShot(500, lambda: window.load_session(args.session))
    elif args.graph:
        QTimer.singleShot(500, lambda: window.editor.load_graph(args.graph))
    signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)  # lets Python run its signal handlers
    tick.start(200)
    code = QApplication.exec_()
    window.stop()
    return int(code)
