"""JetStream publishing and direct gets: PubAck JSON, de-duplication, the Nats-Expected-*
headers, limits with discard new, roll-ups, deny_delete/deny_purge, per-message TTL, and
$JS.API.DIRECT.GET (answers are header messages: frames are compared byte for byte)."""

from __future__ import annotations

import asyncio
import time

from ._js import Js, jscase


@jscase(
    "jetstream.publish.puback",
    doc='a publish with a reply to a stream subject answers {"stream":S,"seq":N} (no type '
    "field); Nats-Msg-Id de-duplication within duplicate_window: the same seq and "
    '"duplicate":true, nothing stored; a publish without a reply is stored silently; a subject '
    "no stream captures gets the no-responders status (503)",
)
async def puback(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.>"]}))
    r = await js.pub("foo", "one", record="first")
    js.eq(r, {"stream": "S", "seq": 1}, "PubAck")
    r = await js.pub("bar.x", "two", {"X-A": "1"}, record="headers")
    js.eq(r, {"stream": "S", "seq": 2}, "PubAck with headers")
    r = await js.pub("foo", "x", {"Nats-Msg-Id": "m1"}, record="msgid")
    js.eq(r, {"stream": "S", "seq": 3}, "PubAck with Nats-Msg-Id")
    r = await js.pub("foo", "y", {"Nats-Msg-Id": "m1"}, record="duplicate")
    js.eq(r, {"stream": "S", "seq": 3, "duplicate": True}, "duplicate")
    await js.send("foo", "no reply")
    # Stored asynchronously (the stream's own queue): wait for it, bounded.
    deadline = time.monotonic() + 2
    while (await js.api("STREAM.INFO.S"))["state"]["messages"] < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    r = await js.api("STREAM.INFO.S", None, "info")
    js.eq(
        (r["state"]["messages"], r["state"]["last_seq"]),
        (4, 4),
        "stored: 3 + the one without reply",
    )
    m = await js.request("nostream", "x")
    js.check(m.status == "503" and m.data == b"", "no stream: 503 no responders", "503", m.frame)
    # How many INFO polls the wait above took differs (2.14 stores asynchronously): the
    # inbox number is not part of what is compared.
    js.alias(m.subject, "inbox")
    js.record_frame("no_stream", m, new=True)  # 2.14 adds a Nats-Subject header


@jscase(
    "jetstream.publish.dedup_window",
    doc="duplicate_window 1s: a Nats-Msg-Id repeated inside the window is a duplicate; after the "
    "window has passed it is stored again",
    timeout=4,
)
async def dedup_window(js: Js) -> None:
    js.ok(
        await js.api(
            "STREAM.CREATE.S", {"name": "S", "subjects": ["foo"], "duplicate_window": 1000000000}
        )
    )
    js.eq(await js.pub("foo", "a", {"Nats-Msg-Id": "x"}), {"stream": "S", "seq": 1}, "first")
    r = await js.pub("foo", "a", {"Nats-Msg-Id": "x"}, record="dup")
    js.eq(r.get("duplicate"), True, "inside the window")
    deadline = time.monotonic() + 3
    while True:
        r = await js.pub("foo", "a", {"Nats-Msg-Id": "x"})
        if not r.get("duplicate"):
            break
        js.check(time.monotonic() < deadline, "still a duplicate 3 s later (window 1 s)")
        await asyncio.sleep(0.1)
    js.eq(r, {"stream": "S", "seq": 2}, "stored again after the window")


@jscase(
    "jetstream.publish.expected_headers",
    doc="Nats-Expected-Stream (10060 'expected stream does not match'), Nats-Expected-Last-Sequence "
    "(10071 'wrong last sequence: N'), Nats-Expected-Last-Subject-Sequence (10071 with the "
    "subject's last seq), Nats-Expected-Last-Msg-Id (10070 'wrong last msg ID: <id>'); the error "
    "PubAck is {error, stream, seq:0}; nothing is stored",
)
async def expected_headers(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar", "baz"]}))
    await js.pubs([("foo", "1"), ("bar", "2")])
    r = await js.pub("foo", "x", {"Nats-Expected-Stream": "Z"}, record="stream_bad")
    js.error(r, 400, 10060, "expected stream does not match")
    js.eq((r.get("stream"), r.get("seq")), ("S", 0), "error PubAck keeps stream, seq 0")
    r = await js.pub("foo", "x", {"Nats-Expected-Stream": "S"}, record="stream_ok")
    js.eq(r, {"stream": "S", "seq": 3}, "expected stream ok")
    r = await js.pub("foo", "x", {"Nats-Expected-Last-Sequence": "2"}, record="last_seq_bad")
    js.error(r, 400, 10071, "wrong last sequence: 3")
    r = await js.pub("foo", "x", {"Nats-Expected-Last-Sequence": "3"}, record="last_seq_ok")
    js.eq(r, {"stream": "S", "seq": 4}, "expected last seq ok")
    r = await js.pub("bar", "x", {"Nats-Expected-Last-Subject-Sequence": "1"}, record="subj_bad")
    js.error(r, 400, 10071, "wrong last sequence: 2")
    r = await js.pub("bar", "x", {"Nats-Expected-Last-Subject-Sequence": "2"}, record="subj_ok")
    js.eq(r, {"stream": "S", "seq": 5}, "expected last subject seq ok")
    r = await js.pub("baz", "x", {"Nats-Expected-Last-Subject-Sequence": "0"}, record="subj_zero")
    js.eq(r, {"stream": "S", "seq": 6}, "expected last subject seq 0: a subject not stored yet")
    r = await js.pub("foo", "x", {"Nats-Msg-Id": "m1"}, record="with_id")
    r = await js.pub("foo", "x", {"Nats-Expected-Last-Msg-Id": "zz"}, record="msgid_bad")
    js.error(r, 400, 10070, "wrong last msg ID: m1")
    r = await js.pub("foo", "x", {"Nats-Expected-Last-Msg-Id": "m1"}, record="msgid_ok")
    js.ok(r, "expected last msg id ok")
    r = await js.pub("foo", "x", {"Nats-Expected-Last-Sequence": "abc"}, record="last_seq_nan")
    r = await js.api("STREAM.INFO.S", None, "info")


@jscase(
    "jetstream.publish.limits",
    doc="max_msg_size (10054 'message size exceeds maximum allowed', code 400); discard new with "
    "max_msgs (503 10077 'maximum messages exceeded'), max_bytes ('maximum bytes exceeded'), "
    "max_msgs_per_subject + discard_new_per_subject ('maximum messages per subject exceeded'); "
    "discard old drops the oldest",
)
async def limits(js: Js) -> None:
    js.ok(
        await js.api(
            "STREAM.CREATE.M",
            {"name": "M", "subjects": ["m"], "max_msg_size": 10, "max_msgs": 2, "discard": "new"},
        )
    )
    r = await js.pub("m", "x" * 11, record="too_big")
    js.error(r, 400, 10054, "message size exceeds maximum allowed")
    js.eq(await js.pub("m", "x" * 10), {"stream": "M", "seq": 1}, "10 bytes fit")
    await js.pubs([("m", "x")])
    r = await js.pub("m", "x", record="max_msgs")
    js.error(r, 503, 10077, "maximum messages exceeded")
    js.ok(
        await js.api(
            "STREAM.CREATE.MB",
            {"name": "MB", "subjects": ["mb"], "max_bytes": 100, "discard": "new"},
        )
    )
    await js.pubs([("mb", "x" * 50)])
    r = await js.pub("mb", "x" * 50, record="max_bytes")
    js.error(r, 503, 10077, "maximum bytes exceeded")
    js.ok(
        await js.api(
            "STREAM.CREATE.P",
            {
                "name": "P",
                "subjects": ["p.*"],
                "max_msgs_per_subject": 1,
                "discard": "new",
                "discard_new_per_subject": True,
            },
        )
    )
    await js.pubs([("p.a", "x")])
    r = await js.pub("p.a", "x", record="per_subject")
    js.error(r, 503, 10077, "maximum messages per subject exceeded")
    js.eq(await js.pub("p.b", "x"), {"stream": "P", "seq": 2}, "another subject fits")
    # discard new with max_msgs_per_subject but without discard_new_per_subject: the
    # per-subject limit still drops the subject's oldest message.
    js.ok(
        await js.api(
            "STREAM.CREATE.PS",
            {"name": "PS", "subjects": ["ps"], "max_msgs_per_subject": 1, "discard": "new"},
        )
    )
    await js.pubs([("ps", "1")])
    js.eq(
        await js.pub("ps", "2", record="per_subject_no_dnps"), {"stream": "PS", "seq": 2}, "stored"
    )
    r = await js.api("STREAM.INFO.PS", None, "per_subject_no_dnps_info")
    js.eq((r["state"]["messages"], r["state"]["first_seq"]), (1, 2), "the older one dropped")
    js.ok(await js.api("STREAM.CREATE.O", {"name": "O", "subjects": ["o"], "max_msgs": 2}))
    await js.pubs([("o", str(i)) for i in range(5)])
    r = await js.api("STREAM.INFO.O", None, "discard_old")
    js.eq((r["state"]["first_seq"], r["state"]["messages"]), (4, 2), "discard old keeps the newest")


@jscase(
    "jetstream.publish.rollup",
    doc="Nats-Rollup: sub keeps only the new message of its subject, all only the new message; "
    "refused (500 10111 'rollup not permitted') without allow_rollup_hdrs; an unknown value is "
    "10111 'rollup value invalid: \"xx\"' in 2.14 (2.9 does not answer)",
)
async def rollup(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.N", {"name": "N", "subjects": ["n"]}))
    r = await js.pub("n", "x", {"Nats-Rollup": "sub"}, record="refused")
    js.error(r, 500, 10111, "rollup not permitted")
    js.ok(
        await js.api(
            "STREAM.CREATE.R", {"name": "R", "subjects": ["r.>"], "allow_rollup_hdrs": True}
        )
    )
    await js.pubs([("r.a", f"a{i}") for i in range(3)] + [("r.b", "b")])
    r = await js.pub("r.a", "roll", {"Nats-Rollup": "sub"}, record="sub")
    js.eq(r, {"stream": "R", "seq": 5}, "rollup sub PubAck")
    r = await js.api("STREAM.INFO.R", None, "after_sub")
    js.eq((r["state"]["messages"], r["state"]["first_seq"]), (2, 4), "r.b and the roll-up remain")
    if not js.go29:
        r = await js.pub("r.a", "roll", {"Nats-Rollup": "xx"}, record="invalid", new=True)
        js.error(r, 500, 10111, 'rollup value invalid: "xx"')
    r = await js.pub("r.c", "all", {"Nats-Rollup": "all"}, record="all")
    r = await js.api("STREAM.INFO.R", None, "after_all")
    js.eq(r["state"]["messages"], 1, "only the roll-up remains")


@jscase(
    "jetstream.publish.ttl",
    doc="per-message TTL (2.11+): Nats-TTL refused without allow_msg_ttl (400 10166 'per-message "
    "TTL is disabled'); invalid values (abc, 500ms, 0) 10165 'invalid per-message TTL'; a "
    "message with Nats-TTL: 1s goes away after about 1 s, 'never' stays; allow_msg_ttl can not "
    "be switched off (10052)",
    targets="!go29",
    timeout=4,
)
async def ttl(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.N", {"name": "N", "subjects": ["n"]}))
    r = await js.pub("n", "x", {"Nats-TTL": "1s"}, record="disabled")
    js.error(r, 400, 10166, "per-message TTL is disabled")
    r = await js.api(
        "STREAM.CREATE.T", {"name": "T", "subjects": ["t.>"], "allow_msg_ttl": True}, "create"
    )
    js.eq(r["config"]["metadata"]["_nats.req.level"], "1", "a TTL stream needs API level 1")
    for bad in ("abc", "500ms", "0"):
        r = await js.pub("t.c", "x", {"Nats-TTL": bad}, record=f"invalid_{bad}")
        js.error(r, 400, 10165, "invalid per-message TTL")
    js.eq(await js.pub("t.a", "x", {"Nats-TTL": "1s"}), {"stream": "T", "seq": 1}, "1s")
    js.eq(await js.pub("t.b", "x", {"Nats-TTL": "never"}), {"stream": "T", "seq": 2}, "never")
    js.eq(await js.pub("t.d", "x", {"Nats-TTL": "2"}), {"stream": "T", "seq": 3}, "2 (seconds)")
    r = await js.api("STREAM.MSG.GET.T", {"seq": 1}, "get")
    deadline = time.monotonic() + 3.5
    while True:
        st = (await js.api("STREAM.INFO.T"))["state"]
        if st["first_seq"] == 2:
            break
        js.check(time.monotonic() < deadline, "the 1s message still there after 3.5 s", 2, st)
        await asyncio.sleep(0.1)
    r = await js.api(
        "STREAM.UPDATE.T", {"name": "T", "subjects": ["t.>"], "allow_msg_ttl": False}, "disable"
    )
    js.error(r, 500, 10052, "message TTL status can not be disabled")


@jscase(
    "jetstream.direct.get",
    doc="DIRECT.GET (allow_direct): by seq, last_by_subj, next_by_subj, and "
    "$JS.API.DIRECT.GET.<stream>.<subject>: the stored message with its own headers first, then "
    "Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Time-Stamp; header-only statuses 404 Message "
    "Not Found, 408 Empty Request, 408 Malformed Request",
)
async def direct_get(js: Js) -> None:
    js.ok(
        await js.api(
            "STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"], "allow_direct": True}
        )
    )
    await js.pubs([("foo", f"f{i}") for i in range(3)])
    await js.pubs([(f"bar.{i}", f"b{i}") for i in range(3)], headers={"X-I": "v"})
    for label, subject, body in (
        ("seq", "$JS.API.DIRECT.GET.S", {"seq": 1}),
        ("seq_headers", "$JS.API.DIRECT.GET.S", {"seq": 4}),
        ("last_by_subj", "$JS.API.DIRECT.GET.S", {"last_by_subj": "foo"}),
        ("next_by_subj", "$JS.API.DIRECT.GET.S", {"next_by_subj": "bar.*", "seq": 2}),
        ("subject_form", "$JS.API.DIRECT.GET.S.bar.1", None),
        ("subject_form_none", "$JS.API.DIRECT.GET.S.nope", None),
        ("not_found", "$JS.API.DIRECT.GET.S", {"seq": 99}),
        ("empty_object", "$JS.API.DIRECT.GET.S", {}),
        ("empty_body", "$JS.API.DIRECT.GET.S", None),
        ("malformed", "$JS.API.DIRECT.GET.S", b"{x"),
    ):
        m = await js.request(subject, body)
        js.record_frame(label, m)
        if label == "seq":
            js.eq(
                m.header.decode().split("\r\n")[:4],
                ["NATS/1.0", "Nats-Stream: S", "Nats-Subject: foo", "Nats-Sequence: 1"],
                "direct get headers",
            )
            js.eq(m.data, b"f0", "payload")
        if label == "not_found":
            js.status(m, "404", "Message Not Found")
        if label == "empty_body":
            js.status(m, "408", "Empty Request")
        if label == "malformed":
            js.status(m, "408", "Malformed Request")
    js.ok(await js.api("STREAM.CREATE.ND", {"name": "ND", "subjects": ["nd"]}))
    await js.pubs([("nd", "x")])
    await js.send("$JS.API.DIRECT.GET.ND", {"seq": 1}, js.inbox())
    if js.go29:
        await js.no_msg("1", 0.2)  # 2.9: no answer at all
        return
    m = await js.next_msg("1")
    js.record_frame("not_allowed", m, new=True)
    js.check(m.status == "503", "no direct get without allow_direct: no responders", "503", m.frame)


@jscase(
    "jetstream.direct.batch",
    doc="DIRECT.GET batch and multi_last (2.11+): each message gets Nats-Num-Pending and "
    "Nats-Last-Sequence; the end is a '204 EOB' status with Nats-Num-Pending, Nats-Last-Sequence "
    "(and Nats-UpTo-Sequence for multi_last)",
    targets="!go29",
)
async def direct_batch(js: Js) -> None:
    js.ok(
        await js.api(
            "STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"], "allow_direct": True}
        )
    )
    await js.pubs([("foo", f"f{i}") for i in range(3)] + [(f"bar.{i}", "b") for i in range(3)])
    inbox = js.inbox()
    await js.send("$JS.API.DIRECT.GET.S", {"seq": 1, "batch": 3}, inbox)
    for i in range(4):
        m = await js.next_msg("1")
        js.record_frame(f"batch{i}", m)
    js.status(m, "204", "EOB", "end of batch")
    js.eq(m.hdr("Nats-Last-Sequence"), "3", "EOB Nats-Last-Sequence")
    inbox = js.inbox()
    await js.send("$JS.API.DIRECT.GET.S", {"multi_last": ["bar.*", "foo"]}, inbox)
    for i in range(5):
        m = await js.next_msg("1")
        js.record_frame(f"multi_last{i}", m)
    js.status(m, "204", "EOB", "end of multi_last")
    js.eq(m.hdr("Nats-UpTo-Sequence"), "6", "Nats-UpTo-Sequence")
    inbox = js.inbox()
    await js.send("$JS.API.DIRECT.GET.S", {"seq": 1, "batch": 2, "next_by_subj": "bar.*"}, inbox)
    for i in range(3):
        js.record_frame(f"batch_subject{i}", await js.next_msg("1"))
