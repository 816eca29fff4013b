"""Who may talk to AMI: loopback by default; any other interface only with CURVE keys.

A key folder (``ami keys DIR`` makes one) holds ``server.key`` / ``server.key_secret`` (the
sockets that bind) and ``client.key`` / ``client.key_secret`` (those that connect); public keys
of allowed clients are ``*.key`` files in it. ``insecure=True`` turns the check off knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zmq
import zmq.auth

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_local(endpoint: str) -> bool:
    """Whether an endpoint stays on this host (ipc, inproc or a loopback address)."""
    if not endpoint.startswith("tcp://"):
        return True
    host = urlsplit(endpoint).hostname or ""
    return host in LOOPBACK


@dataclass(frozen=True)
class Security:
    """CURVE settings shared by every socket of an AMI process (none: plain loopback)."""

    keys: Path | None = None
    insecure: bool = False

    @property
    def curve(self) -> bool:
        return self.keys is not None

    def server(self, sock: zmq.Socket[Any]) -> None:
        """Make a binding socket a CURVE server (if keys are set)."""
        if self.keys is None:
            return
        public, secret = zmq.auth.load_certificate(self.keys / "server.key_secret")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def client(self, sock: zmq.Socket[Any]) -> None:
        """Make a connecting socket a CURVE client (if keys are set)."""
        if self.keys is None:
            return
        public, secret = zmq.auth.load_certificate(self.keys / "client.key_secret")
        server_public, _ = zmq.auth.load_certificate(self.keys / "server.key")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = server_public

    def authenticator(self, ctx: zmq.Context[Any]) -> Any:
        """A started authenticator allowing the clients whose public keys are in the folder."""
        if self.keys is None:
            return None
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.keys))
        return auth


def check_bind(endpoint: str, security: Security) -> None:
    """Refuse to bind a non-loopback address without CURVE keys, unless told it is fine."""
    if is_local(endpoint) or security.curve or security.insecure:
        return
    raise PermissionError(
        f"refusing to bind {endpoint}: it is reachable from other hosts. Give CURVE keys "
        "(--keys DIR, made by 'ami keys DIR') or accept the risk with --insecure"
    )


def make_keys(folder: str | Path) -> Path:
    """Create server and client key pairs in ``folder`` (a trusted, private place)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        zmq.auth.create_certificates(str(path), name)
    return path
