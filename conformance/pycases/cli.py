"""Command line: flag syntax, readiness log lines, ports file, -v, -h, -t, -P, -n, signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
from pathlib import Path

from ..conn import Conn
from ..context import CaseContext
from ..registry import pycase
from ..targets import HOST

LOG_LINE = re.compile(
    r"\[(?P<pid>\d+)\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \[(?P<lvl>INF|DBG|TRC|WRN|ERR|FTL)\] (?P<msg>.*)"
)


async def run_cmd(ctx: CaseContext, args: list[str], timeout: float = 10.0) -> tuple[int, str, str]:
    """Run the target executable with ``args``; (exit code, stdout, stderr)."""
    assert ctx.target.path is not None
    proc = await asyncio.create_subprocess_exec(
        str(ctx.target.path),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ctx.workdir),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        ctx.fail(f"`{' '.join(args)}` did not exit within {timeout}s")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def answers_info(ctx: CaseContext, port: int) -> dict:
    c = await Conn.open("cli", HOST, port, ctx.timeout)
    try:
        obj, _ = await c.expect_info()
        return obj
    finally:
        await c.close()


def _port_form_case(name: str, args: list[str], doc: str) -> None:
    @pycase(f"cli.flags.{name}", doc=doc)
    async def case(ctx: CaseContext) -> None:
        s = await ctx.start_server(args=args, base_args=False)
        ctx.check(s.client_port > 0, "a client port was logged", "> 0", s.client_port)
        info = await answers_info(ctx, s.client_port)
        ctx.check(info.get("port") == s.client_port, "INFO port", s.client_port, info.get("port"))


_port_form_case("port_short_space", ["-a", HOST, "-p", "-1"], "-a 127.0.0.1 -p -1")
_port_form_case("port_long_equals", ["--addr=127.0.0.1", "--port=-1"], "--addr=127.0.0.1 --port=-1")
_port_form_case(
    "port_short_equals", ["-a=127.0.0.1", "-p=-1"], "-a=127.0.0.1 -p=-1 (Go flag syntax)"
)
_port_form_case(
    "port_single_dash_long", ["-addr", HOST, "-port", "-1"], "single-dash long names: -addr -port"
)
_port_form_case("net_alias", ["--net", HOST, "--port", "-1"], "--net is an alias of --addr")


@pycase(
    "cli.flags.single_dash_cluster",
    doc="-cluster nats://127.0.0.1:-1 -cluster_name X: a route listener starts",
)
async def single_dash_cluster(ctx: CaseContext) -> None:
    s = await ctx.start_server(
        args=["-a", HOST, "-p", "-1", "-cluster", f"nats://{HOST}:-1", "-cluster_name", "X"],
        base_args=False,
    )
    await s.wait_log(r"Listening for route connections on 127\.0\.0\.1:\d+", 5)


@pycase("cli.flags.cluster_listen_alias", doc="--cluster_listen is an alias of --cluster")
async def cluster_listen_alias(ctx: CaseContext) -> None:
    s = await ctx.start_server(
        args=["--cluster_listen", f"nats://{HOST}:-1", "--cluster_name", "X"]
    )
    await s.wait_log(r"Listening for route connections on 127\.0\.0\.1:\d+", 5)


@pycase("cli.flags.debug_trace_DV", doc="-DV starts the server and traces protocol lines ([TRC])")
async def debug_trace(ctx: CaseContext) -> None:
    s = await ctx.start_server(args=["-DV"])
    c = await Conn.open("c", HOST, s.client_port, ctx.timeout)
    try:
        await c.expect_info()
        await c.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await c.expect_bytes(b"PONG\r\n")
    finally:
        await c.close()
    await s.wait_log(r"\[TRC\] .*PING", 5)
    await s.wait_log(r"\[DBG\] ", 5)


@pycase(
    "cli.log.readiness_lines",
    doc="`Listening for client connections on 127.0.0.1:PORT` and `Server is ready`, nats-server log shape",
)
async def readiness_lines(ctx: CaseContext) -> None:
    s = await ctx.start_server()
    lines = list(s.log)
    ready = [ln for ln in lines if "Server is ready" in ln]
    listen = [ln for ln in lines if "Listening for client connections on" in ln]
    ctx.check(
        bool(ready) and bool(listen),
        "both readiness lines",
        "Listening... / Server is ready",
        lines[-5:],
    )
    for ln in (listen[0], ready[0]):
        m = LOG_LINE.fullmatch(ln)
        ctx.check(
            m is not None,
            "log line shape [pid] YYYY/MM/DD HH:MM:SS.micro [INF] msg",
            LOG_LINE.pattern,
            ln,
        )
        assert m is not None
        ctx.check(int(m.group("pid")) == s.pid, "pid in the log line", s.pid, m.group("pid"))
        ctx.check(m.group("lvl") == "INF", "level", "INF", m.group("lvl"))
    ctx.check(
        listen[0].endswith(f"Listening for client connections on 127.0.0.1:{s.client_port}"),
        "listen line",
        f"...on 127.0.0.1:{s.client_port}",
        listen[0],
    )
    ctx.check(
        lines.index(listen[0]) < lines.index(ready[0]),
        "Listening comes before Server is ready",
        "order",
        lines,
    )


@pycase("cli.log.all_lines_shaped", doc="every startup log line has the nats-server shape")
async def all_lines_shaped(ctx: CaseContext) -> None:
    s = await ctx.start_server(http=True, cluster=True)
    bad = [ln for ln in s.log if not LOG_LINE.fullmatch(ln)]
    ctx.check(not bad, "log lines not in the nats-server shape", LOG_LINE.pattern, bad[:5])
    await s.wait_log(r"\[INF\] Starting http monitor on 127\.0\.0\.1:\d+", 1)
    await s.wait_log(r"\[INF\] Listening for route connections on 127\.0\.0\.1:\d+", 1)


@pycase("cli.run.log_file", doc="-l FILE: the log, readiness lines included, goes to the file")
async def log_file(ctx: CaseContext) -> None:
    path = ctx.workdir / f"log-{os.getpid()}-{id(ctx)}.log"
    assert ctx.target.path is not None
    proc = await asyncio.create_subprocess_exec(
        str(ctx.target.path),
        "-a",
        HOST,
        "-p",
        "-1",
        "-l",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def probe() -> object:
            text = path.read_text() if path.exists() else ""
            return True if "Server is ready" in text else "no `Server is ready` in the log file yet"

        await ctx.eventually(probe, 10, "Server is ready in the -l log file")
        m = re.search(r"Listening for client connections on 127\.0\.0\.1:(\d+)", path.read_text())
        ctx.check(
            m is not None,
            "listen line in the log file",
            "Listening for client connections on",
            path.read_text()[-300:],
        )
        assert m is not None
        await answers_info(ctx, int(m.group(1)))
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        with contextlib.suppress(OSError):
            path.unlink()


@pycase(
    "cli.run.ports_file",
    ref="TestPortsFile",
    doc="--ports_file_dir: <exe>_<pid>.ports with nats/monitoring/cluster URLs",
)
async def ports_file(ctx: CaseContext) -> None:
    # A fresh directory per run: a name from id(ctx) was reused by a later target's run.
    d = Path(tempfile.mkdtemp(prefix="ports-", dir=ctx.workdir))
    s = await ctx.start_server(args=["--ports_file_dir", str(d)], http=True, cluster=True)
    assert ctx.target.path is not None
    f = d / f"{ctx.target.path.name}_{s.pid}.ports"

    async def probe() -> object:
        return True if f.exists() else f"no {f.name} in {sorted(p.name for p in d.iterdir())}"

    await ctx.eventually(probe, 5, f"the ports file {f.name}")
    data = json.loads(f.read_text())
    ctx.check(
        data.get("nats") == [f"nats://127.0.0.1:{s.client_port}"],
        "nats",
        [s.client_url],
        data.get("nats"),
    )
    ctx.check(
        data.get("monitoring") == [f"http://127.0.0.1:{s.http_port}"],
        "monitoring",
        [f"http://127.0.0.1:{s.http_port}"],
        data.get("monitoring"),
    )
    ctx.check(
        data.get("cluster") == [f"nats://127.0.0.1:{s.cluster_port}"],
        "cluster",
        [s.cluster_url],
        data.get("cluster"),
    )
    await s.stop(grace=3)
    ctx.check(not f.exists(), "the ports file is removed on shutdown", "removed", "still there")


@pycase("cli.run.pid_file", doc="-P FILE holds the server's pid")
async def pid_file(ctx: CaseContext) -> None:
    f = ctx.workdir / f"srv-{id(ctx)}.pid"
    s = await ctx.start_server(args=["-P", str(f)])
    text = f.read_text().strip() if f.exists() else ""
    ctx.check(text == str(s.pid), "pid file content", str(s.pid), text)


@pycase("cli.commands.version", doc="-v prints `<name>: v<semver>` (first) and exits 0")
async def version(ctx: CaseContext) -> None:
    rc, out, err = await run_cmd(ctx, ["-v"])
    text = (out + err).strip()
    ctx.check(rc == 0, "exit code", 0, rc)
    ctx.check(
        re.match(r"\S+: v\d+\.\d+\.\d+", text) is not None,
        "-v output",
        "nats-server: vX.Y.Z",
        text,
    )


@pycase("cli.commands.help", doc="-h prints the usage and exits 0")
async def help_(ctx: CaseContext) -> None:
    rc, out, err = await run_cmd(ctx, ["-h"])
    ctx.check(rc == 0, "exit code", 0, rc)
    text = out + err
    ctx.check("Usage:" in text, "usage text", "Usage: ...", text[:200])
    for flag in ("--port", "--cluster", "--routes", "--http_port", "--ports_file_dir"):
        ctx.check(flag in text, f"{flag} in the usage", flag, text[:200])


@pycase(
    "cli.commands.unknown_flag",
    doc="an unknown flag: `flag provided but not defined: -bogus` and the usage; the server does not start",
)
async def unknown_flag(ctx: CaseContext) -> None:
    rc, out, err = await run_cmd(ctx, ["--bogus"])
    ctx.check(
        "flag provided but not defined: -bogus" in err + out,
        "error text",
        "flag provided but not defined: -bogus",
        (err + out)[:200],
    )


@pycase(
    "cli.commands.config_test_valid", doc="-t -c FILE: `configuration file FILE is valid`, exit 0"
)
async def config_test_valid(ctx: CaseContext) -> None:
    f = ctx.workdir / f"valid-{id(ctx)}.conf"
    f.write_text(
        "port: 4222\nmax_payload: 2MB\ncluster {\n  name: C1\n  listen: 127.0.0.1:6222\n}\n"
    )
    rc, out, err = await run_cmd(ctx, ["-t", "-c", str(f)])
    ctx.check(rc == 0, "exit code", 0, rc)
    ctx.check(
        f"configuration file {f} is valid" in out + err,
        "message",
        f"configuration file {f} is valid",
        (out + err).strip(),
    )


@pycase("cli.commands.config_test_invalid", doc="-t on a broken config: exit code 1, a parse error")
async def config_test_invalid(ctx: CaseContext) -> None:
    f = ctx.workdir / f"invalid-{id(ctx)}.conf"
    f.write_text("port: {\n")
    rc, out, err = await run_cmd(ctx, ["-t", "-c", str(f)])
    ctx.check(rc != 0, "exit code", "non-zero", rc)
    ctx.check(
        "error" in (out + err).lower(), "an error message", "...error...", (out + err).strip()
    )


@pycase(
    "cli.run.config_file_values",
    doc="-c FILE with max_payload and server_name; flags still override the port",
)
async def config_file_values(ctx: CaseContext) -> None:
    s = await ctx.start_server(config='server_name: "from-config"\nmax_payload: 2KB\nport: 4999\n')
    info = await answers_info(ctx, s.client_port)
    ctx.check(
        info.get("server_name") == "from-config",
        "server_name",
        "from-config",
        info.get("server_name"),
    )
    ctx.check(
        info.get("max_payload") == 2048, "max_payload 2KB = 2048", 2048, info.get("max_payload")
    )
    ctx.check(
        s.client_port != 4999, "-p -1 overrides port from the config", "random port", s.client_port
    )


@pycase("cli.flags.server_name", doc="-n NAME and --server_name NAME show in INFO server_name")
async def server_name(ctx: CaseContext) -> None:
    for flag in ("-n", "--server_name"):
        s = await ctx.start_server(args=[flag, f"srv{flag.strip('-')}"])
        info = await answers_info(ctx, s.client_port)
        ctx.check(
            info.get("server_name") == f"srv{flag.strip('-')}",
            f"{flag}",
            f"srv{flag.strip('-')}",
            info.get("server_name"),
        )


@pycase(
    "cli.flags.client_advertise",
    ref="TestServerInfoWithClientAdvertise",
    doc="--client_advertise me:1 replaces INFO host/port",
)
async def client_advertise(ctx: CaseContext) -> None:
    s = await ctx.start_server(args=["--client_advertise", "me:1"])
    info = await answers_info(ctx, s.client_port)
    ctx.check(
        (info.get("host"), info.get("port")) == ("me", 1),
        "INFO host:port",
        "me:1",
        f"{info.get('host')}:{info.get('port')}",
    )


@pycase(
    "cli.run.sigterm_exits", doc="SIGTERM: the server shuts down (logs `Server Exiting`) within 5 s"
)
async def sigterm_exits(ctx: CaseContext) -> None:
    s = await ctx.start_server()
    n = len(s.log)
    s.send_signal(signal.SIGTERM)
    rc = await s.wait_exit(5)
    ctx.check(rc is not None, "exited after SIGTERM", "exit", "still running")
    await s.wait_log(r"Server Exiting", 2, start=n)


@pycase(
    "cli.commands.signal_ldm",
    doc="`--signal ldm=PID` puts the running server in lame duck mode (it logs it)",
)
async def signal_ldm(ctx: CaseContext) -> None:
    s = await ctx.start_server()
    c = await Conn.open(
        "c", HOST, s.client_port, ctx.timeout
    )  # a client keeps the server from exiting at once
    try:
        await c.expect_info()
        n = len(s.log)
        rc, out, err = await run_cmd(ctx, ["--signal", f"ldm={s.pid}"])
        ctx.check(rc == 0, "--signal exit code", 0, (rc, out, err))
        await s.wait_log(r"[Ll]ame [Dd]uck", 5, start=n)
    finally:
        await c.close()
        s.stopped_on_purpose = True
