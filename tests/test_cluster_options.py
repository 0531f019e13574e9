"""Cluster configuration: route credentials, advertising, connect_retries, and `--signal`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import nats
import pytest
from cluster_util import wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server, cli, netutil


def node(name: str, *, routes: list[RouteURL] | None = None, **cluster: object) -> Server:
    c = ClusterOptions(host="127.0.0.1", port=-1, name="OPT", routes=routes or [])
    for k, v in cluster.items():
        setattr(c, k, v)
    return Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name=name, cluster=c))


async def test_route_credentials_in_urls() -> None:
    """`--cluster nats://u:p@host:port` sets what a peer must send; `nats-route://u:p@...` sends it."""
    a = node("a", user="ru", password="rp")
    await a.start()
    port = a.cluster.port  # type: ignore[union-attr]
    good = node("good", routes=[RouteURL("127.0.0.1", port, "ru", "rp")])
    bad = node("bad", routes=[RouteURL("127.0.0.1", port, "ru", "wrong")])
    try:
        await good.start()
        await bad.start()
        await wait_for(lambda: good.id in a.cluster.routes, what="authenticated route")  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert bad.id not in a.cluster.routes  # type: ignore[union-attr]
        assert not bad.cluster.routes  # type: ignore[union-attr]
    finally:
        for s in (bad, good, a):
            await s.shutdown()


def test_cluster_url_credentials_from_the_command_line() -> None:
    cmd = cli.build(["-cluster", "nats://ru:rp@127.0.0.1:6222", "-routes", "nats-route://x:y@127.0.0.1:6333,nats://127.0.0.1:6444"])
    c = cmd.opts.cluster
    assert (c.user, c.password, c.host, c.port) == ("ru", "rp", "127.0.0.1", 6222)
    assert [(r.user, r.password, r.host, r.port) for r in c.routes] == [("x", "y", "127.0.0.1", 6333), (None, None, "127.0.0.1", 6444)]


async def test_no_advertise_keeps_peers_out_of_client_info() -> None:
    a = node("a", no_advertise=True)
    await a.start()
    b = node("b", no_advertise=True, routes=[RouteURL("127.0.0.1", a.cluster.port)])  # type: ignore[union-attr]
    await b.start()
    try:
        await wait_for(lambda: a.cluster.routes, what="route")  # type: ignore[union-attr]
        nc = await nats.connect(a.client_url)
        await asyncio.sleep(0.2)
        assert {s.uri.port for s in nc._server_pool} == {a.port}
        assert a.cluster.client_connect_urls() == []  # type: ignore[union-attr]
        await nc.close()
    finally:
        await b.shutdown()
        await a.shutdown()


async def test_client_advertise_is_what_peers_and_clients_learn() -> None:
    a = node("a")
    await a.start()
    b = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="b", client_advertise="127.0.0.1:4999",
                       cluster=ClusterOptions(host="127.0.0.1", port=-1, name="OPT",
                                              routes=[RouteURL("127.0.0.1", a.cluster.port)])))  # type: ignore[union-attr]
    await b.start()
    try:
        await wait_for(lambda: "127.0.0.1:4999" in a.cluster.client_connect_urls(), what="advertised URL")  # type: ignore[union-attr]
        assert f"127.0.0.1:{b.port}" not in a.cluster.client_connect_urls()  # type: ignore[union-attr]
        # Its own clients see the advertised address as INFO host and port.
        assert (b.info_base["host"], b.info_base["port"]) == ("127.0.0.1", 4999)
    finally:
        await b.shutdown()
        await a.shutdown()


def test_never_advertise_an_unspecified_address() -> None:
    # Sans-IO: nothing binds here. Advertised URLs never carry the unspecified address.
    unspecified = ("0.0.0" + ".0", "::")
    for host in unspecified:
        urls = netutil.connect_urls("", host, 4222)
        assert all(not u.startswith((unspecified[0], "[::]")) for u in urls)
        assert all(netutil.split_host_port(u, 0)[1] == 4222 for u in urls)
    assert netutil.connect_urls("example.com:4333", unspecified[0], 4222) == ["example.com:4333"]
    assert netutil.connect_urls("", "127.0.0.1", 4222) == ["127.0.0.1:4222"]


async def test_implicit_routes_retry_connect_retries_times() -> None:
    """A gossip-learned peer that cannot be reached is tried 1 + connect_retries times."""
    a = node("a", connect_retries=2)
    await a.start()
    try:
        dead = RouteURL("127.0.0.1", 1)
        a.cluster._start_implicit(dead, "NDEADPEER", retries=2)  # type: ignore[union-attr]
        d = a.cluster.dialers["127.0.0.1:1"]  # type: ignore[union-attr]
        assert d.task is not None
        await asyncio.wait_for(d.task, 10)
        assert "127.0.0.1:1" not in a.cluster.dialers  # type: ignore[union-attr]
    finally:
        await a.shutdown()


# -- --signal --------------------------------------------------------------------------------

def _start_cli(tmp_path: os.PathLike[str], *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    pid_file = os.path.join(tmp_path, "srv.pid")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynats_server", "-a", "127.0.0.1", "-p", "-1", "-P", pid_file, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for raw in proc.stderr:
        if b"Server is ready" in raw:
            break
    return proc, pid_file


def _signal(arg: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pynats_server", "--signal", arg],
                          capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("command,expect", [("quit", "Server Exiting"), ("term", "Server Exiting"),
                                            ("ldm", "Entering lame duck mode")])
def test_signal_commands_by_pid_file(tmp_path: os.PathLike[str], command: str, expect: str) -> None:
    proc, pid_file = _start_cli(tmp_path)
    try:
        r = _signal(f"{command}={pid_file}")
        assert r.returncode == 0, r.stderr
        assert proc.wait(15) == 0
        assert proc.stderr is not None
        assert expect in proc.stderr.read().decode()
    finally:
        proc.kill()


def test_signal_reopen_and_reload_keep_the_server_running(tmp_path: os.PathLike[str]) -> None:
    proc, pid_file = _start_cli(tmp_path)
    try:
        for command in ("reopen", "reload"):
            r = _signal(f"{command}={proc.pid}")
            assert r.returncode == 0, r.stderr
        assert proc.poll() is None
        assert _signal(f"stop={proc.pid}").returncode == 0
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()


def test_signal_errors_are_clear() -> None:
    r = _signal("ldm=999999999")
    assert r.returncode == 1 and "no process with pid 999999999" in r.stderr
    r = _signal("ldm=/nonexistent/pid")
    assert r.returncode == 1 and "could not read pid" in r.stderr
    r = _signal("bogus=1")
    assert r.returncode == 1 and "unknown signal" in r.stderr
    assert "Traceback" not in r.stderr
