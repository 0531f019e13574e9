"""Logging as nats-server does it (pynats_server/log.py): the file rotated at
log_size_limit with logfile_max_num kept, logtime_utc, remote syslog (UDP, unix), the
local syslog refused clearly when there is none, max_traced_msg_len, and the trace of
route traffic."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for

from pynats_server import Server
from pynats_server.options import Options

STAMP = r"\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d\.\d{9}"


def opts(**kw) -> Options:
    return Options(host="127.0.0.1", port=-1, **kw)


async def test_log_file_rotation_and_purge(tmp_path: Path) -> None:
    log = tmp_path / "nats.log"
    srv = Server(opts(log_file=str(log), log_size_limit=1500, log_max_num=3, debug=True, trace=True))
    await srv.start()
    try:
        for i in range(30):  # each connection logs a few lines: many rotations
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            w.write(b'CONNECT {"name":"c%d"}\r\nPING\r\n' % i)
            await w.drain()
            await asyncio.wait_for(r.readuntil(b"PONG\r\n"), 5)
            w.close()
    finally:
        await srv.shutdown()
    backups = sorted(p.name for p in tmp_path.iterdir() if p.name != "nats.log")
    assert backups and all(re.fullmatch(rf"nats\.log\.{STAMP}", b) for b in backups), backups
    assert len(backups) == 2  # logfile_max_num 3: the current file and two old ones
    text = log.read_bytes().decode()  # nats-server ends this line with CRLF
    assert re.match(rf"\[\d+\] [\d/]+ [\d:.]+ \[INF\] Rotated log, backup saved as \"{re.escape(str(log))}\.{STAMP}\"\r\n", text)
    assert "Purged log file" in text or any("Purged log file" in (tmp_path / b).read_text() for b in backups)
    for name in backups:
        assert (tmp_path / name).stat().st_size <= 1500 + 400  # rotated soon after the limit


def test_rotation_keeps_everything_without_max_num(tmp_path: Path) -> None:
    from pynats_server.log import Logger

    log = Logger(path=str(tmp_path / "a.log"), size_limit=200)
    for i in range(20):
        log.notice(f"line {i} " + "x" * 40)
    log.close()
    assert len(list(tmp_path.iterdir())) > 4
    # A file already over the limit at start is rotated at once (nats-server's setLimit).
    big = tmp_path / "b.log"
    big.write_text("y" * 500)
    log = Logger(path=str(big), size_limit=100)
    log.close()
    assert "Rotated log" in big.read_text() and any(p.name.startswith("b.log.") for p in tmp_path.iterdir())


async def test_logtime_utc_from_the_command_line(tmp_path: Path) -> None:
    log = tmp_path / "utc.log"
    env = {**os.environ, "TZ": "Etc/GMT-9"}  # nine hours ahead of UTC
    for flag, want in (("--logtime_utc", time.gmtime), ("--logtime_utc=false", None)):
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pynats_server", "-a", "127.0.0.1", "-p", "-1", "-l", str(log), flag,
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await wait_for(lambda: log.exists() and "Server is ready" in log.read_text(), what="ready")
        finally:
            p.terminate()
            await p.wait()
        line = next(x for x in log.read_text().splitlines() if "Server is ready" in x)
        hour = int(re.match(r"\[\d+\] [\d/]+ (\d\d):", line).group(1))  # type: ignore[union-attr]
        utc_hour = time.gmtime().tm_hour
        if want is None:
            assert hour == (utc_hour + 9) % 24 or hour == (utc_hour + 8) % 24, line
        else:
            assert hour in (utc_hour, (utc_hour - 1) % 24), line
        log.unlink()


async def test_remote_syslog_udp() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    port = rx.getsockname()[1]
    srv = Server(opts(remote_syslog=f"udp://127.0.0.1:{port}", debug=True))
    await srv.start()
    srv.log.warn("a warning")
    loop = asyncio.get_running_loop()
    lines = []
    try:
        deadline = time.monotonic() + 5
        while not any("a warning" in x for x in lines) and time.monotonic() < deadline:
            data = await asyncio.wait_for(loop.sock_recv(rx, 4096), 5)
            lines.append(data.decode())
    finally:
        await srv.shutdown()
        rx.close()
    tag = re.escape(os.path.basename(sys.argv[0]))
    pat = rf"<(\d+)>\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) {re.escape(socket.gethostname())} {tag}\[{os.getpid()}\]: (.*)\n"
    parsed = [re.fullmatch(pat, x) for x in lines]
    assert all(parsed), lines[:3]
    pri = {m.group(3): int(m.group(1)) for m in parsed if m}
    assert pri["Starting pynats-server"] == 5 and pri["a warning"] == 4  # facility 0: notice, warning
    assert any(k.startswith("Listening for client connections") for k in pri)
    assert not any(m.group(3).startswith("[") for m in parsed if m)  # no [INF] label in syslog


async def test_remote_syslog_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.setblocking(False)
    srv = Server(opts(remote_syslog=f"unix://{path}"))
    await srv.start()
    try:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(rx, 4096), 5)
    finally:
        await srv.shutdown()
        rx.close()
    # The short form of a local socket: no host name, a time.Stamp date.
    assert re.fullmatch(rf"<5>[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d \S+\[{os.getpid()}\]: Starting pynats-server\n",
                        data.decode()), data


async def test_syslog_unreachable_is_refused_clearly(tmp_path: Path) -> None:
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pynats_server", "-a", "127.0.0.1", "-p", "-1", "-r", "tcp://127.0.0.1:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(p.communicate(), 20)
    assert p.returncode == 1
    assert err.decode().startswith("pynats-server: error connecting to syslog:")
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pynats_server", "-r", "smtp://x", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(p.communicate(), 20)
    assert p.returncode == 1 and 'error invalid network type: "smtp"' in err.decode()
    if not any(os.path.exists(x) for x in ("/dev/log", "/var/run/syslog", "/var/run/log")):
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pynats_server", "-s", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(p.communicate(), 20)
        assert p.returncode == 1 and "error connecting to syslog" in err.decode()


@pytest.mark.parametrize("limit,want", [(0, '["hello world"]'), (5, '["hello..."]'), (20, '["hello world"]')])
async def test_max_traced_msg_len(start_server, limit: int, want: str) -> None:
    s = await start_server(capture_log=True, trace=True, max_traced_msg_len=limit)
    c = await s.connected()
    await c.send(b"SUB a 1\r\nPUB a 11\r\nhello world\r\nPUB a 0\r\n\r\n")
    await c.msgs_until_pong()
    lines = s.log_lines()
    assert f"[TRC] <<- MSG_PAYLOAD: {want}" in lines and f"[TRC] ->> MSG_PAYLOAD: {want}" in lines
    # An empty payload has no MSG_PAYLOAD line, in or out (nats-server 2.14).
    i = lines.index("[TRC] <<- [PUB a 0]")
    assert "MSG_PAYLOAD" not in lines[i + 1]
    assert sum("MSG_PAYLOAD" in x for x in lines) == 2


async def test_route_traffic_is_traced(tmp_path: Path) -> None:
    from pynats_server.testing import LocalCluster

    path = tmp_path / "cluster.log"  # both nodes append here
    async with LocalCluster(2, name="tr", no_log=False, trace=True, log_file=str(path)) as cl:
        a = cl.running()[0]
        r, w = await asyncio.open_connection("127.0.0.1", a.port)
        w.write(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPING\r\n')
        await w.drain()
        await asyncio.wait_for(r.readuntil(b"PONG\r\n"), 5)
        # An interest change is traced where it goes out and where it comes in.
        await wait_for(lambda: "->> [RS+ $G foo]" in path.read_text(), what="RS+ traced out")
        await wait_for(lambda: "<<- [RS+ $G foo]" in path.read_text(), what="RS+ traced in")
        w.close()
