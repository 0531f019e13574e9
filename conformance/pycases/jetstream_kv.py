"""Key-value and object store conventions: the streams KV_<bucket> and OBJ_<bucket> as nats-py
creates them (the exact request bytes nats-py 2.16 sends), a KV put/get/delete/purge sequence
at the wire level, and nats-py's KV and object store end to end."""

from __future__ import annotations

import contextlib
from typing import Any

import nats
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from ..conn import Mismatch
from ._js import Js, jscase

# What nats-py 2.16 sends for `create_key_value(bucket="b", history=3)` and
# `create_object_store(bucket="o")` (captured on the wire).
KV_CREATE = (
    b'{"name": "KV_b", "subjects": ["$KV.b.>"], "max_consumers": -1, "max_msgs": -1, '
    b'"discard": "new", "discard_new_per_subject": false, "max_msgs_per_subject": 3, '
    b'"num_replicas": 1, "no_ack": false, "duplicate_window": 120000000000, "sealed": false, '
    b'"deny_delete": true, "deny_purge": false, "allow_rollup_hdrs": true, '
    b'"allow_msg_ttl": true, "max_age": 0}'
)
OBJ_CREATE = (
    b'{"name": "OBJ_o", "subjects": ["$O.o.C.>", "$O.o.M.>"], "max_consumers": 0, '
    b'"discard": "new", "discard_new_per_subject": false, "max_msgs_per_subject": -1, '
    b'"max_msg_size": -1, "num_replicas": 1, "no_ack": false, "duplicate_window": 0, '
    b'"sealed": false, "deny_delete": false, "deny_purge": false, "allow_rollup_hdrs": true, '
    b'"allow_direct": true, "max_age": 0}'
)


@jscase(
    "jetstream.kv.bucket_streams",
    doc="STREAM.CREATE.KV_b and STREAM.CREATE.OBJ_o with nats-py's exact request bodies: the "
    'echo (KV: subjects ["$KV.b.>"] written "$KV.b.\\u003e" as Go escapes \'>\', '
    "max_msgs_per_subject = history, discard new, deny_delete, allow_rollup_hdrs; allow_msg_ttl "
    "raises _nats.req.level to 1; OBJ: max_consumers 0 becomes -1, duplicate_window 0 becomes 2m)",
)
async def bucket_streams(js: Js) -> None:
    m = await js.request("$JS.API.STREAM.CREATE.KV_b", KV_CREATE)
    js.record_json("kv", m)
    r = js.ok(m.json(), "KV stream")
    js.check(
        b'"subjects":["$KV.b.\\u003e"]' in m.data,
        "Go escapes > as \\u003e",
        "$KV.b.\\u003e",
        m.data[:200],
    )
    js.eq(
        (r["config"]["max_msgs_per_subject"], r["config"]["discard"], r["config"]["deny_delete"]),
        (3, "new", True),
        "KV config",
    )
    m = await js.request("$JS.API.STREAM.CREATE.OBJ_o", OBJ_CREATE)
    js.record_json("obj", m)
    r = js.ok(m.json(), "OBJ stream")
    js.eq(
        (
            r["config"]["max_consumers"],
            r["config"]["duplicate_window"],
            r["config"]["allow_direct"],
        ),
        (-1, 120000000000, True),
        "OBJ config",
    )
    await js.api("STREAM.INFO.KV_b", None, "kv_info")


