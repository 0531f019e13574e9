"""JetStream pull consumers: $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> requests, the
messages and the header-only status messages they get (frames compared byte for byte), the
$JS.ACK reply subject, and what +ACK, -NAK, +WPI, +NXT, +TERM do to the consumer's state."""

from __future__ import annotations

import asyncio
import calendar
import re

from ._js import Js, Msg, jscase

ACK_RE = re.compile(
    r"\$JS\.ACK\.(?P<stream>[^.]+)\.(?P<consumer>[^.]+)\.(?P<delivered>\d+)\.(?P<sseq>\d+)"
    r"\.(?P<cseq>\d+)\.(?P<ts>\d+)\.(?P<pending>\d+)"
)


def rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of a UTC RFC 3339 time with up to 9 fraction digits."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    if not m:
        raise ValueError(text)
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + int(frac)


def ack_fields(js: Js, m: Msg) -> dict[str, str]:
    a = ACK_RE.fullmatch(m.reply)
    js.check(
        a is not None,
        "the reply subject is $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>",
        ACK_RE.pattern,
        m.reply,
    )
    assert a is not None
    return a.groupdict()


async def _setup(js: Js, n: int = 4, **cfg: object) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", f"f{i}") for i in range(n - 1)])
    await js.pubs([("bar.1", "b")], headers={"X-A": "1"})
    config = {"durable_name": "D", "ack_policy": "explicit", **cfg}
    js.ok(await js.api("CONSUMER.CREATE.S.D", {"stream_name": "S", "config": config}))


@jscase(
    "jetstream.pull.batch",
    doc="a pull of batch 2: MSG <original subject> <inbox sid> $JS.ACK.S.D.1.<sseq>.<cseq>."
    "<ts>.<pending> (ts = the stored message's time in ns, pending = messages left after it); a "
    "message with headers comes as HMSG with its headers; the body may be a plain number",
)
async def batch(js: Js) -> None:
    await _setup(js)
    msgs = await js.pull("S", "D", {"batch": 2}, 2)
    for i, m in enumerate(msgs):
        js.record_frame(f"msg{i}", m)
        f = ack_fields(js, m)
        js.eq(
            (
                m.subject,
                f["stream"],
                f["consumer"],
                f["delivered"],
                f["sseq"],
                f["cseq"],
                f["pending"],
            ),
            ("foo", "S", "D", "1", str(i + 1), str(i + 1), str(2 - i + 1)),
            "subject and ack tokens (delivered, sseq, cseq, pending)",
        )
    await js.no_msg("1", 0.1)
    stored = await js.api("STREAM.MSG.GET.S", {"seq": 1})
    f = ack_fields(js, msgs[0])
    js.eq(int(f["ts"]), rfc3339_ns(stored["message"]["time"]), "ack ts = the message's time in ns")
    r = await js.api("CONSUMER.INFO.S.D", None, "info")
    js.eq(
        (r["num_ack_pending"], r["num_pending"], r["delivered"]["consumer_seq"]),
        (2, 2, 2),
        "counts",
    )
    inbox = js.inbox()
    await js.send("$JS.API.CONSUMER.MSG.NEXT.S.D", b"2", inbox)  # a plain number is the batch
    for i in range(2):
        m = await js.next_msg("1")
        js.record_frame(f"plain{i}", m)
    js.eq((m.op, m.subject, m.hdr("X-A")), ("HMSG", "bar.1", "1"), "the message with headers")
    await js.api("CONSUMER.INFO.S.D", None, "info2")


