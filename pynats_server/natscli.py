"""`pynats`: a small NATS command-line client on nats-py, for the `nats sub` / `nats pub` steps
of the rolling-upgrade walkthrough (the Go `nats` tool is not installable from PyPI).

    pynats sub -s nats://localhost:4222 ">"
    pynats pub -s nats://localhost:4333 greeting "hello {{Count}}" --count 0 --interval 1
    pynats req service "ping"          pynats reply service "pong"
    pynats server-list -s nats://localhost:4222
    pynats top -m http://localhost:8222        (a live view of connections, like nats-top)

Long-running commands (sub, reply, pub --count 0) print what happens to their connection:

    Connected to nats://127.0.0.1:4222 (server A, id NC..., version 2.10.0)
    Discovered servers: 127.0.0.1:4222, 127.0.0.1:4333, 127.0.0.1:4444
    Disconnected from nats://127.0.0.1:4222
    Reconnected to nats://127.0.0.1:4444 (server C, id NC..., version 2.10.0)
    Server nats://127.0.0.1:4333 entered lame duck mode, moving

nats-py is not a dependency of pynats-server: it is imported only when a command runs
(`top` needs only the monitoring port and the standard library: top.py).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import random
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import ParseResult

from .const import __version__

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

MISSING_NATS = "pynats: this command needs nats-py: pip install 'pynats-server[client]'"
DEFAULT_URL = "nats://127.0.0.1:4222"
RECONNECT_WAIT = 0.5
COUNT_TEMPLATE = re.compile(r"\{\{\s*\.?Count\s*\}\}")


def out(line: str, *, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)


def host_port(u: ParseResult) -> str:
    host = u.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{u.port or 4222}"


def render(template: str, n: int) -> str:
    """Replace `{{Count}}` by the 1-based message number, as `nats pub` does."""
    return COUNT_TEMPLATE.sub(str(n), template)


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class Connection:
    """A nats-py client that reports what happens to its connection.

    With `report`, connects, disconnects, reconnects, gossiped servers and lame duck notices
    are printed (to stderr when `to_stderr`, so that `sub --raw` prints only payloads).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.nc: Client | None = None
        self.report = False
        self.to_stderr = False
        self.url = ""
        self.closing = False
        self.last_error: BaseException | None = None
        self._printed_pool: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connecting: asyncio.Future[Client] | None = None

    def say(self, line: str) -> None:
        if self.report and not self.closing:
            out(line, err=self.to_stderr)

    async def connect(self, *, report: bool = False, to_stderr: bool = False) -> Client:
        import nats
        import nats.aio.client

        self.report, self.to_stderr = report, to_stderr
        args = self.args
        servers = [s.strip() for s in args.server.split(",") if s.strip()]
        options: dict[str, Any] = dict(
            name=args.name,
            user=args.user,
            password=args.password,
            token=args.token,
            connect_timeout=args.connect_timeout,
            reconnect_time_wait=RECONNECT_WAIT,
            max_reconnect_attempts=-1,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            discovered_server_cb=self._on_discovered,
        )
        if "lame_duck_mode_cb" in inspect.signature(nats.aio.client.Client.connect).parameters:
            options["lame_duck_mode_cb"] = self._on_lame_duck  # recent nats-py only
        # nats-py retries the first connection forever too: give up after the connect timeout,
        # or at once when a server rejects our credentials (see _on_error).
        connecting = self._connecting = asyncio.ensure_future(nats.connect(servers, **options))
        try:
            done, _ = await asyncio.wait([connecting], timeout=args.connect_timeout)
        finally:
            if not connecting.done():
                connecting.cancel()
        if not done or connecting.cancelled():
            why = f": {self.last_error}" if self.last_error else ""
            raise CommandError(f"pynats: cannot connect to {', '.join(servers)}{why}")
        nc = self.nc = connecting.result()
        self._connected("Connected to")
        return nc

    def _describe(self) -> str:
        assert self.nc is not None
        info: dict[str, Any] = self.nc._server_info
        name = info.get("server_name") or info.get("server_id", "?")
        return f"server {name}, id {info.get('server_id', '?')}, version {info.get('version', '?')}"

    def _connected(self, verb: str) -> None:
        assert self.nc is not None
        u = self.nc.connected_url
        if u is None:
            return
        self.url = f"{u.scheme}://{host_port(u)}"
        self.say(f"{verb} {self.url} ({self._describe()})")
        self._report_pool()

    def _report_pool(self) -> None:
        """Print the known servers when gossip (INFO connect_urls) changed them."""
        assert self.nc is not None
        if not self.nc.discovered_servers:
            return
        pool = {host_port(u) for u in self.nc.servers}
        if pool != self._printed_pool:
            self._printed_pool = pool
            self.say(f"Discovered servers: {', '.join(sorted(pool))}")

    async def _on_error(self, e: Exception) -> None:
        from nats import errors

        quiet = (OSError, asyncio.TimeoutError, errors.UnexpectedEOF, errors.StaleConnectionError)
        if self.nc is None:  # connecting: keep the most telling reason for a failure
            if self.last_error is None or not isinstance(e, quiet):
                self.last_error = e
            rejected = isinstance(e, errors.AuthorizationError) or (
                isinstance(e, errors.Error) and "authorization violation" in str(e).lower()
            )
            if rejected and self._connecting is not None:
                self._connecting.cancel()
        elif not self.closing and not isinstance(e, quiet):
            out(f"pynats: {type(e).__name__}: {e}", err=True)

    async def _on_disconnected(self) -> None:
        if self.url:
            self.say(f"Disconnected from {self.url}")

    async def _on_reconnected(self) -> None:
        self._connected("Reconnected to")

    async def _on_discovered(self) -> None:
        if self.nc is not None:
            self._report_pool()

    async def _on_lame_duck(self) -> None:
        self.say(f"Server {self.url} entered lame duck mode, moving")
        # Called from the client's read loop: move from a task, after a random delay so that
        # the clients of a lame duck server do not all land on the same server at once.
        task = asyncio.ensure_future(self._move(random.uniform(0.0, 1.0)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _move(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.nc is not None and not self.closing:
            await self.nc.force_reconnect()

    async def close(self) -> None:
        self.closing = True
        for t in list(self._tasks):
            t.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 2.0)
            except Exception:  # noqa: BLE001 - exiting anyway
                pass


class CommandError(Exception):
    """A failure to report as one line on stderr, exit code 1."""


def parse_headers(values: list[str]) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for h in values:
        key, sep, value = h.partition(":")
        if not sep or not key.strip():
            raise CommandError(f"pynats: invalid header {h!r}, expected Key:Value")
        headers[key.strip()] = value.strip()
    return headers or None


def print_msg(n: int, msg: Msg, *, raw: bool = False) -> None:
    if raw:
        out(text(msg.data))
        return
    line = f'[#{n}] Received on "{msg.subject}"'
    if msg.reply:
        line += f' with reply "{msg.reply}"'
    out(line)
    if msg.headers:
        for k, v in msg.headers.items():
            out(f"{k}: {v}")
        out("")
    out(text(msg.data) if msg.data else "nil body")
    out("")


# -- commands -------------------------------------------------------------------------------


async def cmd_sub(conn: Connection, args: argparse.Namespace) -> int:
    nc = await conn.connect(report=True, to_stderr=args.raw)
    done = asyncio.Event()
    received = 0

    async def on_msg(msg: Msg) -> None:
        nonlocal received
        if args.count and received >= args.count:
            return
        received += 1
        print_msg(received, msg, raw=args.raw)
        if args.count and received >= args.count:
            done.set()

    await nc.subscribe(args.subject, queue=args.queue, cb=on_msg, max_msgs=args.count)
    await nc.flush()
    queue = f' (queue "{args.queue}")' if args.queue else ""
    conn.say(f'Subscribed to "{args.subject}"{queue}')
    await done.wait()
    return 0


async def cmd_pub(conn: Connection, args: argparse.Namespace) -> int:
    forever = args.count == 0
    headers = parse_headers(args.header)
    nc = await conn.connect(report=forever)
    published = 0
    try:
        while forever or published < args.count:
            if published and args.interval:
                await asyncio.sleep(args.interval)
            body = render(args.body, published + 1).encode()
            await nc.publish(args.subject, body, headers=headers)
            published += 1
        await nc.flush(timeout=args.connect_timeout)
    finally:
        s = "" if published == 1 else "s"
        out(f'Published {published} message{s} to "{args.subject}"')
    return 0


async def cmd_req(conn: Connection, args: argparse.Namespace) -> int:
    from nats import errors

    headers = parse_headers(args.header)
    nc = await conn.connect()
    try:
        msg = await nc.request(args.subject, args.body.encode(), args.timeout, headers=headers)
    except errors.NoRespondersError:
        raise CommandError("No responders available for request") from None
    except errors.TimeoutError:
        raise CommandError(
            f"pynats: no reply on {args.subject!r} within {args.timeout:g}s"
        ) from None
    out(text(msg.data))
    return 0


async def cmd_reply(conn: Connection, args: argparse.Namespace) -> int:
    nc = await conn.connect(report=True)
    done = asyncio.Event()
    answered = 0

    async def on_request(msg: Msg) -> None:
        nonlocal answered
        if args.count and answered >= args.count:
            return
        answered += 1
        print_msg(answered, msg)
        if msg.reply:
            body = msg.data if args.response is None else render(args.response, answered).encode()
            await msg.respond(body)
        if args.count and answered >= args.count:
            done.set()

    await nc.subscribe(args.subject, queue=args.queue, cb=on_request, max_msgs=args.count)
    await nc.flush()
    queue = f' (queue "{args.queue}")' if args.queue else ""
    conn.say(f'Listening on "{args.subject}"{queue}')
    await done.wait()
    await nc.flush()
    return 0


async def cmd_server_list(conn: Connection, args: argparse.Namespace) -> int:
    nc = await conn.connect()
    await nc.flush()  # the first PONG: the server has our CONNECT
    await asyncio.sleep(0.3)  # room for an async INFO with more connect_urls
    current = host_port(nc.connected_url) if nc.connected_url else ""
    discovered = {host_port(u) for u in nc.discovered_servers}
    urls = {host_port(u): u.scheme for u in nc.servers}
    for hp in sorted(urls, key=lambda hp: (hp != current, hp)):
        if hp == current:
            note = f"connected, {conn._describe()}"
        else:
            note = "discovered" if hp in discovered else "configured"
        out(f"{urls[hp]}://{hp} ({note})")
    return 0


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection")
    g.add_argument(
        "-s",
        "--server",
        default=os.environ.get("NATS_URL", DEFAULT_URL),
        metavar="URL",
        help=f"server URL(s), comma separated (default: $NATS_URL or {DEFAULT_URL})",
    )
    g.add_argument("--name", default="pynats", help="connection name (default: %(default)s)")
    g.add_argument("--user", help="user name")
    g.add_argument("--password", help="password")
    g.add_argument("--token", help="authentication token")
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="give up when no server is reachable within S seconds (default: %(default)s)",
    )

    p = argparse.ArgumentParser(
        prog="pynats",
        description="A small NATS client: subscribe, publish, request, reply, list servers.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, fn: Callable[[Connection, argparse.Namespace], Awaitable[int]], summary: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=summary, description=summary)
        sp.set_defaults(func=fn)
        return sp

    sp = command("sub", cmd_sub, "Subscribe to a subject and print the messages received.")
    sp.add_argument("subject")
    sp.add_argument("--queue", default="", help="join this queue group")
    sp.add_argument("--count", type=int, default=0, help="exit after N messages")
    sp.add_argument("--raw", action="store_true", help="print only the payloads")

    sp = command("pub", cmd_pub, "Publish a message; {{Count}} in BODY is the message number.")
    sp.add_argument("subject")
    sp.add_argument("body", nargs="?", default="")
    sp.add_argument(
        "--count",
        type=int,
        default=1,
        help="publish N messages; 0: until interrupted (with --interval)",
    )
    sp.add_argument(
        "--interval", type=float, default=0.0, metavar="S", help="sleep S seconds between messages"
    )
    sp.add_argument(
        "-H", "--header", action="append", default=[], metavar="KEY:VALUE", help="add a header"
    )

    sp = command("req", cmd_req, "Send a request and print the reply.")
    sp.add_argument("subject")
    sp.add_argument("body", nargs="?", default="")
    sp.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="wait S seconds for a reply"
    )
    sp.add_argument(
        "-H", "--header", action="append", default=[], metavar="KEY:VALUE", help="add a header"
    )

    sp = command("reply", cmd_reply, "Answer requests with RESPONSE (default: echo the request).")
    sp.add_argument("subject")
    sp.add_argument("response", nargs="?", default=None)
    sp.add_argument("--queue", default="", help="join this queue group")
    sp.add_argument("--count", type=int, default=0, help="exit after N requests")

    command("server-list", cmd_server_list, "List the servers the client learns of on connect.")

    from . import top

    summary = "A live view of a server's connections, like nats-top (its monitoring port)."
    sp = sub.add_parser("top", help=summary, description=summary + " Keys: " + top.HELP + ".")
    sp.set_defaults(func=None)
    sp.add_argument("-m", "--monitor", default=os.environ.get("NATS_MONITOR_URL", top.DEFAULT_URL), metavar="URL",
                    help=f"monitoring URL (default: $NATS_MONITOR_URL or {top.DEFAULT_URL})")
    sp.add_argument("--sort", default="msgs/s", choices=top.SORTS, help="sort connections by (default: %(default)s)")
    sp.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh every S seconds")
    sp.add_argument("-n", "--limit", type=int, default=1024, help="connections asked for (default: %(default)s)")
    sp.add_argument("--once", action="store_true", help="print one view (two polls INTERVAL apart) and exit")
    return p


async def run(args: argparse.Namespace) -> int:
    conn = Connection(args)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(args.func(conn, args))
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):  # Windows: KeyboardInterrupt instead
            pass
    try:
        return await task
    except asyncio.CancelledError:
        return 0  # interrupted: a normal way to stop
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "pub" and args.count == 0 and not args.interval:
        parser.error("pub --count 0 (publish until interrupted) needs --interval")
    if getattr(args, "count", 0) < 0:
        parser.error("--count must not be negative")
    if args.command == "top":
        return run_top(args)
    try:
        import nats  # noqa: F401
    except ImportError:
        out(MISSING_NATS, err=True)
        return 1
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except CommandError as e:
        out(str(e), err=True)
        return 1
    except Exception as e:  # noqa: BLE001 - a one-line error, never a traceback
        from nats import errors

        if isinstance(e, (errors.Error, OSError, asyncio.TimeoutError)):
            out(f"pynats: {str(e) or type(e).__name__}", err=True)
            return 1
        raise


def run_top(args: argparse.Namespace) -> int:
    """`pynats top`: needs only the monitoring port (no nats-py)."""
    from . import top

    if args.interval <= 0:
        out("pynats top: --interval must be positive", err=True)
        return 2
    try:
        if args.once:
            out(top.once(args.monitor, sort=args.sort, interval=args.interval, limit=args.limit))
            return 0
        return top.run(args.monitor, sort=args.sort, interval=args.interval, limit=args.limit)
    except top.FetchError as e:
        out(f"pynats top: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
