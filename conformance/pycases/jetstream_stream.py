"""JetStream streams: $JS.API.STREAM.* (create, update, info, names, list, delete, purge,
message get and delete). Each case is a script run on the target and compared with go214
(see _js.py); the exact error codes and texts it checks hold for every target."""

from __future__ import annotations

from ._js import Js, jscase

NAME_ERR_214 = "stream name is required and can not contain '.', '*', '>', '\\', '/'"
NAME_ERR_29 = "stream name is required and can not contain '.', '*', '>'"
# What 2.9 answers where 2.14 differs (it checks in another order, or words it otherwise).
GO29_CREATE_ERRORS: dict[str, tuple[int, int, str | None]] = {
    "capture_all": (400, 10065, "subjects overlap with an existing stream"),
    "dup_subjects": (500, 10052, None),
    "negative_max_age": (500, 10052, "duplicates window can not be negative"),
}


@jscase(
    "jetstream.stream.create_defaults",
    doc="STREAM.CREATE with only name+subjects: the full config nats-server echoes (every default), "
    "created, zero state (first_ts 0001-01-01T00:00:00Z), did_create; 2.14 adds compression, "
    "consumer_limits, allow_msg_ttl, metadata {_nats.level,_nats.req.level,_nats.ver} and ts",
)
async def create_defaults(js: Js) -> None:
    r = await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}, "create")
    js.ok(r)
    js.eq(r["type"], "io.nats.jetstream.api.v1.stream_create_response", "type")
    cfg = r["config"]
    want = {
        "name": "S",
        "subjects": ["foo", "bar.*"],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "discard": "old",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120000000000,
        "allow_direct": False,
        "mirror_direct": False,
        "sealed": False,
        "deny_delete": False,
        "deny_purge": False,
        "allow_rollup_hdrs": False,
    }
    js.eq({k: cfg.get(k) for k in want}, want, "config defaults")
    js.eq(r["did_create"], True, "did_create")
    if not js.go29:
        js.eq(cfg["metadata"].get("_nats.req.level"), "0", "metadata _nats.req.level")
    # The same config again is not an error: the existing stream is returned (did_create stays).
    await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}, "create_again")
    # No subjects: the stream's name becomes its only subject.
    r = await js.api("STREAM.CREATE.U", {"name": "U"}, "create_nosubjects")
    js.eq(r["config"]["subjects"], ["U"], "default subjects = [name]")
    # Memory storage, workqueue retention, limits: echoed as given.
    await js.api(
        "STREAM.CREATE.M",
        {
            "name": "M",
            "subjects": ["m.>"],
            "storage": "memory",
            "retention": "workqueue",
            "max_msgs": 10,
            "max_bytes": 1000,
            "max_age": 3600000000000,
            "max_msg_size": 100,
            "max_msgs_per_subject": 2,
            "discard": "new",
            "duplicate_window": 1000000000,
            "description": "d",
        },
        "create_memory_wq",
    )
    await js.api(
        "STREAM.CREATE.I",
        {"name": "I", "subjects": ["i"], "retention": "interest", "allow_direct": True},
        "create_interest",
    )