@jscase(
    "jetstream.kv.wire_ops",
    doc="KV at the wire level: put = PUB $KV.b.<key> with a reply (PubAck); get = MSG.GET "
    "last_by_subj; delete = a message with 'KV-Operation: DEL'; purge = 'KV-Operation: PURGE' + "
    "'Nats-Rollup: sub' (older revisions go); create = Nats-Expected-Last-Subject-Sequence: 0 "
    "(10071 when the key exists); update with the expected revision; history limited to "
    "max_msgs_per_subject; keys = a headers_only last_per_subject consumer (Nats-Msg-Size)",
)
async def wire_ops(js: Js) -> None:
    js.ok((await js.request("$JS.API.STREAM.CREATE.KV_b", KV_CREATE)).json())
    for i in range(4):
        r = await js.pub("$KV.b.k", f"v{i}", record=f"put{i}")
        js.eq(r, {"stream": "KV_b", "seq": i + 1}, "put")
    r = await js.api("STREAM.MSG.GET.KV_b", {"last_by_subj": "$KV.b.k"}, "get")
    js.eq((r["message"]["seq"], r["message"]["data"]), (4, "djM="), "last revision")
    r = await js.api("STREAM.INFO.KV_b", None, "history")
    js.eq(r["state"]["messages"], 3, "history 3")
    r = await js.pub("$KV.b.n", "x", {"Nats-Expected-Last-Subject-Sequence": "0"}, record="create")
    js.eq(r, {"stream": "KV_b", "seq": 5}, "create")
    r = await js.pub(
        "$KV.b.n", "y", {"Nats-Expected-Last-Subject-Sequence": "0"}, record="create_exists"
    )
    js.error(r, 400, 10071, "wrong last sequence: 5")
    r = await js.pub("$KV.b.n", "z", {"Nats-Expected-Last-Subject-Sequence": "5"}, record="update")
    js.eq(r, {"stream": "KV_b", "seq": 6}, "update")
    r = await js.pub("$KV.b.k", b"", {"KV-Operation": "DEL"}, record="delete")
    js.eq(r, {"stream": "KV_b", "seq": 7}, "delete marker stored")
    r = await js.api("STREAM.MSG.GET.KV_b", {"last_by_subj": "$KV.b.k"}, "get_deleted")
    js.eq(
        r["message"]["hdrs"],
        "TkFUUy8xLjANCktWLU9wZXJhdGlvbjogREVMDQoNCg==",
        "the DEL marker's headers",
    )
    r = await js.pub(
        "$KV.b.k", b"", [("KV-Operation", "PURGE"), ("Nats-Rollup", "sub")], record="purge"
    )
    js.eq(r, {"stream": "KV_b", "seq": 8}, "purge marker")
    r = await js.api("STREAM.INFO.KV_b", None, "after_purge")
    js.eq(r["state"]["messages"], 3, "n's two revisions and k's purge marker")
    sid = await js.sub("keys.dlv")
    r = await js.api(
        "CONSUMER.CREATE.KV_b",
        {
            "stream_name": "KV_b",
            "config": {
                "deliver_policy": "last_per_subject",
                "ack_policy": "none",
                "max_deliver": 1,
                "filter_subject": "$KV.b.>",
                "replay_policy": "instant",
                "deliver_subject": "keys.dlv",
                "flow_control": True,
                "idle_heartbeat": 5000000000,
                "headers_only": True,
                "mem_storage": True,
                "num_replicas": 1,
            },
        },
    )
    js.alias(r["name"], "keys")
    js.record("keys_consumer", r)
    for i in range(2):
        m = await js.next_msg(sid)
        js.record_frame(f"keys{i}", m)
        js.check(
            m.hdr("Nats-Msg-Size") is not None, "headers_only: Nats-Msg-Size", "present", m.frame
        )
        js.eq(m.data, b"", "headers_only: no payload")


async def _quiet(_e: BaseException) -> None:
    """nats-py prints errors by default; the case checks them itself."""


@jscase(
    "jetstream.kv.natspy",
    doc="nats-py end to end: create_key_value, put/get/update/create conflict/delete/purge/keys/"
    "history, and create_object_store put/get",
    timeout=4,
)
async def natspy(js: Js) -> None:
    nc = await nats.connect(
        servers=[js.server.client_url], connect_timeout=3, allow_reconnect=False, error_cb=_quiet
    )
    try:
        j = nc.jetstream(timeout=3)
        kv = await j.create_key_value(bucket="b", history=3)
        js.eq(await kv.put("k", b"v1"), 1, "revision 1")
        js.eq(await kv.put("k", b"v2"), 2, "revision 2")
        e = await kv.get("k")
        js.eq((e.value, e.revision), (b"v2", 2), "get")
        js.eq(await kv.create("n", b"x"), 3, "create")
        try:
            await kv.create("n", b"y")
            js.check(False, "create of an existing key must fail")
        except KeyWrongLastSequenceError:
            pass
        js.eq(await kv.update("n", b"z", last=3), 4, "update")
        await kv.delete("k")
        try:
            await kv.get("k")
            js.check(False, "get of a deleted key must fail")
        except KeyNotFoundError:
            pass
        js.eq(sorted(await kv.keys()), ["n"], "keys")
        hist: list[Any] = await kv.history("n")
        js.eq([h.value for h in hist], [b"x", b"z"], "history")
        await kv.purge("n")
        with contextlib.suppress(KeyNotFoundError):
            await kv.get("n")
        status = await kv.status()
        js.eq(status.bucket, "b", "status bucket")
        ob = await j.create_object_store(bucket="o")
        info = await ob.put("file", b"data" * 1000)
        js.eq((info.name, info.size), ("file", 4000), "object info")
        res = await ob.get("file")
        js.eq(res.data, b"data" * 1000, "object data")
    except Mismatch:
        raise
    except Exception as exc:  # noqa: BLE001 - a nats-py error is the finding
        raise Mismatch(f"[{js.name}] nats-py: {exc!r}") from None
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
