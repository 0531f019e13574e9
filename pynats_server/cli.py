"""`pynats-server`: nats-server's command line, its signals, and `--signal`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass

from . import const
from .goflags import Flag, FlagError, Parsed, parse
from .optcheck import UsageError, parse_url, validate
from .options import Options, RouteURL, TLSOptions

USAGE = """
Usage: pynats-server [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 for a random port)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to pynats-server process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/pynats-server.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
        --logtime_utc                Timestamps in UTC instead of local time
    -s, --syslog                     Log to the local syslog
    -r, --remote_syslog <addr>       Log to a remote syslog (udp://127.0.0.1:514, tcp://..., unix:///dev/log)
        --log_size_limit <size>      Rotate the log file when it passes this many bytes
        --max_traced_msg_len <len>   Payloads in trace lines cut to this many bytes (default: whole)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (traces system account as well)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace (traces system account as well)

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes

pynats-server Options (not in nats-server):
        --max_payload <size>         Maximum message payload (default: 1MB)
        --max_pending <size>         Maximum bytes buffered for a client before it is a slow consumer (default: 64MB)
        --max_connections <number>   Maximum client connections (default: 65536)
        --ping_interval <duration>   Interval between server PINGs (default: 2m)
        --ping_max <number>          Unanswered PINGs before a connection is stale (default: 2)
        --lame_duck_duration <dur>   Time over which lame duck mode closes clients (default: 2m, minimum 30s)
        --lame_duck_grace_period <d> Wait before lame duck mode starts closing clients (default: 10s)
        --loop <auto|uvloop|asyncio> Event loop (default: uvloop when installed)

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help
"""

def tls_usage() -> str:
    from . import tlsctx

    return TLS_USAGE.format(
        ciphers="".join(f"    {n}\n" for n in sorted(tlsctx.SECURE_CIPHERS)),
        curves="".join(f"    {n}\n" for n in tlsctx.CURVES),
    )


TLS_USAGE = """
TLS configuration is specified in the tls section of a configuration file:

e.g.

    tls {{
        cert_file:      "./certs/server-cert.pem"
        key_file:       "./certs/server-key.pem"
        ca_file:        "./certs/ca.pem"
        verify:         true
        verify_and_map: true

        cipher_suites: [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ]
        curve_preferences: [
            "CurveP256",
            "CurveP384",
            "CurveP521"
        ]
    }}

Available cipher suites include:
{ciphers}
Available curve preferences include:
{curves}"""

# Flags of later or never: recognised so that a nats-server command line never produces a
# traceback; `None` as message means "accepted and ignored, with a warning".
_UNSUPPORTED: dict[str, str] = {}
_IGNORED = {"profile"}

FLAGS = [
    Flag(("h", "help"), "bool", "help"),
    Flag(("v", "version"), "bool", "version"),
    Flag(("p", "port"), "int", "port"),
    Flag(("a", "addr", "net"), "str", "host"),
    Flag(("n", "name", "server_name"), "str", "server_name"),
    Flag(("client_advertise",), "str", "client_advertise"),
    Flag(("D", "debug"), "bool", "debug"),
    Flag(("V", "trace"), "bool", "trace"),
    Flag(("VV",), "bool", "vv"),
    Flag(("DV",), "bool", "dv"),
    Flag(("DVV",), "bool", "dvv"),
    Flag(("T", "logtime"), "bool", "logtime"),
    Flag(("logtime_utc",), "bool", "logtime_utc"),
    Flag(("user",), "str", "username"),
    Flag(("pass",), "str", "password"),
    Flag(("auth",), "str", "authorization"),
    Flag(("m", "http_port"), "int", "http_port"),
    Flag(("ms", "https_port"), "int", "https_port"),
    Flag(("c", "config"), "str", "config_file"),
    Flag(("t",), "bool", "check_config"),
    Flag(("sl", "signal"), "str", "signal"),
    Flag(("P", "pid"), "str", "pid_file"),
    Flag(("ports_file_dir",), "str", "ports_file_dir"),
    Flag(("l", "log"), "str", "log_file"),
    Flag(("log_size_limit",), "int", "log_size_limit"),
    Flag(("s", "syslog"), "bool", "syslog"),
    Flag(("r", "remote_syslog"), "str", "remote_syslog"),
    Flag(("profile",), "int", "profile"),
    Flag(("routes",), "str", "routes"),
    Flag(("cluster", "cluster_listen"), "str", "cluster"),
    Flag(("cluster_advertise",), "str", "cluster_advertise"),
    Flag(("no_advertise",), "bool", "no_advertise"),
    Flag(("connect_retries",), "int", "connect_retries"),
    Flag(("cluster_name",), "str", "cluster_name"),
    Flag(("help_tls",), "bool", "help_tls"),
    Flag(("tls",), "bool", "tls"),
    Flag(("tlsverify",), "bool", "tlsverify"),
    Flag(("tlscert",), "str", "tlscert"),
    Flag(("tlskey",), "str", "tlskey"),
    Flag(("tlscacert",), "str", "tlscacert"),
    Flag(("max_traced_msg_len",), "int", "max_traced_msg_len"),
    Flag(("js", "jetstream"), "bool", "jetstream"),
    Flag(("sd", "store_dir"), "str", "store_dir"),
    # pynats-server extensions
    Flag(("max_payload",), "str", "max_payload"),
    Flag(("max_pending",), "str", "max_pending"),
    Flag(("max_connections",), "int", "max_connections"),
    Flag(("ping_interval",), "str", "ping_interval"),
    Flag(("ping_max",), "int", "ping_max"),
    Flag(("lame_duck_duration",), "str", "lame_duck_duration"),
    Flag(("lame_duck_grace_period",), "str", "lame_duck_grace_period"),
    Flag(("loop",), "str", "loop"),
]


@dataclass
class Command:
    """What the command line asks for."""

    action: str  # "run", "help", "version", "signal", "check"
    opts: Options
    signal: str = ""
    warnings: tuple[str, ...] = ()
    # The command line as parsed: a configuration reload reads the file again and applies
    # these flags over it (nats-server's FlagSnapshot).
    flags: Parsed | None = None


def parse_size(text: str) -> int:
    """`1048576`, `2MB`, `64KiB`, `1k` (k = 1000, kb/ki/kib = 1024), as nats-server's config."""
    t = text.strip().lower()
    units = {
        "kib": 1 << 10, "ki": 1 << 10, "kb": 1 << 10, "k": 1000,
        "mib": 1 << 20, "mi": 1 << 20, "mb": 1 << 20, "m": 1000**2,
        "gib": 1 << 30, "gi": 1 << 30, "gb": 1 << 30, "g": 1000**3,
    }  # fmt: skip
    for suffix, mult in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if t.endswith(suffix) and t[: -len(suffix)].strip().isdigit():
            return int(t[: -len(suffix)]) * mult
    return int(t)


def parse_duration(text: str) -> float:
    """A Go duration (`2m`, `30s`, `1m30s`, `500ms`) or plain seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total = 0.0
    num = ""
    i = 0
    if not t:
        raise ValueError(text)
    while i < len(t):
        ch = t[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        j = i
        while j < len(t) and not (t[j].isdigit() or t[j] == "."):
            j += 1
        unit = t[i:j]
        if unit not in units or not num:
            raise ValueError(text)
        total += float(num) * units[unit]
        num = ""
        i = j
    if num:
        raise ValueError(text)
    return total


def parse_routes(text: str) -> list[RouteURL]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            r = parse_url(part, "route")
            if not r.port:
                r.port = const.DEFAULT_CLUSTER_PORT
            out.append(r)
    return out


def build(argv: list[str]) -> Command:
    """Command line -> Command. Raises UsageError (or FlagError) with nats-server's wording."""
    p = parse(argv, FLAGS)
    v = p.values
    opts = Options()
    warnings: list[str] = []
    if v.get("help"):
        return Command("help", opts)
    if v.get("help_tls"):
        return Command("help_tls", opts)
    if v.get("version"):
        return Command("version", opts)
    if p.args:
        # Words after the flags are commands, as in nats-server.
        word = p.args[0].lower()
        if word == "version":
            return Command("version", opts)
        if word == "help":
            return Command("help", opts)
        raise UsageError(f'unrecognized command: "{p.args[0]}"')
    for dest in p.set_flags:
        name = p.given_names[dest]
        if dest in _UNSUPPORTED and v.get(dest):
            raise UsageError(f"{_UNSUPPORTED[dest]} (flag -{name})")
        if dest in _IGNORED:
            warnings.append(f"Flag -{name} is not supported by pynats-server and is ignored")
    if "config_file" in v:
        warnings.extend(_read_config(opts, v["config_file"]))
    if v.get("check_config"):
        if not opts.config_file:
            raise UsageError("must specify [-c, --config] option to check configuration file syntax")
        if warnings:
            # nats-server's -t treats warnings (deprecated forms, empty files) as failures.
            raise UsageError("\n".join(warnings))
        return Command("check", opts, warnings=tuple(warnings))
    if "signal" in v:
        return Command("signal", opts, signal=v["signal"], warnings=tuple(warnings))
    apply_flags(opts, p)
    return Command("run", opts, warnings=tuple(warnings), flags=p)


def _read_config(opts: Options, path: str) -> list[str]:
    opts.config_file = path
    from .config import apply_config_file

    return apply_config_file(opts, path)


def reload_options(p: Parsed) -> Options:
    """The options a configuration reload asks for: the file read again, then the same
    command-line flags over it. Raises UsageError with nats-server's text; warnings are
    dropped, as nats-server's reload drops them."""
    opts = Options()
    if "config_file" in p.values:
        _read_config(opts, p.values["config_file"])
    apply_flags(opts, p)
    return opts


def apply_flags(opts: Options, p: Parsed) -> None:
    """The command-line flags over the options (from defaults or a config file), then the
    checks nats-server makes of the result."""
    v = p.values
    # Flags override the config file, as in nats-server.
    simple = ("port", "host", "server_name", "client_advertise", "username", "password",
              "authorization", "http_port", "pid_file", "ports_file_dir", "log_file",
              "max_connections", "ping_max", "loop")  # fmt: skip
    for dest in simple:
        if dest in v:
            setattr(opts, dest, v[dest])
    if "debug" in v:
        opts.debug = v["debug"]
    if "trace" in v:
        opts.trace = v["trace"]
    if v.get("vv"):
        opts.trace = opts.trace_verbose = True
    if v.get("dv"):
        opts.debug = opts.trace = True
    if v.get("dvv"):
        opts.debug = opts.trace = opts.trace_verbose = True
    if "logtime" in v:
        opts.logtime = v["logtime"]
    for dest in ("logtime_utc", "log_size_limit", "max_traced_msg_len", "syslog", "remote_syslog"):
        if dest in v:
            setattr(opts, dest, v[dest])
    if v.get("https_port"):
        opts.https_port = v["https_port"]
    if "jetstream" in v or "store_dir" in v:
        # -js turns JetStream on (-js=false off); -sd sets where it stores, as nats-server.
        from .options import JetStreamOptions

        js = opts.jetstream or JetStreamOptions()
        if v.get("store_dir"):
            js.store_dir = v["store_dir"]
        if "jetstream" in v:
            opts.jetstream = js if v["jetstream"] else None
    _tls_flags(opts, v, p.set_flags)
    try:
        if "max_payload" in v:
            opts.max_payload = parse_size(v["max_payload"])
        if "max_pending" in v:
            opts.max_pending = parse_size(v["max_pending"])
        if "ping_interval" in v:
            opts.ping_interval = parse_duration(v["ping_interval"])
        if "lame_duck_duration" in v:
            opts.lame_duck_duration = parse_duration(v["lame_duck_duration"])
        if "lame_duck_grace_period" in v:
            opts.lame_duck_grace_period = parse_duration(v["lame_duck_grace_period"])
    except ValueError as e:
        raise UsageError(f"invalid value: {e}") from None
    if opts.loop not in ("auto", "uvloop", "asyncio"):
        raise UsageError(f'invalid value "{opts.loop}" for flag -loop: auto, uvloop or asyncio')
    # Cluster
    c = opts.cluster
    if v.get("cluster"):
        u = parse_url(v["cluster"], "cluster")
        c.host = u.host or "0.0.0.0"
        c.port = u.port if u.port else const.DEFAULT_CLUSTER_PORT
        # The flag's credentials replace the configured ones, none included (nats-server
        # overrideCluster).
        c.user, c.password = u.user, u.password
    if v.get("routes"):
        c.routes = parse_routes(v["routes"])
    if "cluster_name" in v:
        c.name = v["cluster_name"]
    if "cluster_advertise" in v:
        c.advertise = v["cluster_advertise"]
    if "no_advertise" in v:
        c.no_advertise = v["no_advertise"]
    if "connect_retries" in v:
        c.connect_retries = v["connect_retries"]
    validate(opts)


def _tls_flags(opts: Options, v: dict[str, object], given: object) -> None:
    """nats-server's -tls* flags: any of them (unless -tls=false) replaces the certificate
    part of a config file's tls {} block; its timeout and handshake rules stay."""
    names = {d for d in given if d in ("tls", "tlsverify", "tlscert", "tlskey", "tlscacert")}  # type: ignore[attr-defined]
    if not names:
        return
    if "tls" in names and not v.get("tls"):
        opts.tls = None  # -tls=false turns TLS off, whatever else is given
        return
    cert, key = str(v.get("tlscert") or ""), str(v.get("tlskey") or "")
    if not cert:
        raise UsageError("TLS Server certificate must be present and valid")
    if not key:
        raise UsageError("TLS Server private key must be present and valid")
    old = opts.tls or TLSOptions()
    opts.tls = TLSOptions(
        cert_file=cert,
        key_file=key,
        ca_file=str(v.get("tlscacert") or ""),
        verify=bool(v.get("tlsverify")),
        map=old.map,
        timeout=old.timeout,
        handshake_first=old.handshake_first,
        handshake_first_fallback=old.handshake_first_fallback,
        pinned_certs=old.pinned_certs,
    )
    from . import tlsctx

    try:
        tlsctx.server_context(opts.tls)
    except tlsctx.TLSConfigError as e:
        raise UsageError(str(e)) from None


# -- signals to a running server -----------------------------------------------------------

SIGNALS = {
    "ldm": signal.SIGUSR2,
    "stop": signal.SIGKILL,
    "quit": signal.SIGINT,
    "term": signal.SIGTERM,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
}


def find_server_pids() -> list[int]:
    """Running pynats-server processes (other than this one), from /proc."""
    pids = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        words = [os.path.basename(a.decode(errors="replace")) for a in argv[:3] if a]
        if "pynats-server" in words or any(w.startswith("pynats_server") for w in words):
            if "--signal" in (a.decode(errors="replace") for a in argv) or b"-sl" in argv:
                continue
            pids.append(int(entry))
    return pids


def send_signal(spec: str) -> str:
    """`ldm`, `ldm=1234` or `ldm=/path/to.pid` -> the message to print. Raises UsageError."""
    cmd, _, target = spec.partition("=")
    cmd = cmd.strip().lower()
    if cmd not in SIGNALS:
        raise UsageError(f"unknown signal {cmd!r}")
    if target:
        if target.isdigit():
            pid = int(target)
        else:
            try:
                with open(target, encoding="ascii") as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError) as e:
                raise UsageError(f"could not read pid from {target}: {e}") from None
    else:
        pids = find_server_pids()
        if not pids:
            raise UsageError("no pynats-server processes running")
        if len(pids) > 1:
            raise UsageError(
                "multiple pynats-server processes running:\n" + "\n".join(str(p) for p in pids)
            )
        pid = pids[0]
    try:
        os.kill(pid, SIGNALS[cmd])
    except ProcessLookupError:
        raise UsageError(f"no process with pid {pid}") from None
    except PermissionError:
        raise UsageError(f"not allowed to signal process {pid}") from None
    return f"signal {cmd!r} sent to pid {pid}"