@jscase(
    "jetstream.pull.status",
    doc="header-only statuses to the pull's inbox: no_wait on an empty consumer '404 No "
    "Messages'; expires '408 Request Timeout' + Nats-Pending-Messages/Nats-Pending-Bytes; "
    "max_bytes smaller than the message '409 Message Size Exceeds MaxBytes'; a push consumer "
    "'409 Consumer is push based'; max_batch '409 Exceeded MaxRequestBatch of 2'; no_wait with a "
    "batch larger than what is there: 2.14 '404 No Messages' after the messages, 2.9 '408 Request "
    "Timeout' with the pending count; an unknown consumer: 2.14 503 no responders, 2.9 silence",
    timeout=3,
)
async def status(js: Js) -> None:
    await _setup(js, n=2)
    msgs = await js.pull("S", "D", {"batch": 3, "no_wait": True}, 3)
    js.check(all(m.status == "" for m in msgs[:2]), "the two messages first")
    js.record_frame("no_wait_more", msgs[2], new=True)
    if js.go29:
        js.status(msgs[2], "408", "Request Timeout", "no_wait after the messages (2.9)")
        js.eq(msgs[2].hdr("Nats-Pending-Messages"), "1", "2.9: pending messages")
    else:
        js.status(msgs[2], "404", "No Messages", "no_wait after the messages")
    js.ok(
        await js.api(
            "CONSUMER.CREATE.S.MB",
            {"stream_name": "S", "config": {"durable_name": "MB", "max_batch": 2}},
        )
    )
    (m,) = await js.pull("S", "MB", {"batch": 5}, 1)
    js.record_frame("max_batch", m)
    js.status(m, "409", "Exceeded MaxRequestBatch of 2")
    (m,) = await js.pull("S", "D", {"batch": 1, "no_wait": True}, 1)
    js.record_frame("no_wait_empty", m)
    js.status(m, "404", "No Messages")
    (m,) = await js.pull("S", "D", {"batch": 2, "expires": 200000000}, 1)
    js.record_frame("expires", m)
    js.status(m, "408", "Request Timeout")
    js.eq(
        (m.hdr("Nats-Pending-Messages"), m.hdr("Nats-Pending-Bytes")), ("2", "0"), "pending headers"
    )
    (m,) = await js.pull("S", "D", {"batch": 1, "no_wait": True, "expires": 100000000}, 1)
    js.record_frame("no_wait_expires", m)
    await js.pubs([("foo", "x" * 100)])
    (m,) = await js.pull("S", "D", {"batch": 1, "max_bytes": 50}, 1)
    js.record_frame("max_bytes", m)
    js.status(m, "409", "Message Size Exceeds MaxBytes")
    js.eq(
        (m.hdr("Nats-Pending-Messages"), m.hdr("Nats-Pending-Bytes")),
        ("1", "50"),
        "pending headers",
    )
    js.ok(
        await js.api(
            "CONSUMER.CREATE.S.P",
            {"stream_name": "S", "config": {"durable_name": "P", "deliver_subject": "dlv"}},
        )
    )
    (m,) = await js.pull("S", "P", {"batch": 1}, 1)
    js.record_frame("push_based", m)
    js.status(m, "409", "Consumer is push based")
    # A consumer that does not exist: 2.14 has no subscription for it (no responders, 503);
    # 2.9 does not answer.
    await js.send("$JS.API.CONSUMER.MSG.NEXT.S.NOPE", {"batch": 1}, js.inbox())
    if js.go29:
        await js.no_msg("1", 0.2)
    else:
        m = await js.next_msg("1")
        js.record_frame("unknown_consumer", m, new=True)
        js.check(m.status == "503", "no responders", "503", m.frame)


@jscase(
    "jetstream.pull.status_frames",
    doc="the control line of a status message: 2.14 'HMSG <inbox> <sid> 28 28' (one space), 2.9 "
    "'HMSG <inbox> <sid>  28 28' (two spaces: its internal client writes an empty reply field); "
    "the other cases compare status frames with 2.14 after collapsing this difference for 2.9",
)
async def status_frames(js: Js) -> None:
    await _setup(js, n=1)
    await js.pull("S", "D", {"batch": 1}, 1)
    inbox = js.inbox()
    await js.send("$JS.API.CONSUMER.MSG.NEXT.S.D", {"batch": 1, "no_wait": True}, inbox)
    m = await js.next_msg("1")
    sep = "  " if js.go29 else " "
    js.eq(
        m.frame,
        f"HMSG {inbox} 1{sep}28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n".encode(),
        "the exact 404 frame",
    )


@jscase(
    "jetstream.pull.heartbeat",
    doc="a waiting pull with idle_heartbeat gets '100 Idle Heartbeat' status messages with "
    "Nats-Last-Consumer and Nats-Last-Stream; a message published later is delivered to it",
    timeout=3,
)
async def heartbeat(js: Js) -> None:
    await _setup(js, n=2)
    await js.pull("S", "D", {"batch": 2}, 2)
    inbox = js.inbox()
    await js.send(
        "$JS.API.CONSUMER.MSG.NEXT.S.D",
        {"batch": 1, "expires": 2000000000, "idle_heartbeat": 200000000},
        inbox,
    )
    for i in range(2):
        m = await js.next_msg("1")
        js.record_frame(f"hb{i}", m)
        js.status(m, "100", "Idle Heartbeat")
        js.eq((m.hdr("Nats-Last-Consumer"), m.hdr("Nats-Last-Stream")), ("2", "2"), "last seqs")
    await js.pubs([("foo", "late")])
    m = await js.next_msg("1")
    while m.header and m.status == "100":
        m = await js.next_msg("1")
    js.record_frame("late", m)
    js.eq(m.data, b"late", "the late message goes to the waiting pull")


