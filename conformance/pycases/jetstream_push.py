"""JetStream push consumers: delivery to deliver_subject, idle heartbeats, flow control
requests, ordered-consumer style settings, queue groups (deliver_group)."""

from __future__ import annotations

from ._js import Js, jscase


@jscase(
    "jetstream.push.delivery",
    doc="a push consumer delivers to deliver_subject as 'MSG <original subject> <sid> $JS.ACK...'"
    "; push_bound:true in the info only while someone subscribes to deliver_subject; once "
    "idle, '100 Idle Heartbeat' status messages to deliver_subject (no reply) with "
    "Nats-Last-Consumer/Nats-Last-Stream; explicit acks work as for pull consumers",
    timeout=3,
)
async def delivery(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", f"f{i}") for i in range(3)])
    r = await js.api(
        "CONSUMER.CREATE.S.U",
        {"stream_name": "S", "config": {"durable_name": "U", "deliver_subject": "nobody"}},
        "unbound",
    )
    js.check("push_bound" not in r, "no push_bound without interest", "absent", r)
    sid = await js.sub("dlv")
    r = await js.api(
        "CONSUMER.CREATE.S.P",
        {
            "stream_name": "S",
            "config": {
                "durable_name": "P",
                "deliver_subject": "dlv",
                "ack_policy": "explicit",
                "idle_heartbeat": 300000000,
            },
        },
        "create",
    )
    js.eq(r.get("push_bound"), True, "push_bound")
    msgs = [await js.next_msg(sid) for _ in range(3)]
    for i, m in enumerate(msgs):
        js.record_frame(f"msg{i}", m)
        js.eq((m.subject, m.sid, m.data), ("foo", sid, f"f{i}".encode()), "delivered message")
    hb = await js.next_msg(sid)
    js.record_frame("heartbeat", hb)
    js.status(hb, "100", "Idle Heartbeat")
    js.eq(
        (hb.reply, hb.hdr("Nats-Last-Consumer"), hb.hdr("Nats-Last-Stream")),
        ("", "3", "3"),
        "heartbeat",
    )
    for m in msgs:
        await js.send(m.reply, "+ACK")
    await js.flush()
    r = await js.api("CONSUMER.INFO.S.P", None, "info_acked")
    js.eq((r["num_ack_pending"], r["ack_floor"]["stream_seq"]), (0, 3), "all acked")
    await js.pubs([("foo", "late")])
    m = await js.next_msg(sid)
    while m.status == "100":
        m = await js.next_msg(sid)
    js.record_frame("late", m)


@jscase(
    "jetstream.push.flow_control",
    doc="flow_control + idle_heartbeat: once more than 1 MiB (half of the first 2 MiB window) is "
    "outstanding, a '100 FlowControl Request' status message with reply $JS.FC.<stream>."
    "<consumer>.<4 random characters> goes to deliver_subject; answering it (an empty message "
    "to that reply) lets delivery go on",
    timeout=4,
)
async def flow_control(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", "x" * 60000) for _ in range(20)])
    sid = await js.sub("dlv")
    js.ok(
        await js.api(
            "CONSUMER.CREATE.S.P",
            {
                "stream_name": "S",
                "config": {
                    "durable_name": "P",
                    "deliver_subject": "dlv",
                    "ack_policy": "none",
                    "flow_control": True,
                    "idle_heartbeat": 5000000000,
                },
            },
            "create",
        )
    )
    n, seen = 0, 0
    for _ in range(25):
        m = await js.next_msg(sid)
        if m.header and m.status == "100":
            js.record_frame(f"fc_after_{n}", m)
            js.status(m, "100", "FlowControl Request")
            js.check(
                m.reply.startswith("$JS.FC.S.P.") and len(m.reply) == len("$JS.FC.S.P.") + 4,
                "flow control reply subject",
                "$JS.FC.S.P.xxxx",
                m.reply,
            )
            seen += 1
            await js.send(m.reply, b"")
        else:
            n += 1
        if n == 20:
            break
    js.eq((n, seen), (20, 1), "20 messages and one flow control request")


@jscase(
    "jetstream.push.ordered",
    doc="the consumer an ordered-consumer client creates (ephemeral push, ack none, max_deliver "
    "1, flow_control, idle_heartbeat 5s, mem_storage, num_replicas 1, inactive_threshold): the "
    "config echo and in-order delivery with pending counting down in the ack subject",
)
async def ordered(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", f"f{i}") for i in range(3)])
    sid = await js.sub("dlv")
    r = await js.api(
        "CONSUMER.CREATE.S",
        {
            "stream_name": "S",
            "config": {
                "deliver_policy": "all",
                "ack_policy": "none",
                "max_deliver": 1,
                "replay_policy": "instant",
                "deliver_subject": "dlv",
                "flow_control": True,
                "idle_heartbeat": 5000000000,
                "inactive_threshold": 300000000000,
                "num_replicas": 1,
                "mem_storage": True,
            },
        },
    )
    js.alias(r["name"], "ordered")
    js.record("create", r)
    for i in range(3):
        m = await js.next_msg(sid)
        js.record_frame(f"msg{i}", m)
        js.check(m.reply.endswith(f".{2 - i}"), "pending token", f"...{2 - i}", m.reply)


@jscase(
    "jetstream.push.queue",
    doc="deliver_group: a push consumer delivering to a queue group needs the group on the "
    "subscription; each message goes to one member; the echo carries deliver_group",
)
async def queue(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", f"f{i}") for i in range(4)])
    a = await js.sub("dq", "g")
    b = await js.sub("dq", "g")
    await js.api(
        "CONSUMER.CREATE.S.Q",
        {
            "stream_name": "S",
            "config": {"durable_name": "Q", "deliver_subject": "dq", "deliver_group": "g"},
        },
        "create",
    )
    got = [await js.next_any((a, b)) for _ in range(4)]
    js.eq(sorted(m.data for m in got), [b"f0", b"f1", b"f2", b"f3"], "each message once")
    await js.no_msg(a, 0.1)
    await js.no_msg(b, 0.05)
    await js.api("CONSUMER.INFO.S.Q", None, "info")