# -- running ----------------------------------------------------------------------------

async def serve(opts: Options, warnings: tuple[str, ...] = (), flags: Parsed | None = None) -> int:
    from .log import SyslogError, from_options
    from .server import MonitorError, Server
    from .tlsctx import TLSConfigError

    try:
        log = from_options(opts)
    except SyslogError as e:
        print(f"pynats-server: {e}", file=sys.stderr)
        return 1
    srv = Server(opts, logger=log)
    if flags is not None and opts.config_file:
        srv.reload_source = lambda: reload_options(flags)
    for w in warnings:
        log.warn(w)
    loop = asyncio.get_running_loop()
    names = {
        signal.SIGINT: "interrupt",
        signal.SIGTERM: "terminated",
        signal.SIGUSR1: "user defined signal 1",
        signal.SIGUSR2: "user defined signal 2",
        signal.SIGHUP: "hangup",
    }

    def on_signal(sig: signal.Signals) -> None:
        log.notice(f'Trapped "{names[sig]}" signal')
        if sig == signal.SIGINT or (sig == signal.SIGTERM and not srv.lame_duck):
            asyncio.ensure_future(srv.shutdown())
        elif sig == signal.SIGUSR1:
            log.reopen()
        elif sig == signal.SIGUSR2:
            asyncio.ensure_future(srv.lame_duck_mode())
        elif sig == signal.SIGHUP:
            asyncio.ensure_future(srv.reload_logged())

    for sig in names:
        loop.add_signal_handler(sig, on_signal, sig)
    raise_nofile_limit()
    # Handlers are in place before the server is ready: a harness may signal at once.
    try:
        await srv.start()
    except MonitorError as e:
        log.fatal(f"Can't start monitoring: {e}")
        with contextlib.suppress(Exception):
            await srv.shutdown()
        return 1
    except TLSConfigError as e:
        log.fatal(str(e))
        with contextlib.suppress(Exception):
            await srv.shutdown()
        return 1
    except OSError as e:
        log.fatal(f"Error listening on port: {opts.host}:{opts.port}, {e.strerror or e}")
        with contextlib.suppress(Exception):
            await srv.shutdown()
        return 1
    await srv.wait_for_shutdown()
    log.close()
    return 0


