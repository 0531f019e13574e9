"""Certificates for TLS tests (made by trustme at run time, nothing committed) and helpers:
raw TLS over an already open socket, a logger that keeps its lines."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

from pynats_server.log import Logger
from pynats_server.options import TLSOptions


@dataclass
class Certs:
    dir: Path
    ca: trustme.CA
    other_ca: trustme.CA

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.pem")

    def pair(self, name: str) -> tuple[str, str]:
        return str(self.dir / f"{name}-cert.pem"), str(self.dir / f"{name}-key.pem")

    def server_tls(self, **kw: object) -> TLSOptions:
        cert, key = self.pair("server")
        return TLSOptions(cert_file=cert, key_file=key, **kw)  # type: ignore[arg-type]

    def client_ctx(self, cert: str | None = None, *, ca: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file if ca else None)
        ctx.check_hostname = False
        if not ca:
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*self.pair(cert))
        return ctx


def make_certs(d: Path) -> Certs:
    ca = trustme.CA()
    other = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))

    def write(name: str, cert: trustme.LeafCert) -> None:
        cert.private_key_pem.write_to_path(str(d / f"{name}-key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(d / f"{name}-cert.pem"))

    write("server", ca.issue_cert("127.0.0.1", "localhost"))
    # A node certificate for routes: valid as client and server, for 127.0.0.1.
    write("node", ca.issue_cert("127.0.0.1", "localhost", common_name="node"))
    write("alice", ca.issue_cert("alice@example.com", common_name="alice", organization_name="Acme",
                                 organization_unit_name="Eng"))
    write("bob", ca.issue_cert("bob.example.com", common_name="bob", organization_name="Acme",
                               organization_unit_name="Ops"))
    write("mallory", other.issue_cert("mallory@example.com", common_name="mallory"))
    write("othernode", other.issue_cert("127.0.0.1", common_name="othernode"))
    return Certs(d, ca, other)


class LogCapture(Logger):
    """A debug+trace logger whose lines (without pid and time) tests can wait for."""

    def __init__(self) -> None:
        self.buf = io.StringIO()
        super().__init__(debug=True, trace=True, logtime=False, stream=self.buf)

    @property
    def lines(self) -> list[str]:
        return [ln.split(" ", 1)[1] for ln in self.buf.getvalue().splitlines() if " " in ln]

    def has(self, text: str) -> bool:
        return any(text in ln for ln in self.lines)

    async def wait(self, text: str, timeout: float = 5.0) -> str:
        end = time.monotonic() + timeout
        while True:
            for ln in self.lines:
                if text in ln:
                    return ln
            if time.monotonic() > end:
                raise AssertionError(f"no log line with {text!r}; have:\n" + "\n".join(self.lines[-30:]))
            await asyncio.sleep(0.01)


class SyncConn:
    """A blocking socket (run it with asyncio.to_thread while an embedded server runs on
    the test's loop): plaintext, then TLS when asked, with deadlines on every read."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def recv_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed; have {self.buf!r}")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def info(self) -> dict[str, object]:
        line = self.recv_line()
        assert line.startswith(b"INFO ") and line.endswith(b" "), line
        return json.loads(line[5:])

    def upgrade(self, ctx: ssl.SSLContext) -> None:
        assert not self.buf, self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_closed(self, timeout: float) -> tuple[bytes, float]:
        """Everything until the server closes, and how long that took; TimeoutError if not."""
        t0 = time.monotonic()
        self.sock.settimeout(timeout)
        data = self.buf
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        except TimeoutError:
            raise TimeoutError(f"not closed after {timeout}s; got {data!r}") from None
        return data, time.monotonic() - t0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
