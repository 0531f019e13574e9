"""JetStream consumers: $JS.API.CONSUMER.* (create in its three subject forms, the config
nats-server echoes with its defaults, filters, deliver and ack policies, info, names, list,
delete, errors, pause/resume)."""

from __future__ import annotations

from ._js import Js, jscase


async def _stream(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", f"f{i}") for i in range(3)] + [(f"bar.{i}", "b") for i in range(2)])


@jscase(
    "jetstream.consumer.create_forms",
    doc="CONSUMER.CREATE.<stream>.<name> (durable_name or name), CONSUMER.CREATE.<stream>."
    "<name>.<filter>, CONSUMER.CREATE.<stream> (ephemeral: a random 8-character name, "
    "inactive_threshold 5s) and the legacy CONSUMER.DURABLE.CREATE.<stream>.<durable>: the "
    "consumer info nats-server answers (config with its defaults: ack_wait 30s, max_deliver -1, "
    "max_waiting 512, max_ack_pending 1000 with explicit acks, num_replicas 0), num_pending",
)
async def create_forms(js: Js) -> None:
    await _stream(js)
    r = await js.api(
        "CONSUMER.CREATE.S.D",
        {"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "explicit"}},
        "durable",
    )
    js.eq(r["type"], "io.nats.jetstream.api.v1.consumer_create_response", "type")
    want = {
        "durable_name": "D",
        "name": "D",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": 30000000000,
        "max_deliver": -1,
        "replay_policy": "instant",
        "max_waiting": 512,
        "max_ack_pending": 1000,
        "num_replicas": 0,
    }
    js.eq({k: r["config"].get(k) for k in want}, want, "durable config defaults")
    js.eq((r["num_pending"], r["stream_name"], r["name"]), (5, "S", "D"), "num_pending/names")
    r = await js.api(
        "CONSUMER.DURABLE.CREATE.S.L",
        {
            "stream_name": "S",
            "config": {"durable_name": "L", "ack_policy": "explicit", "deliver_policy": "last"},
        },
        "legacy",
    )
    js.eq(r["delivered"]["stream_seq"], 4, "deliver last: delivered.stream_seq = last-1")
    r = await js.api(
        "CONSUMER.CREATE.S",
        {"stream_name": "S", "config": {"ack_policy": "none", "deliver_policy": "new"}},
    )
    js.alias(r["name"], "ephemeral")
    js.check(
        len(r["name"]) == 8 and r["name"].isalnum(), "ephemeral name: 8 characters", "8", r["name"]
    )
    js.record("ephemeral", r)
    r = await js.api(
        "CONSUMER.CREATE.S.N",
        {
            "stream_name": "S",
            "config": {"name": "N", "ack_policy": "explicit", "filter_subject": "bar.*"},
        },
        "named",
    )
    js.eq(
        r["config"].get("inactive_threshold"), 5000000000, "a named (not durable) consumer expires"
    )
    r = await js.api(
        "CONSUMER.CREATE.S.NF.bar.1",
        {"stream_name": "S", "config": {"name": "NF", "filter_subject": "bar.1"}},
        "with_filter",
    )
    js.eq(r["num_pending"], 1, "filtered num_pending")
    # The name in the subject wins over a different `name` in the config (no error).
    r = await js.api(
        "CONSUMER.CREATE.S.X", {"stream_name": "S", "config": {"name": "Y"}}, "name_from_subject"
    )
    js.eq((r["name"], r["config"]["name"]), ("X", "X"), "the subject's name")
    # The same config again returns the existing consumer.
    await js.api(
        "CONSUMER.CREATE.S.D",
        {"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "explicit"}},
        "again",
    )
    for policy, extra in (
        ("by_start_sequence", {"opt_start_seq": 3}),
        ("by_start_time", {"opt_start_time": "2000-01-01T00:00:00Z"}),
        ("last_per_subject", {"filter_subject": "bar.*"}),
    ):
        cfg = {"durable_name": f"P{len(policy)}", "deliver_policy": policy, **extra}
        await js.api(
            f"CONSUMER.CREATE.S.P{len(policy)}",
            {"stream_name": "S", "config": cfg},
            f"deliver_{policy}",
        )
    await js.api(
        "CONSUMER.CREATE.S.AA",
        {
            "stream_name": "S",
            "config": {
                "durable_name": "AA",
                "ack_policy": "all",
                "max_deliver": 3,
                "backoff": [1000000000, 2000000000],
                "ack_wait": 1000000000,
            },
        },
        "ack_all_backoff",
    )


@jscase(
    "jetstream.consumer.multi_filter",
    doc="filter_subjects (2.10+): several filters, num_pending over all of them; refused: "
    "filter_subject and filter_subjects together (10136), overlapping filters (10138), several "
    "filters with the CONSUMER.CREATE.<stream>.<name>.<filter> form (10137)",
    targets="!go29",
)
async def multi_filter(js: Js) -> None:
    await _stream(js)
    r = await js.api(
        "CONSUMER.CREATE.S.MF",
        {"stream_name": "S", "config": {"name": "MF", "filter_subjects": ["bar.1", "foo"]}},
        "create",
    )
    js.eq(r["config"].get("filter_subjects"), ["bar.1", "foo"], "filter_subjects echoed")
    js.eq(r["num_pending"], 4, "num_pending over both filters")
    r = await js.api(
        "CONSUMER.CREATE.S.BOTH",
        {
            "stream_name": "S",
            "config": {"name": "BOTH", "filter_subject": "foo", "filter_subjects": ["bar.1"]},
        },
        "both",
    )
    js.error(r, 400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified")
    r = await js.api(
        "CONSUMER.CREATE.S.OV",
        {"stream_name": "S", "config": {"name": "OV", "filter_subjects": ["bar.*", "bar.1"]}},
        "overlapping",
    )
    js.error(r, 400, 10138, "consumer subject filters cannot overlap")
    r = await js.api(
        "CONSUMER.CREATE.S.FS.foo",
        {"stream_name": "S", "config": {"name": "FS", "filter_subjects": ["foo", "bar.1"]}},
        "subject_form_multi",
    )
    js.error(r, 400, 10137, "consumer with multiple subject filters cannot use subject based API")


@jscase(
    "jetstream.consumer.errors",
    doc="CONSUMER.CREATE refusals: durable_name different from the subject's name (10017), a "
    "stream name mismatch (10056), unknown stream (10059), deliver by_start_sequence without "
    "opt_start_seq (10094), an enum value (10025), changing ack policy (500 10012 'ack policy can "
    "not be updated'), action create on an existing consumer (10148) / update on a missing one "
    "(10149), a filter subject not matching the create subject (10131, 2.14), workqueue: "
    "overlapping filters 10100 and ack none 10084; push with flow control but no heartbeat 10108",
    go29_loose=("bad_enum:error.description", "wq_ack_none:error.description"),
)
async def errors(js: Js) -> None:
    await _stream(js)
    js.ok(
        await js.api(
            "CONSUMER.CREATE.S.D",
            {"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "explicit"}},
        )
    )
    r = await js.api(
        "CONSUMER.CREATE.S.X",
        {"stream_name": "S", "config": {"durable_name": "Y"}},
        "durable_mismatch",
    )
    js.error(r, 400, 10017, "consumer name in subject does not match durable name in request")
    r = await js.api(
        "CONSUMER.CREATE.S.X", {"stream_name": "T", "config": {"name": "X"}}, "stream_mismatch"
    )
    js.error(r, 400, 10056, "stream name in subject does not match request")
    r = await js.api(
        "CONSUMER.CREATE.T.X", {"stream_name": "T", "config": {"name": "X"}}, "no_stream"
    )
    js.error(r, 404, 10059, "stream not found")
    r = await js.api(
        "CONSUMER.CREATE.S.X",
        {"stream_name": "S", "config": {"name": "X", "deliver_policy": "by_start_sequence"}},
        "no_start_seq",
    )
    js.error(
        r,
        400,
        10094,
        "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
    )
    r = await js.api(
        "CONSUMER.CREATE.S.X",
        {"stream_name": "S", "config": {"name": "X", "ack_policy": "bogus"}},
        "bad_enum",
    )
    js.error(r, 400, 10025, None)
    r = await js.api(
        "CONSUMER.CREATE.S.D",
        {"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "none"}},
        "ack_change",
    )
    js.error(r, 500, 10012, "ack policy can not be updated")
    r = await js.api(
        "CONSUMER.CREATE.S.FC",
        {
            "stream_name": "S",
            "config": {"durable_name": "FC", "deliver_subject": "d", "flow_control": True},
        },
        "fc_without_hb",
    )
    js.error(r, 400, 10108, "consumer with flow control also needs heartbeats")
    js.ok(
        await js.api(
            "STREAM.CREATE.W", {"name": "W", "subjects": ["w.*"], "retention": "workqueue"}
        )
    )
    js.ok(
        await js.api(
            "CONSUMER.CREATE.W.A",
            {
                "stream_name": "W",
                "config": {"durable_name": "A", "filter_subject": "w.a", "ack_policy": "explicit"},
            },
        )
    )
    r = await js.api(
        "CONSUMER.CREATE.W.B",
        {
            "stream_name": "W",
            "config": {"durable_name": "B", "filter_subject": "w.*", "ack_policy": "explicit"},
        },
        "wq_overlap",
    )
    js.error(r, 400, 10100, "filtered consumer not unique on workqueue stream")
    r = await js.api(
        "CONSUMER.CREATE.W.C",
        {
            "stream_name": "W",
            "config": {"durable_name": "C", "filter_subject": "w.c", "ack_policy": "none"},
        },
        "wq_ack_none",
    )
    if js.go29:
        js.error(r, 400, 10084, "consumer in pull mode requires ack policy")
    else:
        js.error(
            r, 400, 10084, "consumer in pull mode requires explicit ack policy on workqueue stream"
        )
    if js.go29:
        return
    r = await js.api(
        "CONSUMER.CREATE.S.D",
        {
            "stream_name": "S",
            "action": "create",
            "config": {"durable_name": "D", "ack_policy": "all"},
        },
        "action_create_exists",
        new=True,
    )
    js.error(r, 400, 10148, "consumer already exists")
    r = await js.api(
        "CONSUMER.CREATE.S.Q",
        {"stream_name": "S", "action": "update", "config": {"durable_name": "Q"}},
        "action_update_missing",
        new=True,
    )
    js.error(r, 400, 10149, "consumer does not exist")
    r = await js.api(
        "CONSUMER.CREATE.S.X.foo",
        {"stream_name": "S", "config": {"name": "X", "filter_subject": "bar.1"}},
        "filter_mismatch",
        new=True,
    )
    js.error(
        r, 400, 10131, "Consumer create request did not match filtered subject from create subject"
    )
    # 2.14 accepts a filter that matches none of the stream's subjects (2.9: 10093).
    r = await js.api(
        "CONSUMER.CREATE.S.NM",
        {"stream_name": "S", "config": {"name": "NM", "filter_subject": "nope"}},
        "filter_outside_stream",
        new=True,
    )
    js.eq(r.get("num_pending"), 0, "no messages for that filter")


@jscase(
    "jetstream.consumer.info_names_list_delete",
    doc="CONSUMER.INFO (10014 'consumer not found'), CONSUMER.NAMES (limit 1024, sorted), "
    "CONSUMER.LIST (limit 256; metadata only {_nats.req.level} in 2.14), CONSUMER.DELETE "
    "({success:true}, then 10014); stream info counts consumers",
)
async def info_names_list_delete(js: Js) -> None:
    await _stream(js)
    for name in ("B", "A", "C"):
        js.ok(
            await js.api(
                f"CONSUMER.CREATE.S.{name}",
                {"stream_name": "S", "config": {"durable_name": name, "ack_policy": "explicit"}},
            )
        )
    r = await js.api("CONSUMER.INFO.S.A", None, "info")
    js.eq(r["type"], "io.nats.jetstream.api.v1.consumer_info_response", "type")
    r = await js.api("CONSUMER.INFO.S.ZZ", None, "info_missing")
    js.error(r, 404, 10014, "consumer not found")
    r = await js.api("CONSUMER.INFO.T.A", None, "info_no_stream")
    js.error(r, 404, 10059, "stream not found")
    r = await js.api("CONSUMER.NAMES.S", None, "names")
    js.eq(r["consumers"], ["A", "B", "C"], "names sorted")
    js.eq((r["total"], r["offset"], r["limit"]), (3, 0, 1024), "total/offset/limit")
    r = await js.api("CONSUMER.LIST.S", None, "list")
    js.eq((r["total"], r["limit"]), (3, 256), "list total/limit")
    r = await js.api("CONSUMER.DELETE.S.B", None, "delete")
    js.eq(
        r, {"type": "io.nats.jetstream.api.v1.consumer_delete_response", "success": True}, "delete"
    )
    r = await js.api("CONSUMER.DELETE.S.B", None, "delete_again")
    js.error(r, 404, 10014, "consumer not found")
    r = await js.api("STREAM.INFO.S", None, "stream_info")
    js.eq(r["state"]["consumer_count"], 2, "consumer_count")
    await js.api("CONSUMER.NAMES.S", None, "names_after")


@jscase(
    "jetstream.consumer.pause",
    doc="CONSUMER.PAUSE (2.11+): {paused, pause_until, pause_remaining}; consumer info then has "
    "config.pause_until, paused, pause_remaining and metadata _nats.req.level '1'; an empty "
    "request resumes ({paused:false, pause_until:'0001-01-01T00:00:00Z'}); pull requests are "
    "held while paused",
    targets="!go29",
    loose=("pause_remaining",),
)
async def pause(js: Js) -> None:
    await _stream(js)
    js.ok(
        await js.api(
            "CONSUMER.CREATE.S.D",
            {"stream_name": "S", "config": {"durable_name": "D", "ack_policy": "explicit"}},
        )
    )
    r = await js.api("CONSUMER.PAUSE.S.D", {"pause_until": "2099-01-01T00:00:00Z"}, "pause")
    js.eq(
        (r["type"], r["paused"], r["pause_until"]),
        ("io.nats.jetstream.api.v1.consumer_pause_response", True, "2099-01-01T00:00:00Z"),
        "pause answer",
    )
    r = await js.api("CONSUMER.INFO.S.D", None, "info_paused")
    js.eq(r["paused"], True, "paused")
    js.eq(r["config"]["metadata"]["_nats.req.level"], "1", "paused needs API level 1")
    inbox = js.inbox()
    await js.send("$JS.API.CONSUMER.MSG.NEXT.S.D", {"batch": 1, "expires": 300000000}, inbox)
    m = await js.next_msg("1")
    js.record_frame("pull_while_paused", m)
    r = await js.api("CONSUMER.PAUSE.S.D", {}, "resume")
    js.eq(
        r,
        {
            "type": "io.nats.jetstream.api.v1.consumer_pause_response",
            "paused": False,
            "pause_until": "0001-01-01T00:00:00Z",
        },
        "resume",
    )
    await js.api("CONSUMER.INFO.S.D", None, "info_resumed")
    r = await js.api("CONSUMER.PAUSE.S.ZZ", {}, "missing")
    js.error(r, 404, 10014, "consumer not found")
