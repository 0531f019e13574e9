"""`pynats-server` as a subprocess: nats-server's log lines, signals, flags, files, monitoring.

Expected behaviour checked against the nats-server 2.14.0 binary where it applies.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pynats_server import const

EXE = Path(sys.executable).parent / "pynats-server"
BASE = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "pynats_server"]
EXE_NAME = "pynats-server" if EXE.exists() else "__main__.py"
TIMEOUT = 10.0

LOG_LINE = re.compile(r"\[(\d+)\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \[(INF|DBG|TRC|WRN|ERR|FTL)\] (.*)")


class Proc:
    """A pynats-server process whose stderr lines are collected by a thread."""

    def __init__(self, *args: str, cwd: str | None = None) -> None:
        self.p = subprocess.Popen(
            [*BASE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The first (new) stderr line that contains a match of `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines))
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited before {pattern!r}; got:\n" + "\n".join(self.lines))
            self.lines.append(line)
            m = rx.search(line)
            if m:
                return m

    def ready(self) -> int:
        """Wait for the listen and ready lines; the client port."""
        m = self.wait_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)$")
        self.wait_line(r"\[INF\] Server is ready$")
        return int(m.group(1))

    def serving(self) -> int:
        """ready(), then a PING round trip: from then on the signal handlers are in place."""
        port = self.ready()
        info_from(port)
        return port

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Wait for the exit: (code, stdout, all of stderr)."""
        rc = self.p.wait(timeout)
        self._t.join(timeout)
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        out = self.p.stdout.read() if self.p.stdout else ""
        return rc, out, "\n".join(self.lines)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            if f:
                f.close()


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(*args: str, **kw: str) -> Proc:
        p = Proc(*args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def run(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run to completion; a process still running at the timeout is killed and fails the test."""
    try:
        return subprocess.run([*BASE, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"pynats-server {' '.join(args)} still running after {timeout}s:\n{err}") from None


def info_from(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, "closed before INFO"
            buf += chunk
        s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        while b"PONG\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, "closed before PONG"
            buf += chunk
    line = buf.split(b"\r\n", 1)[0]
    assert line.startswith(b"INFO ")
    return json.loads(line[5:])


# -- running -----------------------------------------------------------------------------------


def test_log_lines_connect_and_sigint(procs) -> None:
    p = procs("-p", "-1", "-a", "127.0.0.1")
    port = p.ready()
    for line in p.lines:
        m = LOG_LINE.fullmatch(line)
        assert m, f"not a nats-server log line: {line!r}"
        assert int(m.group(1)) == p.p.pid
    assert any(LOG_LINE.fullmatch(x) and x.endswith(f"[INF] Listening for client connections on 127.0.0.1:{port}")
               for x in p.lines)  # fmt: skip
    info = info_from(port)
    assert info["port"] == port and info["host"] == "127.0.0.1"
    p.p.send_signal(signal.SIGINT)
    rc, _, err = p.finish()
    assert rc == 0, err
    assert re.search(r"\[INF\] Server Exiting\.\.$", err, re.M), err
    assert "Traceback" not in err


def test_sigterm_exits_zero(procs) -> None:
    p = procs("-p", "-1", "-a", "127.0.0.1")
    p.ready()
    # Right after "Server is ready", as harnesses do: nats-server has its signal handlers
    # in place before it logs that line.
    p.p.send_signal(signal.SIGTERM)
    rc, _, err = p.finish()
    assert rc == 0, err
    assert "Server Exiting.." in err
    assert "Traceback" not in err


def test_debug_and_trace(procs) -> None:
    p = procs("-p", "-1", "-a", "127.0.0.1", "-DV")
    port = p.ready()
    info_from(port)
    # The same lines as nats-server -DV writes.
    who = r"127\.0\.0\.1:\d+ - cid:\d+ - "
    p.wait_line(rf"\[DBG\] {who}Client connection created$")
    m = p.wait_line(rf"\[TRC\] {who}<<- \[CONNECT (.*)\]$")
    assert m.group(1) == '{"verbose":false}'
    p.wait_line(rf"\[TRC\] {who}<<- \[PING\]$")
    p.wait_line(rf"\[TRC\] {who}->> \[PONG\]$")
    p.wait_line(rf"\[DBG\] {who}Client connection closed: Client Closed$")
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0


def test_ports_file(procs, tmp_path: Path) -> None:
    p = procs("-p", "-1", "-a", "127.0.0.1", "-m", "-1", "--ports_file_dir", str(tmp_path))
    port = p.serving()
    path = tmp_path / f"{EXE_NAME}_{p.p.pid}.ports"
    assert path.exists(), list(tmp_path.iterdir())
    ports = json.loads(path.read_text())
    assert ports["nats"] == [f"nats://127.0.0.1:{port}"]
    (mon,) = ports["monitoring"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", mon)
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0
    assert not path.exists()  # removed on shutdown, as nats-server does


def test_pid_file(procs, tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    p = procs("-p", "-1", "-a", "127.0.0.1", "-P", str(pid_file))
    p.serving()
    assert pid_file.read_text().strip() == str(p.p.pid)
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0


def test_pid_file_kept_after_exit(procs, tmp_path: Path) -> None:
    """nats-server 2.14 leaves its pid file in place on shutdown (only the ports file goes)."""
    pid_file = tmp_path / "server.pid"
    p = procs("-p", "-1", "-a", "127.0.0.1", "-P", str(pid_file))
    p.serving()
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0
    assert pid_file.exists()


def test_monitor_random_port(procs) -> None:
    """`-m -1` picks a random monitoring port (nats-server accepts it too)."""
    p = procs("-p", "-1", "-a", "127.0.0.1", "-m", "-1")
    m = p.wait_line(r"\[INF\] Starting http monitor on 127\.0\.0\.1:(\d+)$")
    port = p.ready()
    http = int(m.group(1))
    assert http not in (0, port)
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/varz", timeout=TIMEOUT) as r:
        assert r.status == 200
        varz = json.load(r)
    assert varz["port"] == port
    assert varz["http_port"] == http
    assert re.fullmatch(r"N[A-Z2-7]{55}", varz["server_id"])
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=TIMEOUT) as r:
        assert r.status == 200
        assert json.load(r) == {"status": "ok"}
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0


def test_user_and_pass_flags(procs) -> None:
    p = procs("-p", "-1", "-a", "127.0.0.1", "--user", "u", "--pass", "p")
    port = p.ready()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        info = json.loads(s.recv(4096).split(b"\r\n")[0][5:])
        assert info["auth_required"] is True
        s.sendall(b'CONNECT {"verbose":false,"user":"u","pass":"x"}\r\n')
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data == b"-ERR 'Authorization Violation'\r\n"
    p.p.send_signal(signal.SIGINT)
    assert p.finish()[0] == 0


def test_port_in_use(procs) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = procs("-p", str(port), "-a", "127.0.0.1")
        rc, _, err = p.finish()
    assert rc != 0
    assert re.search(rf"\[FTL\] Error listening on port: 127\.0\.0\.1:{port}", err), err
    assert "Traceback" not in err


# -- one-shot commands -------------------------------------------------------------------------


def test_version() -> None:
    for flag in ("-v", "--version"):
        r = run(flag)
        assert r.returncode == 0
        assert f"v{const.__version__}" in r.stdout
        assert const.NATS_VERSION in r.stdout


def test_version_command() -> None:
    """`nats-server version` is a command, like -v (flags first, so that a server that
    ignored the command would bind only 127.0.0.1 on a random port)."""
    r = run("-a", "127.0.0.1", "-p", "-1", "version", timeout=2)
    assert r.returncode == 0, r.stderr
    assert f"v{const.__version__}" in r.stdout


def test_help() -> None:
    for flag in ("-h", "--help"):
        r = run(flag)
        assert r.returncode == 0
        assert "Usage: pynats-server [options]" in r.stdout
        assert "--ports_file_dir" in r.stdout


def test_module_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "pynats_server", "-v"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0
    assert const.__version__ in r.stdout


@pytest.mark.parametrize("args", [["-js"], ["--jetstream"]])
def test_jetstream_in_a_cluster_is_refused_clearly(args: list[str], tmp_path: Any) -> None:
    r = run("-p", "-1", "-a", "127.0.0.1", "-sd", str(tmp_path), "--cluster", "nats://127.0.0.1:-1", *args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "JetStream in a cluster" in r.stderr and "not supported" in r.stderr, r.stderr
    assert r.stderr.startswith("pynats-server: ")


def test_unknown_flag() -> None:
    r = run("-a", "127.0.0.1", "-p", "-1", "--bogus")
    assert r.returncode != 0
    assert "flag provided but not defined: -bogus" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "abc"], 'invalid value "abc" for flag -p: parse error'),
        (["-p"], "flag needs an argument: -p"),
        (["-D=maybe"], 'invalid boolean value "maybe" for -D: parse error'),
    ],
)
def test_bad_flag_values(args: list[str], message: str) -> None:
    r = run("-a", "127.0.0.1", "-p", "-1", *args)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unrecognized_command() -> None:
    """Words left after the flags are commands: nats-server exits 1 on an unknown one."""
    r = run("-p", "-1", "-a", "127.0.0.1", "foo", timeout=2)
    assert r.returncode == 1
    assert 'unrecognized command: "foo"' in r.stderr


def test_check_config_needs_config() -> None:
    r = run("-a", "127.0.0.1", "-p", "-1", "-t")
    assert r.returncode != 0
    assert "must specify [-c, --config] option to check configuration file syntax" in r.stderr


def test_environment_is_clean() -> None:
    """The subprocess tests ran the installed entry point, not a stray copy."""
    assert os.path.exists(BASE[0])
