"""JetStream as a whole: $JS.API.INFO (account info), the client INFO flag, the JetStream parts
of /varz and /jsz, the startup log lines, and a server without JetStream."""

from __future__ import annotations

import re

from ..context import CaseContext
from ..registry import pycase
from ._js import Js, js_client, jscase

LIMITS = {
    "max_memory": -1,
    "max_storage": -1,
    "max_streams": -1,
    "max_consumers": -1,
    "max_ack_pending": -1,
    "memory_max_stream_bytes": -1,
    "storage_max_stream_bytes": -1,
    "max_bytes_required": False,
}


@jscase(
    "jetstream.api.account_info",
    doc="$JS.API.INFO: {type, memory, storage, reserved_memory, reserved_storage, streams, "
    "consumers, limits (all -1 / false), api {level (2.14: 4), total, errors}}; storage counts "
    "file-store bytes (22+subject+payload+8, +4+headers with headers), memory memory-store "
    "bytes (subject+headers+payload+16); api.total counts the API requests before this one, "
    "api.errors those answered with an error",
    go29_missing=("reserved_memory", "reserved_storage"),
)
async def account_info(js: Js) -> None:
    r = await js.api("INFO", None, "empty")
    js.eq(r["type"], "io.nats.jetstream.api.v1.account_info_response", "type")
    js.eq(r["limits"], LIMITS, "limits")
    js.eq(
        (r["streams"], r["consumers"], r["api"]["total"], r["api"]["errors"]),
        (0, 0, 0, 0),
        "counts",
    )
    if not js.go29:
        js.eq(r["api"]["level"], 4, "api.level")
    js.ok(await js.api("STREAM.CREATE.F", {"name": "F", "subjects": ["f"]}))
    js.ok(await js.api("STREAM.CREATE.M", {"name": "M", "subjects": ["m"], "storage": "memory"}))
    js.error(await js.api("STREAM.CREATE.X", {"name": "Y"}), 400, 10056)
    js.ok(
        await js.api("CONSUMER.CREATE.F.C", {"stream_name": "F", "config": {"durable_name": "C"}})
    )
    await js.pubs([("f", "hello"), ("m", "hello"), ("m", "x" * 100)])
    r = await js.api("INFO", None, "after")
    js.eq(
        (
            r["streams"],
            r["consumers"],
            r["storage"],
            r["memory"],
            r["api"]["total"],
            r["api"]["errors"],
        ),
        (2, 1, 36, 139, 5, 1),
        "streams, consumers, storage, memory, api.total, api.errors",
    )


@jscase(
    "jetstream.api.client_info",
    doc='a JetStream server\'s INFO to clients carries "jetstream":true (and nothing else '
    "new); without -js the key is absent",
)
async def client_info(js: Js) -> None:
    js.eq(js.info.get("jetstream"), True, "INFO jetstream")
    if not js.go29:
        js.eq(js.info.get("api_lvl"), 4, "INFO api_lvl")
    keys = sorted(js.info)
    for k in (
        "server_id",
        "server_name",
        "client_id",
        "port",
        "xkey",
        "version",
        "go",
        "git_commit",
        "api_lvl",
    ):
        if k in keys:
            keys.remove(k)
    js.record("keys", keys)


