"""Helpers for configuration reload tests: a server process run from a configuration file
(pynats-server or nats-server, the same command line), reloaded by rewriting the file and
sending SIGHUP; nats-py clients that record what happened to them."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import nats
from conftest import TIMEOUT, go_binary, wait_for

EXE = Path(sys.executable).parent / "pynats-server"
PYNATS = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "pynats_server"]
_DONE = re.compile(r"\[(?:INF|ERR)\] (?:Reloaded server configuration|Failed to reload server configuration)")
LOG_PREFIX = re.compile(r"^(?:\[\d+\] )?(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+ )?(\[[A-Z]{3}\]) (?:\S+:\d+ - (?:cid|rid):\d+ - )?")


def command(target: str) -> list[str]:
    if target == "pynats":
        return list(PYNATS)
    exe = go_binary(target)
    if exe is None:
        import pytest

        pytest.skip(f"{target} is not installed")
    return [exe]


class ConfServer:
    """A server started with `-c FILE`; `reload(text)` rewrites FILE, sends SIGHUP and returns
    that reload's log lines (`[INF] Reloaded: ...`, without pid, time or client prefix)."""

    def __init__(self, target: str, directory: Path, conf: str, *args: str, name: str = "s") -> None:
        self.target = target
        self.dir = directory
        self.conf_path = directory / f"{name}.conf"
        self.log_path = directory / f"{name}.log"
        self.pid_path = directory / f"{name}.pid"
        self.conf_path.write_text(conf)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.http_port = 0
        self.cluster_port = 0

    async def start(self) -> ConfServer:
        cmd = [*command(self.target), "-c", str(self.conf_path), "-P", str(self.pid_path), *self.args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)

        def ready() -> str | None:
            assert self.proc is not None
            text = self.log_text()
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{text[-3000:]}")
            return text if "Server is ready" in text else None

        text = await wait_for(ready, what="server to start")
        self.port = int(re.search(r"Listening for client connections on [^ ]+:(\d+)", text).group(1))
        m = re.search(r"Starting https? monitor on [^ ]+:(\d+)", text)
        self.http_port = int(m.group(1)) if m else 0
        if "cluster" in self.conf_path.read_text():
            text = await wait_for(
                lambda: (t := self.log_text()) and "Listening for route connections" in t and t,
                what="route listener",
            )
        m = re.search(r"Listening for route connections on [^ ]+:(\d+)", text)
        self.cluster_port = int(m.group(1)) if m else 0
        return self

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def route_url(self) -> str:
        return f"nats://127.0.0.1:{self.cluster_port}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        return [LOG_PREFIX.sub(r"\1 ", ln) for ln in self.log_text().splitlines()]

    async def reload(self, conf: str | None = None, *, how: str = "sighup", moves_to: Path | None = None) -> list[str]:
        """Rewrite the file (if given), ask for a reload, wait until it is done or refused.
        `moves_to`: the reload moves the log to that file (the last lines are there)."""
        if conf is not None:
            self.conf_path.write_text(conf)
        before = self.log_lines()
        n = sum(1 for ln in before if _DONE.match(ln))
        if how == "sighup":
            assert self.proc is not None
            self.proc.send_signal(signal.SIGHUP)
        else:  # the --signal command, with the pid file
            r = await asyncio.to_thread(
                subprocess.run, [*command(self.target), "--signal", f"reload={self.pid_path}"],
                capture_output=True, text=True, timeout=TIMEOUT,
            )
            assert r.returncode == 0, r.stderr
        if moves_to is not None:
            self.log_path = moves_to
            before, n = [], 0
        await wait_for(lambda: sum(1 for ln in self.log_lines() if _DONE.match(ln)) > n, what="the reload")
        lines = self.log_lines()[len(before):]
        return [ln for ln in lines if not ln.startswith("[INF] Trapped")]

    async def wait_log(self, text: str, timeout: float = TIMEOUT) -> str:
        return await wait_for(
            lambda: next((ln for ln in self.log_lines() if text in ln), None), timeout, f"log line {text!r}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def notices(lines: list[str]) -> list[str]:
    """The reload's own lines: its notices and its final line (digest dropped)."""
    out = []
    for ln in lines:
        if "Reloaded" in ln or "Reload:" in ln or "Failed to reload" in ln:
            out.append(re.sub(r" \(sha256:[0-9a-f]+\)$", "", ln))
    return out


class Watched:
    """A nats-py connection and what happened to it (errors, disconnects, closing)."""

    def __init__(self) -> None:
        self.nc: nats.NATS = None  # type: ignore[assignment]
        self.errors: list[Exception] = []
        self.disconnects = 0
        self.reconnects = 0
        self.closed = asyncio.Event()

    async def connect(self, url: str, **kw: Any) -> Watched:
        async def err(e: Exception) -> None:
            self.errors.append(e)

        async def disc() -> None:
            self.disconnects += 1

        async def rec() -> None:
            self.reconnects += 1

        async def closed() -> None:
            self.closed.set()

        kw.setdefault("allow_reconnect", False)
        kw.setdefault("connect_timeout", 2)
        self.nc = await nats.connect(url, error_cb=err, disconnected_cb=disc, reconnected_cb=rec,
                                     closed_cb=closed, **kw)
        return self

    def all_errors(self) -> list[Exception]:
        """Errors reported to error_cb, and the one nats-py closed on (an Authorization
        Violation closes the connection without calling error_cb)."""
        errs = list(self.errors)
        if self.nc is not None and self.nc.last_error is not None:
            errs.append(self.nc.last_error)
        return errs

    def error_texts(self) -> list[str]:
        return [str(e).lower() for e in self.all_errors()]

    async def wait_closed(self) -> None:
        await asyncio.wait_for(self.closed.wait(), TIMEOUT)

    async def works(self, subject: str = "ping.check") -> bool:
        """A message to itself comes back: the connection is up and usable."""
        if self.nc.is_closed:
            return False
        sub = await self.nc.subscribe(subject)
        try:
            await self.nc.publish(subject, b"x")
            msg = await sub.next_msg(timeout=TIMEOUT)
            return msg.data == b"x"
        finally:
            await sub.unsubscribe()

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()


async def watched(url: str, **kw: Any) -> Watched:
    return await Watched().connect(url, **kw)


async def cannot_connect(url: str, **kw: Any) -> str:
    """The connection is refused: "authorization violation", or the error's text."""
    w = Watched()
    try:
        await w.connect(url, max_reconnect_attempts=0, **kw)
    except Exception as e:  # noqa: BLE001 - any refusal will do; the kind is returned
        w.errors.append(e)
    else:
        await w.close()
        raise AssertionError(f"connected to {url} with {kw}")
    texts = w.error_texts()
    if any(isinstance(e, nats.errors.AuthorizationError) for e in w.errors) or any(
        "authorization violation" in t for t in texts
    ):
        return "authorization violation"
    return "; ".join(texts)