@jscase(
    "jetstream.pull.acks",
    doc="+ACK (num_ack_pending down, ack_floor up), -NAK (redelivered at once: delivered token 2, "
    "num_redelivered), +WPI (still pending), +TERM (not redelivered, no longer pending), an ack "
    "with a reply gets an empty message back, +NXT acks and delivers the next message to the "
    "ack's reply subject; ack_wait expiry redelivers",
    timeout=3,
)
async def acks(js: Js) -> None:
    await _setup(js, n=6, ack_wait=500000000)
    m1, m2, m3 = await js.pull("S", "D", {"batch": 3}, 3)
    await js.send(m1.reply, "+ACK")
    await js.send(m2.reply, "-NAK")
    await js.send(m3.reply, "+WPI")
    await js.flush()
    # nats-server handles acks on its own queue, after the PONG of a flush: under load the
    # first CONSUMER.INFO can come before them, so ask again for a while (well inside ack_wait).
    for _ in range(20):
        r = await js.api("CONSUMER.INFO.S.D")
        if (r["num_ack_pending"], r["ack_floor"]["stream_seq"]) == (2, 1):
            break
        await asyncio.sleep(0.01)
    r = await js.api("CONSUMER.INFO.S.D", None, "after_ack_nak_wpi")
    js.eq((r["num_ack_pending"], r["ack_floor"]["stream_seq"]), (2, 1), "ack pending / floor")
    (m,) = await js.pull("S", "D", {"batch": 1}, 1)
    js.record_frame("redelivered", m)
    f = ack_fields(js, m)
    js.eq(
        (f["delivered"], f["sseq"], f["cseq"]), ("2", "2", "4"), "redelivery: delivered 2, new cseq"
    )
    r = await js.api("CONSUMER.INFO.S.D", None, "after_redelivery")
    js.eq(r["num_redelivered"], 1, "num_redelivered")
    ack = await js.request(m.reply, "+ACK")
    js.record_frame("ack_reply", ack)
    js.eq(ack.data, b"", "an ack with a reply gets an empty message")
    await js.send(m3.reply, "+TERM")
    await js.flush()
    r = await js.api("CONSUMER.INFO.S.D", None, "after_term")
    js.eq(r["num_ack_pending"], 0, "nothing pending after +TERM")
    (m4,) = await js.pull("S", "D", {"batch": 1}, 1)
    nxt = js.inbox()
    await js.send(m4.reply, "+NXT", nxt)
    m5 = await js.next_msg("1")
    js.record_frame("nxt", m5)
    js.eq((m5.data, ack_fields(js, m5)["sseq"]), (b"f4", "5"), "+NXT delivers the next message")
    r = await js.api("CONSUMER.INFO.S.D", None, "after_nxt")
    js.eq((r["num_ack_pending"], r["ack_floor"]["stream_seq"]), (1, 4), "m4 acked by +NXT")
    # m5 is not acked: the next pull gets seq 6, then m5 again once ack_wait (0.5 s) is over.
    m6, m = await js.pull("S", "D", {"batch": 2, "expires": 2000000000}, 2)
    js.record_frame("next", m6)
    js.record_frame("ack_wait_redelivery", m)
    js.eq(
        (ack_fields(js, m)["delivered"], ack_fields(js, m)["sseq"]),
        ("2", "5"),
        "redelivered after ack_wait",
    )
    r = await js.api("CONSUMER.INFO.S.D", None, "final")


@jscase(
    "jetstream.pull.workqueue",
    doc="a workqueue stream removes a message when it is acked: stream state goes down; ack "
    "policy none consumers are refused (10084); an interest stream keeps messages until every "
    "consumer acked",
    go29_loose=("interest_all_acked:state.first_ts",),  # 2.14: the zero time once empty
)
async def workqueue(js: Js) -> None:
    js.ok(
        await js.api("STREAM.CREATE.W", {"name": "W", "subjects": ["w"], "retention": "workqueue"})
    )
    await js.pubs([("w", str(i)) for i in range(3)])
    js.ok(
        await js.api(
            "CONSUMER.CREATE.W.C",
            {"stream_name": "W", "config": {"durable_name": "C", "ack_policy": "explicit"}},
        )
    )
    m1, m2 = await js.pull("W", "C", {"batch": 2}, 2)
    await js.request(m1.reply, "+ACK")
    r = await js.api("STREAM.INFO.W", None, "after_ack")
    js.eq((r["state"]["messages"], r["state"]["first_seq"]), (2, 2), "acked message removed")
    js.ok(
        await js.api("STREAM.CREATE.I", {"name": "I", "subjects": ["i"], "retention": "interest"})
    )
    for c in ("A", "B"):
        js.ok(
            await js.api(
                f"CONSUMER.CREATE.I.{c}",
                {"stream_name": "I", "config": {"durable_name": c, "ack_policy": "explicit"}},
            )
        )
    await js.pubs([("i", "x")])
    (a,) = await js.pull("I", "A", {"batch": 1}, 1)
    await js.request(a.reply, "+ACK")
    r = await js.api("STREAM.INFO.I", None, "interest_one_ack")
    js.eq(r["state"]["messages"], 1, "kept until B acks")
    (b,) = await js.pull("I", "B", {"batch": 1}, 1)
    await js.request(b.reply, "+ACK")
    r = await js.api("STREAM.INFO.I", None, "interest_all_acked")
    js.eq(r["state"]["messages"], 0, "removed when all acked")