@pycase(
    "jetstream.api.disabled",
    doc="without -js nothing answers $JS.API.*: a request gets the no-responders status (2.14: "
    "'NATS/1.0 503' + Nats-Subject header; 2.9: 'NATS/1.0 503' alone), and INFO has no "
    "jetstream key",
)
async def disabled(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    js = await js_client(ctx, s)
    ctx.check("jetstream" not in js.info, "no jetstream key in INFO", "absent", js.info)
    m = await js.request("$JS.API.INFO", b"")
    inbox = m.subject
    want = (
        b"HMSG %s 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n" % inbox.encode()
        if js.go29
        else b"HMSG %s 1 44 44\r\nNATS/1.0 503\r\nNats-Subject: $JS.API.INFO\r\n\r\n\r\n"
        % inbox.encode()
    )
    ctx.check(m.frame == want, "no responders", want, m.frame)


_SIZE = r"\d+(\.\d\d [KMGTPE])?B|\d+ B"


def _jetstream_log(lines: list[str]) -> list[str]:
    """The log messages from 'Starting JetStream' to the first listener line, without prefix."""
    out: list[str] = []
    started = False
    for line in lines:
        msg = re.sub(r"^\[\d+\] \S+ \S+ \[\w+\] ", "", line)
        if msg == "Starting JetStream":
            started = True
        if started:
            if msg.startswith("Listening for"):
                break
            out.append(msg)
    return out


BANNER = [
    "    _ ___ _____ ___ _____ ___ ___   _   __  __",
    " _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
    "| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
    " \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|",
    "",
    "         https://docs.nats.io/jetstream",
    "",
]


@jscase(
    "jetstream.log.startup",
    doc="the lines nats-server logs when JetStream starts (harnesses wait for them): 'Starting "
    "JetStream', the ASCII banner, '---------------- JETSTREAM ----------------', 'Strict: true' "
    "(2.14), 'Max Memory' (75% of RAM) and 'Max Storage' (75% of the free disk) as Go's "
    "friendlyBytes ('17.66 GB'), 'Store Directory: \"<-sd>/jetstream\"', 'API Level: 4' (2.14), "
    "43 dashes, 'Took <duration> to start JetStream' (2.14)",
)
async def startup_log(js: Js) -> None:
    lines = _jetstream_log(list(js.server.log))
    store = js.server.argv[js.server.argv.index("-sd") + 1]
    want = ["Starting JetStream", *BANNER, "---------------- JETSTREAM ----------------"]
    if not js.go29:
        want.append("  Strict:          true")
    want += [
        "  Max Memory:      <size>",
        "  Max Storage:     <size>",
        f'  Store Directory: "{store}/jetstream"',
    ]
    if not js.go29:
        want.append("  API Level:       4")
    want.append("-------------------------------------------")
    if not js.go29:
        want.append("Took <duration> to start JetStream")
    got = [re.sub(rf"^(  Max (?:Memory|Storage): +)({_SIZE})$", r"\1<size>", ln) for ln in lines]
    got = [
        re.sub(r"^Took \S+ to start JetStream$", "Took <duration> to start JetStream", ln)
        for ln in got
    ]
    js.eq(got, want, "JetStream startup lines")
    mem = next(ln for ln in lines if ln.startswith("  Max Memory:"))
    js.record("max_memory_line", mem)  # the same machine: the same 75% of its memory


@jscase(
    "jetstream.monitoring.varz_jsz",
    doc="/varz jetstream {config {max_memory, max_storage, store_dir (<-sd>/jetstream), "
    "sync_interval, strict}, stats {memory, storage, reserved_*, accounts, ha_assets, api}, "
    "limits} and /jsz (plain, and ?accounts=1&streams=1&consumers=1&config=1 with "
    "account_details/stream_detail/consumer_detail): key sets and values vs go214",
    http=True,
    loose=("*max_storage", "*max_memory"),
    go29_missing=(
        "*:jetstream.config.sync_interval",
        "*:jetstream.config.strict",
        "*:jetstream.limits",
        "*:config.sync_interval",
        "*:config.strict",
        "*:limits",
        "*:total",
        "*.api.level",
        "*:api.level",
        "*stream_detail[].config.*",
        "*consumer_detail[].config.*",
    ),
)
async def varz_jsz(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", "x")])
    js.ok(
        await js.api("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": {"durable_name": "D"}})
    )
    store = js.server.argv[js.server.argv.index("-sd") + 1]
    js.subst[store] = "<store>"
    v = await js.ctx.http_json(js.server, "/varz")
    js.record("varz", {"jetstream": v.get("jetstream")})
    js.eq(v["jetstream"]["config"]["store_dir"], f"{store}/jetstream", "store_dir")
    z = await js.ctx.http_json(js.server, "/jsz")
    js.subst[z["server_id"]] = "<server>"
    js.record("jsz", z)
    js.eq((z["streams"], z["consumers"], z["messages"], z["bytes"]), (1, 1, 1, 34), "jsz counts")
    z = await js.ctx.http_json(js.server, "/jsz?accounts=1&streams=1&consumers=1&config=1")
    js.record("jsz_details", z)