@jscase(
    "jetstream.stream.create_errors",
    doc="STREAM.CREATE refusals: bad name (10052 / no answer at all when the subject has more "
    "tokens), name mismatch 10056, overlapping subjects with another stream 10065, a stream's own "
    "subjects overlapping 10052, invalid JSON 10025, enum values 10025, discard_new_per_subject "
    "without max_msgs_per_subject, same name with another config 10058, API subjects",
    go29_loose=(
        "bad_name*:error.description",
        "invalid_json:error.*",
        "empty_body:error.*",
        "bad_enum:error.description",
        "api_overlap:error.description",
        "dup_subjects:error.description",
        "capture_all:error.*",
        "negative_max_age:error.description",
    ),
)
async def create_errors(js: Js) -> None:
    name_err = NAME_ERR_29 if js.go29 else NAME_ERR_214
    r = await js.api("STREAM.CREATE.a*b", {"name": "a*b"}, "bad_name_star")
    js.error(r, 500, 10052, name_err, "name with *")
    r = await js.api("STREAM.CREATE.a>b", {"name": "a>b", "subjects": ["zz"]}, "bad_name_gt")
    js.error(r, 500, 10052, name_err, "name with >")
    # A name with a dot makes the subject one token longer: nothing answers.
    await js.send("$JS.API.STREAM.CREATE.a.b", {"name": "a.b"}, js.inbox())
    await js.no_msg("1", 0.2)
    r = await js.api("STREAM.CREATE.X", {"name": "Y"}, "name_mismatch")
    js.error(r, 400, 10056, "stream name in subject does not match request")
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    r = await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}, "different_config")
    js.error(r, 400, 10058, "stream name already in use with a different configuration")
    r = await js.api("STREAM.CREATE.T", {"name": "T", "subjects": ["foo"]}, "overlap")
    js.error(r, 400, 10065, "subjects overlap with an existing stream")
    r = await js.api("STREAM.CREATE.T", {"name": "T", "subjects": ["bar.>"]}, "overlap_wildcard")
    js.error(r, 400, 10065, "subjects overlap with an existing stream")
    r = await js.api("STREAM.CREATE.V", {"name": "V", "subjects": ["a.*", "a.b"]}, "self_overlap")
    js.error(r, 500, 10052, 'subject "a.*" overlaps with "a.b"')
    r = await js.api("STREAM.CREATE.W", b"{nope", "invalid_json")
    if js.go29:
        js.error(r, 400, 10025, "invalid JSON")
    else:
        js.error(
            r,
            400,
            10025,
            "invalid JSON: invalid character 'n' looking for beginning of object key string at offset 2",
        )
    r = await js.api("STREAM.CREATE.W", b"", "empty_body")
    if js.go29:
        js.error(r, 400, 10025, "invalid JSON")
    else:
        js.error(r, 400, 10056, "stream name in subject does not match request")
    r = await js.api("STREAM.CREATE.W", {"name": "W", "retention": "bogus"}, "bad_enum")
    js.error(r, 400, 10025, None, "unknown retention")
    r = await js.api(
        "STREAM.CREATE.W",
        {"name": "W", "subjects": ["w"], "discard_new_per_subject": True, "discard": "new"},
        "dnps_without_max",
    )
    js.error(r, 500, 10052, "discard new per subject requires max msgs per subject > 0")
    r = await js.api("STREAM.CREATE.W", {"name": "W", "subjects": ["$JS.API.>"]}, "api_overlap")
    js.error(r, 500, 10052, None, "subjects overlapping the JetStream API")
    r = await js.api(
        "STREAM.CREATE.R",
        {"name": "R", "subjects": ["r"], "allow_rollup_hdrs": True, "deny_purge": True},
        "rollup_needs_purge",
    )
    js.error(r, 500, 10052, "roll-ups require the purge permission")
    # Invalid combinations, each with its own text (all 500 10052).
    for label, cfg, text in (
        (
            "dnps_discard_old",
            {"subjects": ["w"], "discard_new_per_subject": True, "max_msgs_per_subject": 1},
            "discard new per subject requires discard new policy to be set",
        ),
        ("max_age_small", {"subjects": ["w"], "max_age": 50000000}, "max age needs to be >= 100ms"),
        (
            "dup_window_gt_max_age",
            {"subjects": ["w"], "max_age": 1000000000, "duplicate_window": 2000000000},
            "duplicates window can not be larger then max age",
        ),
        ("dup_subjects", {"subjects": ["w", "w"]}, 'subject "w" overlaps with "w"'),
        ("capture_all", {"subjects": [">"]}, "capturing all subjects requires no-ack to be true"),
        ("invalid_subject", {"subjects": ["a..b"]}, "invalid subject"),
        ("negative_max_age", {"subjects": ["w"], "max_age": -1}, "max age can not be negative"),
    ):
        r = await js.api("STREAM.CREATE.W", {"name": "W", **cfg}, label)
        if js.go29 and label in GO29_CREATE_ERRORS:
            js.error(r, *GO29_CREATE_ERRORS[label], label)
        else:
            js.error(r, 500, 10052, text, label)
    # A stream without subjects takes its name as subject: that overlaps a wildcard stream.
    js.ok(await js.api("STREAM.DELETE.S"))
    js.ok(await js.api("STREAM.CREATE.WC", {"name": "WC", "subjects": ["*"]}))
    r = await js.api("STREAM.CREATE.N", {"name": "N"}, "name_overlaps_wildcard")
    js.error(r, 400, 10065, "subjects overlap with an existing stream")