def raise_nofile_limit() -> None:
    """Open files up to the hard limit: the Go runtime raises the soft RLIMIT_NOFILE to the
    hard one when nats-server starts, so it takes as many connections as the system lets it."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard  # Linux's fs.nr_open default
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _run_loop(opts: Options, warnings: tuple[str, ...], flags: Parsed | None = None) -> int:
    if opts.loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if opts.loop == "uvloop":
                print("pynats-server: uvloop is not installed", file=sys.stderr)
                return 1
        else:
            return uvloop.run(serve(opts, warnings, flags))
    return asyncio.run(serve(opts, warnings, flags))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cmd = build(argv)
    except FlagError as e:
        print(e, file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    except (UsageError, ValueError) as e:
        print(f"pynats-server: {e}", file=sys.stderr)
        return 1
    if cmd.action == "help":
        print(USAGE)
        return 0
    if cmd.action == "help_tls":
        print(tls_usage())
        return 0
    if cmd.action == "version":
        print(f"pynats-server: v{const.__version__} (nats-server v{const.NATS_VERSION} protocol)")
        return 0
    if cmd.action == "check":
        from . import conf

        digest = conf.digest(conf.parse_file_tokens(cmd.opts.config_file))
        print(f"pynats-server: configuration file {cmd.opts.config_file} is valid ({digest})", file=sys.stderr)
        return 0
    if cmd.action == "signal":
        try:
            print(send_signal(cmd.signal))
        except UsageError as e:
            print(f"pynats-server: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        return _run_loop(cmd.opts, cmd.warnings, cmd.flags)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
