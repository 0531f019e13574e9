"""`pynats`, the small NATS client command, run as a subprocess against embedded servers."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pynats_server import __version__
from pynats_server.natscli import MISSING_NATS, main
from pynats_server.testing import ThreadedCluster, ThreadedServer

EXE = Path(sys.executable).parent / "pynats"
PYNATS = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "pynats_server.natscli"]
TIMEOUT = 10.0
ENV = {k: v for k, v in os.environ.items() if k != "NATS_URL"}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class Cli:
    """A running `pynats` whose stdout and stderr lines are collected by threads."""

    def __init__(self, *args: str, base: list[str] = PYNATS, env: dict[str, str] = ENV) -> None:
        self.p = subprocess.Popen(
            [*base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []  # stdout lines read so far by expect()
        self.err: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump_out, daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self._err_thread.start()

    def _pump_out(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def _pump_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.err.append(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The next stdout line matching `pattern` (earlier lines are skipped)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._q.get(timeout=max(left, 0))
            except queue.Empty:
                line = None
            else:
                if line is not None:
                    self.lines.append(line)
                    if m := rx.search(line):
                        return m
                    continue
            out = "\n".join(self.lines)
            raise AssertionError(
                f"no line matching {pattern!r}; stdout:\n{out}\nstderr:\n" + "\n".join(self.err)
            )

    def rest(self, timeout: float = TIMEOUT) -> list[str]:
        """The remaining stdout lines, once the process has closed its stdout."""
        deadline = time.monotonic() + timeout
        got = []
        while (line := self._q.get(timeout=max(deadline - time.monotonic(), 0))) is not None:
            got.append(line)
        self.lines += got
        return got

    def wait(self, timeout: float = TIMEOUT) -> int:
        rc = self.p.wait(timeout)
        self._err_thread.join(timeout)
        return rc

    def interrupt(self, sig: int = signal.SIGINT) -> int:
        self.p.send_signal(sig)
        rc = self.wait()
        assert not any("Traceback" in line for line in self.err), self.err
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(TIMEOUT)


@pytest.fixture
def cli() -> Iterator[Callable[..., Cli]]:
    started: list[Cli] = []

    def start(*args: str, **kwargs: object) -> Cli:
        c = Cli(*args, **kwargs)  # type: ignore[arg-type]
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()


def run(
    *args: str, base: list[str] = PYNATS, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT)


def wait_for(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- command line ---------------------------------------------------------------------------


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"pynats {__version__}"
    r = run("--help")
    assert r.returncode == 0
    for name in ("sub", "pub", "req", "reply", "server-list"):
        assert name in r.stdout
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0 and "--server" in capsys.readouterr().out


def test_usage_errors() -> None:
    r = run("pub", "subj", "--count", "0")
    assert r.returncode == 2 and "needs --interval" in r.stderr
    r = run()
    assert r.returncode == 2 and "usage: pynats" in r.stderr
    r = run("pub", "subj", "-H", "no-colon", "-s", "nats://127.0.0.1:1")
    assert (
        r.returncode == 1 and r.stderr == "pynats: invalid header 'no-colon', expected Key:Value\n"
    )


def test_missing_nats_py(tmp_path: Path) -> None:
    shim = tmp_path / "nats"
    shim.mkdir()
    (shim / "__init__.py").write_text("raise ImportError('No module named nats')\n")
    env = {**ENV, "PYTHONPATH": str(tmp_path)}
    module = [sys.executable, "-m", "pynats_server.natscli"]
    r = run("sub", "foo", base=module, env=env)
    assert r.returncode == 1
    assert r.stderr.strip() == MISSING_NATS
    assert "Traceback" not in r.stdout + r.stderr
    assert run("--version", base=module, env=env).returncode == 0


def test_cannot_connect() -> None:
    with ThreadedServer() as srv:
        url = srv.client_url
    r = run("pub", "-s", url, "foo", "--connect-timeout", "0.5")
    assert r.returncode == 1
    assert r.stderr.startswith(f"pynats: cannot connect to {url}"), r.stderr
    assert "Traceback" not in r.stderr


def test_auth(nats_server_factory: Callable[..., ThreadedServer]) -> None:
    url = nats_server_factory(username="joe", password="s3cret").client_url
    r = run("pub", "-s", url, "x", "--user", "joe", "--password", "s3cret")
    assert r.returncode == 0 and r.stdout == 'Published 1 message to "x"\n', r
    # A rejected connection fails at once, without waiting for the connect timeout.
    r = run("pub", "-s", url, "x", "--user", "joe", "--password", "bad", "--connect-timeout", "60")
    assert r.returncode == 1 and "Authorization Violation" in r.stderr, r
    url = nats_server_factory(authorization="tok").client_url
    assert (
        run("req", "-s", url, "x", "--token", "tok").stderr
        == "No responders available for request\n"
    )


# -- messages -------------------------------------------------------------------------------


def test_pub_sub_count(nats_server: ThreadedServer, cli: Callable[..., Cli]) -> None:
    url = nats_server.client_url
    sub = cli("sub", "-s", url, "greet.*", "--count", "3")
    sub.expect(rf"^Connected to {url} \(server \S+, id N\w+, version [\d.]+\)$")
    sub.expect(r'^Subscribed to "greet\.\*"$')
    r = run("pub", "-s", url, "greet.joe", "hello {{Count}}", "--count", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'Published 3 messages to "greet.joe"\n'
    assert sub.wait() == 0
    assert sub.rest() == [
        *('[#1] Received on "greet.joe"', "hello 1", ""),
        *('[#2] Received on "greet.joe"', "hello 2", ""),
        *('[#3] Received on "greet.joe"', "hello 3", ""),
    ]


def test_headers_and_raw(nats_server: ThreadedServer, cli: Callable[..., Cli]) -> None:
    url = nats_server.client_url
    sub = cli("sub", "-s", url, "h", "--count", "1")
    raw = cli("sub", "-s", url, "h", "--count", "1", "--raw")
    sub.expect("^Subscribed to")
    wait_for(lambda: any(line.startswith("Subscribed to") for line in raw.err), "raw sub")
    r = run("pub", "-s", url, "h", "body", "-H", "Trace-Id:abc", "-H", "X-Two: y z")
    assert r.returncode == 0 and r.stdout == 'Published 1 message to "h"\n', r
    assert sub.wait() == 0 and raw.wait() == 0
    assert sub.rest() == ['[#1] Received on "h"', "Trace-Id: abc", "X-Two: y z", "", "body", ""]
    # --raw: only payloads on stdout, connection events on stderr.
    assert raw.rest() == ["body"]
    assert raw.err[0].startswith(f"Connected to {url}")


def test_queue_group(nats_server: ThreadedServer, cli: Callable[..., Cli]) -> None:
    url = nats_server.client_url
    subs = [cli("sub", "-s", url, "work", "--queue", "q", "--raw") for _ in range(2)]
    for s in subs:
        wait_for(lambda s=s: any('(queue "q")' in line for line in s.err), "queue sub")
    r = run("pub", "-s", url, "work", "{{Count}}", "--count", "20")
    assert r.returncode == 0, r.stderr
    got: list[list[int]] = [[], []]

    def total() -> int:
        for i, s in enumerate(subs):
            while not s._q.empty():
                line = s._q.get()
                if line:
                    got[i].append(int(line))
        return len(got[0]) + len(got[1])

    wait_for(lambda: total() == 20, "20 messages over the queue group")
    assert sorted(got[0] + got[1]) == list(range(1, 21))
    assert got[0] and got[1], got
    for s in subs:
        assert s.interrupt() == 0


def test_req_reply(nats_server: ThreadedServer, cli: Callable[..., Cli]) -> None:
    url = nats_server.client_url
    rep = cli("reply", "-s", url, "svc", "pong {{Count}}", "--count", "1")
    rep.expect('^Listening on "svc"$')
    r = run("req", "-s", url, "svc", "ping")
    assert r.returncode == 0 and r.stdout == "pong 1\n", r
    assert rep.wait() == 0
    rep.expect(r'^\[#1\] Received on "svc" with reply "_INBOX\.')
    rep.expect("^ping$")

    echo = cli("reply", "-s", url, "echo", "--queue", "q")
    echo.expect('^Listening on "echo" \\(queue "q"\\)$')
    r = run("req", "-s", url, "echo", "say this")
    assert r.returncode == 0 and r.stdout == "say this\n", r
    assert echo.interrupt(signal.SIGTERM) == 0


def test_req_no_responders_and_timeout(
    nats_server: ThreadedServer, cli: Callable[..., Cli]
) -> None:
    url = nats_server.client_url
    r = run("req", "-s", url, "nobody.home", "hi")
    assert r.returncode == 1
    assert r.stderr == "No responders available for request\n"
    silent = cli("sub", "-s", url, "silent")
    silent.expect("^Subscribed to")
    r = run("req", "-s", url, "silent", "hi", "--timeout", "0.2")
    assert r.returncode == 1 and "no reply" in r.stderr and "Traceback" not in r.stderr


def test_sigint_exits_cleanly(nats_server: ThreadedServer, cli: Callable[..., Cli]) -> None:
    sub = cli("sub", "-s", nats_server.client_url, "foo")
    sub.expect("^Subscribed to")
    assert sub.interrupt() == 0
    assert sub.err == []
    assert not any(line.startswith("Disconnected") for line in sub.rest())


# -- clusters -------------------------------------------------------------------------------


def test_server_list(nats_cluster: ThreadedCluster) -> None:
    urls = nats_cluster.client_urls
    r = run("server-list", "-s", urls[1])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(
        rf"{urls[1]} \(connected, server pynats-test-1, id \w+, version .+\)", lines[0]
    )
    assert sorted(lines[1:]) == sorted(f"{u} (discovered)" for u in (urls[0], urls[2]))


def test_sub_discovers_joining_node(nats_cluster: ThreadedCluster, cli: Callable[..., Cli]) -> None:
    cl = nats_cluster
    urls = cl.client_urls
    hp = [u.removeprefix("nats://") for u in urls]
    cl.stop_node(2)

    def gossiped() -> list[str]:
        srv = cl.servers[0]
        assert srv is not None and srv.cluster is not None
        return cl.call(srv.cluster.client_connect_urls)

    wait_for(lambda: sorted(gossiped()) == sorted(hp[:2]), "node 0 to forget node 2")
    sub = cli("sub", "-s", urls[0], "foo")
    sub.expect(f"^Connected to {urls[0]} ")
    sub.expect(f"^Discovered servers: {', '.join(sorted(hp[:2]))}$")
    sub.expect("^Subscribed to")
    cl.start_node(2)
    sub.expect(f"^Discovered servers: {', '.join(sorted(hp))}$")
    assert sub.interrupt() == 0
    assert not any(line.startswith(("Disconnected", "Reconnected")) for line in sub.lines)


def test_sub_follows_stopped_node(nats_cluster: ThreadedCluster, cli: Callable[..., Cli]) -> None:
    cl = nats_cluster
    urls = cl.client_urls
    sub = cli("sub", "-s", urls[0], "rolling", "--raw")
    wait_for(lambda: any(line.startswith("Subscribed to") for line in sub.err), "sub")
    cl.stop_node(0)
    wait_for(lambda: any(line.startswith("Reconnected to") for line in sub.err), "reconnect")
    assert f"Disconnected from {urls[0]}" in sub.err
    line = next(line for line in sub.err if line.startswith("Reconnected to"))
    m = re.match(r"Reconnected to (\S+) \(server pynats-test-[12], ", line)
    assert m and m.group(1) in urls[1:], sub.err
    # A steady publisher on the other survivor: the subscription is restored across the route.
    other = urls[2] if m.group(1) == urls[1] else urls[1]
    pub = cli(
        "pub", "-s", other, "rolling", "after {{Count}}", "--count", "0", "--interval", "0.02"
    )
    pub.expect(f"^Connected to {other} ")
    assert re.fullmatch(r"after \d+", sub.expect("^after ").string)
    assert pub.interrupt() == 0
    assert re.fullmatch(r'Published \d+ messages? to "rolling"', pub.rest()[-1])
    assert sub.interrupt() == 0


def test_sub_leaves_lame_duck_server(
    nats_cluster_factory: Callable[..., ThreadedCluster], cli: Callable[..., Cli]
) -> None:
    # The grace period is long: the client moves on its own, the server does not close it.
    cl = nats_cluster_factory(3, lame_duck_grace_period=30.0, lame_duck_duration=60.0)
    urls = cl.client_urls
    sub = cli("sub", "-s", urls[0], "foo")
    sub.expect("^Subscribed to")
    srv = cl.servers[0]
    assert srv is not None
    cl.call(lambda: asyncio.ensure_future(srv.lame_duck_mode()))
    sub.expect(f"^Server {urls[0]} entered lame duck mode, moving$")
    sub.expect(f"^Disconnected from {urls[0]}$")
    m = sub.expect(r"^Reconnected to (\S+) ")
    assert m.group(1) in urls[1:]
    assert sub.interrupt() == 0