@jscase(
    "jetstream.stream.update",
    doc="STREAM.UPDATE: allowed changes (subjects, limits) echo the new config with the state; "
    "refused: storage type (10052 'can not change storage type'), retention to/from workqueue, "
    "an unknown stream 10059, name mismatch 10056, cancelling deny_delete/deny_purge, unsealing; "
    "a sealed stream refuses publish, purge and delete with 10109",
    go29_loose=("retention:error.description",),
)
async def update(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", "1"), ("bar.x", "2")])
    r = await js.api(
        "STREAM.UPDATE.S",
        {"name": "S", "subjects": ["foo", "bar.*", "baz"], "max_msgs": 100, "description": "x"},
        "update_ok",
    )
    js.eq(r["type"], "io.nats.jetstream.api.v1.stream_update_response", "type")
    js.eq(r["config"]["max_msgs"], 100, "max_msgs updated")
    js.eq(r["state"]["messages"], 2, "state kept")
    r = await js.api(
        "STREAM.UPDATE.S", {"name": "S", "subjects": ["foo"], "storage": "memory"}, "storage"
    )
    js.error(r, 500, 10052, "stream configuration update can not change storage type")
    r = await js.api(
        "STREAM.UPDATE.S", {"name": "S", "subjects": ["foo"], "retention": "workqueue"}, "retention"
    )
    js.error(r, 500, 10052, None)
    if not js.go29:
        js.eq(
            r["error"]["description"],
            "stream configuration update can not change retention policy to/from workqueue",
            "retention error text",
        )
    r = await js.api("STREAM.UPDATE.Z", {"name": "Z", "subjects": ["zz"]}, "missing")
    js.error(r, 404, 10059, "stream not found")
    r = await js.api("STREAM.UPDATE.S", {"name": "Q", "subjects": ["foo"]}, "name_mismatch")
    js.error(r, 400, 10056, "stream name in subject does not match request")
    js.ok(
        await js.api(
            "STREAM.CREATE.D",
            {"name": "D", "subjects": ["d"], "deny_delete": True, "deny_purge": True},
        )
    )
    r = await js.api(
        "STREAM.UPDATE.D",
        {"name": "D", "subjects": ["d"], "deny_purge": True},
        "cancel_deny_delete",
    )
    js.error(r, 500, 10052, "stream configuration update can not cancel deny message deletes")
    r = await js.api(
        "STREAM.UPDATE.D",
        {"name": "D", "subjects": ["d"], "deny_delete": True},
        "cancel_deny_purge",
    )
    js.error(r, 500, 10052, "stream configuration update can not cancel deny purge")
    r = await js.api(
        "STREAM.UPDATE.S",
        {"name": "S", "subjects": ["foo", "bar.*", "baz"], "sealed": True},
        "seal",
    )
    js.eq(r["config"]["sealed"], True, "sealed")
    sealed = "invalid operation on sealed stream"
    js.error(await js.pub("foo", "x", record="publish_sealed"), 400, 10109, sealed)
    js.error(await js.api("STREAM.PURGE.S", None, "purge_sealed"), 400, 10109, sealed)
    js.error(await js.api("STREAM.MSG.DELETE.S", {"seq": 1}, "delete_sealed"), 400, 10109, sealed)
    r = await js.api(
        "STREAM.UPDATE.S", {"name": "S", "subjects": ["foo", "bar.*", "baz"]}, "unseal"
    )
    js.error(r, 500, 10052, "stream configuration update can not unseal a sealed stream")


@jscase(
    "jetstream.stream.info",
    doc="STREAM.INFO: state counts and bytes (file store: 22+subject+headers+data+8 bytes a "
    "message... as nats-server counts), num_subjects, subjects_filter (subjects map, total/"
    "offset/limit 100000), deleted_details (deleted list, num_deleted), cluster.leader (2.14), "
    "an unknown stream (10059, with total/offset/limit 0)",
)
async def info(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", f"f{i}") for i in range(5)])
    await js.pubs([(f"bar.{i}", f"b{i}") for i in range(3)], headers={"X-I": "1"})
    r = await js.api("STREAM.INFO.S", None, "info")
    js.eq(r["type"], "io.nats.jetstream.api.v1.stream_info_response", "type")
    st = r["state"]
    js.eq(
        (st["messages"], st["bytes"], st["first_seq"], st["last_seq"], st["num_subjects"]),
        (8, 358, 1, 8, 4),
        "state (messages, bytes, first_seq, last_seq, num_subjects)",
    )
    r = await js.api("STREAM.INFO.S", {"subjects_filter": ">"}, "subjects_all")
    js.eq(r["state"]["subjects"], {"bar.0": 1, "bar.1": 1, "bar.2": 1, "foo": 5}, "subjects")
    js.eq((r["total"], r["offset"], r["limit"]), (4, 0, 100000), "total/offset/limit")
    r = await js.api("STREAM.INFO.S", {"subjects_filter": "bar.*"}, "subjects_filtered")
    js.eq(r["state"]["subjects"], {"bar.0": 1, "bar.1": 1, "bar.2": 1}, "filtered subjects")
    await js.api("STREAM.INFO.S", {"subjects_filter": "nope"}, "subjects_none")
    js.ok(await js.api("STREAM.MSG.DELETE.S", {"seq": 2}))
    js.ok(await js.api("STREAM.MSG.DELETE.S", {"seq": 3}))
    r = await js.api("STREAM.INFO.S", {"deleted_details": True}, "deleted_details")
    js.eq(r["state"].get("deleted"), [2, 3], "deleted")
    js.eq(r["state"].get("num_deleted"), 2, "num_deleted")
    r = await js.api("STREAM.INFO.S", None, "no_details")
    js.check("deleted" not in r["state"], "no deleted list without deleted_details")
    r = await js.api("STREAM.INFO.NOPE", None, "unknown")
    js.error(r, 404, 10059, "stream not found")


@jscase(
    "jetstream.stream.names_list_delete",
    doc="STREAM.NAMES (limit 1024, sorted, subject filter), STREAM.LIST (limit 256; each config's "
    "metadata is only {_nats.req.level} in 2.14), STREAM.DELETE (success, then 10059)",
)
async def names_list_delete(js: Js) -> None:
    await js.api("STREAM.NAMES", None, "names_empty")
    await js.api("STREAM.LIST", None, "list_empty")
    for name, subj in (("B", "b.>"), ("A", "a"), ("C", "c.*")):
        js.ok(await js.api(f"STREAM.CREATE.{name}", {"name": name, "subjects": [subj]}))
    r = await js.api("STREAM.NAMES", None, "names")
    js.eq(r["streams"], ["A", "B", "C"], "names, sorted")
    js.eq((r["total"], r["offset"], r["limit"]), (3, 0, 1024), "total/offset/limit")
    r = await js.api("STREAM.NAMES", {"subject": "c.x"}, "names_subject")
    js.eq(r["streams"], ["C"], "names by subject")
    await js.api("STREAM.NAMES", {"offset": 2}, "names_offset")
    r = await js.api("STREAM.LIST", None, "list")
    js.eq((r["total"], r["limit"]), (3, 256), "list total/limit")
    await js.api("STREAM.LIST", {"subject": "b.q"}, "list_subject")
    r = await js.api("STREAM.DELETE.B", None, "delete")
    js.eq(r, {"type": "io.nats.jetstream.api.v1.stream_delete_response", "success": True}, "delete")
    r = await js.api("STREAM.DELETE.B", None, "delete_again")
    js.error(r, 404, 10059, "stream not found")
    await js.api("STREAM.NAMES", None, "names_after")


@jscase(
    "jetstream.stream.purge",
    doc="STREAM.PURGE: with filter, filter+keep, seq (everything below), all; the answer "
    "{success, purged}; first_seq moves past the purge (empty stream: first_seq = last_seq+1); "
    "deny_purge refuses with 10110",
)
async def purge(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", f"f{i}") for i in range(5)] + [(f"bar.{i}", "b") for i in range(3)])
    r = await js.api("STREAM.PURGE.S", {"filter": "bar.1"}, "filter")
    js.eq(
        r,
        {"type": "io.nats.jetstream.api.v1.stream_purge_response", "success": True, "purged": 1},
        "purge filter",
    )
    r = await js.api("STREAM.PURGE.S", {"filter": "foo", "keep": 1}, "filter_keep")
    js.eq(r["purged"], 4, "purged with keep 1")
    await js.api("STREAM.INFO.S", None, "info1")
    r = await js.api("STREAM.PURGE.S", {"seq": 8}, "seq")
    js.eq(r["purged"], 2, "purged below seq 8")
    r = await js.api("STREAM.PURGE.S", None, "all")
    js.eq(r["purged"], 1, "purged all")
    r = await js.api("STREAM.INFO.S", None, "info_empty")
    js.eq((r["state"]["first_seq"], r["state"]["last_seq"]), (9, 8), "first/last after purge")
    js.ok(await js.api("STREAM.CREATE.DP", {"name": "DP", "subjects": ["dp"], "deny_purge": True}))
    r = await js.api("STREAM.PURGE.DP", None, "deny_purge")
    js.error(r, 500, 10110, "stream purge not permitted")
    r = await js.api("STREAM.PURGE.NOPE", None, "unknown")
    js.error(r, 404, 10059, "stream not found")


@jscase(
    "jetstream.stream.msg_get",
    doc="STREAM.MSG.GET by seq, last_by_subj, next_by_subj (+seq): {message: {subject, seq, "
    "hdrs (base64 of the header block), data (base64), time}}; 10037 no message found; "
    "10003 bad request (no selector, or two); 10059 unknown stream",
)
async def msg_get(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo", "bar.*"]}))
    await js.pubs([("foo", f"f{i}") for i in range(3)])
    await js.pubs([(f"bar.{i}", f"b{i}") for i in range(3)], headers={"X-I": "v"})
    r = await js.api("STREAM.MSG.GET.S", {"seq": 1}, "seq")
    js.eq(r["message"]["data"], "ZjA=", "data is base64")
    js.check("hdrs" not in r["message"], "no hdrs for a message without headers")
    r = await js.api("STREAM.MSG.GET.S", {"seq": 4}, "seq_headers")
    js.eq(
        r["message"]["hdrs"],
        "TkFUUy8xLjANClgtSTogdg0KDQo=",
        "hdrs = base64('NATS/1.0\\r\\nX-I: v\\r\\n\\r\\n')",
    )
    r = await js.api("STREAM.MSG.GET.S", {"last_by_subj": "foo"}, "last_by_subj")
    js.eq(r["message"]["seq"], 3, "last foo")
    await js.api("STREAM.MSG.GET.S", {"last_by_subj": "bar.*"}, "last_by_wildcard")
    r = await js.api("STREAM.MSG.GET.S", {"next_by_subj": "bar.*", "seq": 5}, "next_by_subj")
    js.eq(r["message"]["seq"], 5, "next bar.* from 5")
    r = await js.api("STREAM.MSG.GET.S", {"next_by_subj": "foo"}, "next_by_subj_noseq")
    js.eq(r["message"]["seq"], 1, "next foo from the start")
    r = await js.api("STREAM.MSG.GET.S", {"seq": 99}, "not_found")
    js.error(r, 404, 10037, "no message found")
    r = await js.api("STREAM.MSG.GET.S", {"last_by_subj": "nope"}, "last_not_found")
    js.error(r, 404, 10037, "no message found")
    r = await js.api("STREAM.MSG.GET.S", {}, "no_selector")
    js.error(r, 400, 10003, "bad request")
    r = await js.api("STREAM.MSG.GET.S", {"seq": 1, "last_by_subj": "foo"}, "two_selectors")
    js.error(r, 400, 10003, "bad request")
    r = await js.api("STREAM.MSG.GET.NOPE", {"seq": 1}, "unknown_stream")
    js.error(r, 404, 10059, "stream not found")


@jscase(
    "jetstream.stream.msg_delete",
    doc="STREAM.MSG.DELETE (and no_erase): {success:true}; a deleted or never-stored seq: 10043 "
    "'sequence N not found', past the end 10057 'stream store EOF'; deny_delete 10057 'message "
    "delete not permitted'; a deleted message is 10037 for MSG.GET",
)
async def msg_delete(js: Js) -> None:
    js.ok(await js.api("STREAM.CREATE.S", {"name": "S", "subjects": ["foo"]}))
    await js.pubs([("foo", str(i)) for i in range(4)])
    r = await js.api("STREAM.MSG.DELETE.S", {"seq": 2}, "delete")
    js.eq(
        r,
        {"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": True},
        "delete",
    )
    js.ok(await js.api("STREAM.MSG.DELETE.S", {"seq": 3, "no_erase": True}, "no_erase"))
    r = await js.api("STREAM.MSG.DELETE.S", {"seq": 3}, "again")
    js.error(r, 400, 10043, "sequence 3 not found")
    r = await js.api("STREAM.MSG.DELETE.S", {"seq": 99}, "past_end")
    js.error(r, 500, 10057, "stream store EOF")
    r = await js.api("STREAM.MSG.GET.S", {"seq": 2}, "get_deleted")
    js.error(r, 404, 10037, "no message found")
    await js.api("STREAM.INFO.S", {"deleted_details": True}, "info")
    js.ok(await js.api("STREAM.CREATE.DD", {"name": "DD", "subjects": ["dd"], "deny_delete": True}))
    await js.pubs([("dd", "x")])
    r = await js.api("STREAM.MSG.DELETE.DD", {"seq": 1}, "deny_delete")
    js.error(r, 500, 10057, "message delete not permitted")
