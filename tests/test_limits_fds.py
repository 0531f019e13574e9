"""Out of file descriptors: the server logs (as nats-server does), stops accepting, and accepts
again once descriptors are free; it never crashes or spins. Servers run as subprocesses with a low
RLIMIT_NOFILE."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import go_binary

LIMIT = 64
CONNS = 100


def _cmd(target: str) -> list[str]:
    if target == "go214":
        exe = go_binary("go214")
        if exe is None:
            pytest.skip("nats-server 2.14 is not installed")
        return [exe]
    return [str(Path(sys.executable).parent / "pynats-server"), "--loop", target.split("-")[1]]


@contextlib.contextmanager
def _server(cmd: list[str], log: Path, limits: tuple[int, int]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)

    with open(log, "wb") as f:
        proc = subprocess.Popen([*cmd, "-a", "127.0.0.1", "-p", "-1"], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=pre)
    try:
        deadline = time.monotonic() + 20
        port = 0
        while not port:
            text = log.read_text()
            m = re.search(r"Listening for client connections on [^ ]+:(\d+)", text)
            if m and "Server is ready" in text:
                port = int(m.group(1))
            assert proc.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.02)
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", ["pynats-uvloop", "pynats-asyncio", "go214"])
def test_out_of_file_descriptors(tmp_path: Path, target: str) -> None:
    log = tmp_path / "server.log"
    with _server(_cmd(target), log, (LIMIT, LIMIT)) as (proc, port):
        socks = []
        try:
            for _ in range(CONNS):  # more than the server can hold
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                socks.append(s)
            # The refusal is logged as nats-server logs it (its first pause is 10 ms).
            deadline = time.monotonic() + 10
            while not (lines := _accept_errors(log)):
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.02)
            assert re.search(r"\[ERR\] Temporary Client Accept Error\(accept tcp 127\.0\.0\.1:\d+: accept4: "
                             r"too many open files\), sleeping 10ms$", lines[0]), lines[0]
            c0 = _cpu(proc.pid)
            time.sleep(1.0)  # (a measurement window, not synchronisation)
            assert _cpu(proc.pid) - c0 < 0.5, "the server spins while out of descriptors"
            assert proc.poll() is None
            # Some got INFO; the others are refused (closed) or wait in the backlog.
            served = 0
            for s in socks:
                s.settimeout(0.05)
                with contextlib.suppress(OSError):
                    served += s.recv(5) == b"INFO "
            assert 0 < served < CONNS
            for s in socks:
                s.close()
            socks = []
            # With descriptors free again, a new client is served.
            deadline = time.monotonic() + 10
            while True:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                    with contextlib.suppress(OSError):
                        if s.recv(5) == b"INFO ":
                            break
                assert time.monotonic() < deadline, "not accepting again"
                time.sleep(0.1)
        finally:
            for s in socks:
                s.close()
        assert proc.poll() is None
    lines = _accept_errors(log)
    # One line per pause, the pause doubling from 10 ms to 1 s: a few lines, not a flood.
    assert len(lines) < 30, lines
    assert all(re.search(r"sleeping (10|20|40|80|160|320|640|1000)ms$", x) for x in lines), lines


def _accept_errors(log: Path) -> list[str]:
    return [x for x in log.read_text().splitlines() if "Accept Error" in x]


def test_soft_file_limit_raised_to_the_hard_one(tmp_path: Path) -> None:
    """As the Go runtime does for nats-server."""
    with _server(_cmd("pynats-uvloop"), tmp_path / "server.log", (256, 4096)) as (proc, _):
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        m = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits)
        assert m and m.groups() == ("4096", "4096"), limits
