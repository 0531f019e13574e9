"""Key-value buckets through nats-py's KV API (a KV bucket is a stream `KV_<bucket>` on
`$KV.<bucket>.>`; the client does the rest with publishes, direct/last-by-subject gets and
ordered consumers). Every test runs against pynats-server and nats-server 2.14 (js_targets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.errors as jserr
import pytest
from conftest import wait_for
from js_targets import js_url  # noqa: F401 - the fixture
from nats.js.api import DeliverPolicy
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

WAIT = 10.0


@pytest.fixture
async def nc(js_url: str) -> AsyncIterator[Any]:  # noqa: F811
    c = await nats.connect(js_url, allow_reconnect=False, connect_timeout=2)
    yield c
    await c.close()


async def drain(w: KeyValue.KeyWatcher) -> list[Any]:
    """The entries a watcher delivers up to its "initial values done" marker (None)."""
    out = []
    while (e := await w.updates(timeout=WAIT)) is not None:
        out.append(e)
    return out


async def test_put_get_update_with_revision(nc: Any) -> None:
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="T", history=5)
    assert await kv.put("a", b"1") == 1
    e = await kv.get("a")
    assert (e.key, e.value, e.revision, e.operation) == ("a", b"1", 1, None)
    assert await kv.update("a", b"2", last=1) == 2
    with pytest.raises(jserr.KeyWrongLastSequenceError):
        await kv.update("a", b"3", last=1)  # not the last revision
    assert (await kv.get("a")).value == b"2"
    assert (await kv.get("a", revision=1)).value == b"1"
    assert await kv.put("b.c", b"x") == 3  # revisions are the stream's sequence
    with pytest.raises(jserr.KeyNotFoundError):
        await kv.get("missing")
    st = await kv.status()
    assert (st.bucket, st.values, st.history) == ("T", 3, 5)
    # The bucket's stream, as the client configured it.
    cfg = (await js.stream_info("KV_T")).config
    assert (cfg.subjects, cfg.max_msgs_per_subject, cfg.allow_rollup_hdrs, cfg.deny_delete) == (
        ["$KV.T.>"], 5, True, True)


async def test_create_on_an_existing_key_fails_but_works_after_delete(nc: Any) -> None:
    kv = await nc.jetstream().create_key_value(bucket="C")
    assert await kv.create("k", b"first") == 1
    with pytest.raises(jserr.KeyWrongLastSequenceError) as ei:
        await kv.create("k", b"second")
    assert "wrong last sequence: 1" in (ei.value.description or "")
    await kv.delete("k")
    assert await kv.create("k", b"again") == 3  # a deleted key may be created again
    assert (await kv.get("k")).value == b"again"
    # A second bucket with the same name and configuration is the same bucket.
    kv2 = await nc.jetstream().create_key_value(bucket="C")
    assert (await kv2.get("k")).revision == 3


async def test_delete_and_purge_markers_and_history(nc: Any) -> None:
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="H", history=10)
    for v in (b"1", b"2", b"3"):
        await kv.put("a", v)
    await kv.put("b", b"x")
    await kv.delete("a")
    with pytest.raises(jserr.KeyNotFoundError):  # nats-py turns "deleted" into "not found"
        await kv.get("a")
    hist = await kv.history("a")
    assert [(e.value, e.revision, e.operation) for e in hist] == [
        (b"1", 1, None), (b"2", 2, None), (b"3", 3, None), (b"", 5, KV_DEL)]
    # The delete marker is a message with the KV-Operation header and no body.
    raw = await js.get_last_msg("KV_H", "$KV.H.a")
    assert raw.headers == {"KV-Operation": "DEL"} and raw.data in (b"", None)
    # Purge rolls the key's history up into one marker.
    await kv.put("a", b"4")
    await kv.purge("a")
    hist = await kv.history("a")
    assert [(e.revision, e.operation) for e in hist] == [(7, KV_PURGE)]
    raw = await js.get_last_msg("KV_H", "$KV.H.a")
    assert raw.headers == {"KV-Operation": "PURGE", "Nats-Rollup": "sub"}
    with pytest.raises(jserr.KeyNotFoundError):
        await kv.get("a")
    assert (await kv.history("b"))[0].value == b"x"
    # History is bounded by the bucket's history setting.
    small = await js.create_key_value(bucket="S", history=2)
    for i in range(5):
        await small.put("k", b"%d" % i)
    assert [e.value for e in await small.history("k")] == [b"3", b"4"]
    # purge_deletes removes the markers (older than 0 s: all of them).
    await kv.delete("b")
    await kv.purge_deletes(olderthan=-1)
    info = await js.stream_info("KV_H")
    assert info.state.messages == 0


async def test_keys(nc: Any) -> None:
    kv = await nc.jetstream().create_key_value(bucket="K", history=3)
    with pytest.raises(jserr.NoKeysError):
        await kv.keys()
    for k in ("a", "b.1", "b.2", "c"):
        await kv.put(k, b"v")
    await kv.put("a", b"v2")
    await kv.delete("c")
    await kv.purge("b.2")
    assert sorted(await kv.keys()) == ["a", "b.1"]
    assert sorted(await kv.keys(filters=["b."])) == ["b.1"]


async def test_watch_initial_values_then_updates(nc: Any) -> None:
    kv = await nc.jetstream().create_key_value(bucket="W", history=5)
    empty = await kv.watchall()
    assert await empty.updates(timeout=WAIT) is None  # nothing yet: the marker comes at once
    await kv.put("a", b"1")
    await kv.put("a", b"2")
    await kv.put("b", b"1")
    e = await empty.updates(timeout=WAIT)
    assert (e.key, e.value, e.revision) == ("a", b"1", 1)
    await empty.stop()

    w = await kv.watchall()
    assert [(e.key, e.value, e.revision) for e in await drain(w)] == [("a", b"2", 2), ("b", b"1", 3)]
    await kv.put("c", b"1")
    await kv.delete("a")
    await kv.purge("b")
    got = [await w.updates(timeout=WAIT) for _ in range(3)]
    assert [(e.key, e.operation, e.revision) for e in got] == [("c", None, 4), ("a", KV_DEL, 5), ("b", KV_PURGE, 6)]
    await w.stop()

    # One key, or a wildcard of keys.
    await kv.put("x.1", b"1")
    await kv.put("x.2", b"2")
    wx = await kv.watch("x.*")
    assert [e.key for e in await drain(wx)] == ["x.1", "x.2"]
    await wx.stop()


async def test_watch_include_history_and_meta_only(nc: Any) -> None:
    kv = await nc.jetstream().create_key_value(bucket="WH", history=5)
    for k, v in (("a", b"1"), ("a", b"2"), ("b", b"1"), ("a", b"3")):
        await kv.put(k, v)
    w = await kv.watchall(include_history=True)
    assert [(e.key, e.value) for e in await drain(w)] == [("a", b"1"), ("a", b"2"), ("b", b"1"), ("a", b"3")]
    await w.stop()
    # Only the last value per key without history; with meta_only no bodies.
    w = await kv.watchall(meta_only=True)
    assert [(e.key, e.value, e.revision) for e in await drain(w)] == [("b", b"", 3), ("a", b"", 4)]
    await w.stop()
    w = await kv.watchall(ignore_deletes=True)
    await kv.delete("b")
    await kv.put("c", b"1")
    assert [e.key for e in await drain(w)] == ["b", "a"]
    assert (await w.updates(timeout=WAIT)).key == "c"  # the delete of b was skipped
    await w.stop()


async def test_watch_updates_only(nc: Any) -> None:
    """Updates only (what clients call UpdatesOnly): an ordered consumer on the bucket's
    subjects with deliver policy `new` sees nothing of what is already there."""
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="U")
    await kv.put("old", b"1")
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def cb(msg: Any) -> None:
        await got.put(msg)

    sub = await js.subscribe("$KV.U.>", cb=cb, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
    info = await sub.consumer_info()
    assert info.num_pending == 0
    await kv.put("new", b"2")
    await kv.delete("old")
    m1 = await asyncio.wait_for(got.get(), WAIT)
    m2 = await asyncio.wait_for(got.get(), WAIT)
    assert (m1.subject, m1.data, m1.metadata.sequence.stream) == ("$KV.U.new", b"2", 2)
    assert (m2.subject, m2.headers) == ("$KV.U.old", {"KV-Operation": "DEL"})
    assert got.empty()
    await sub.unsubscribe()


async def test_bucket_max_age(nc: Any) -> None:
    kv = await nc.jetstream().create_key_value(bucket="AGE", ttl=1.0)
    await kv.put("k", b"v")
    assert (await kv.get("k")).value == b"v"
    start = time.monotonic()

    async def gone() -> bool:
        try:
            await kv.get("k")
        except jserr.KeyNotFoundError:
            return True
        return False

    await wait_for(gone, timeout=WAIT, what="the value to age out")
    assert time.monotonic() - start >= 0.5
    assert (await kv.status()).values == 0


async def test_per_key_ttl_and_limit_markers(nc: Any) -> None:
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="TTL", history=3, limit_marker_ttl=1.0)
    cfg = (await js.stream_info("KV_TTL")).config
    assert cfg.allow_msg_ttl is True and cfg.subject_delete_marker_ttl == 1.0
    w = await kv.watchall()
    assert await w.updates(timeout=WAIT) is None
    await kv.create("short", b"v", msg_ttl=1.0)
    await kv.put("long", b"v")
    raw = await js.get_last_msg("KV_TTL", "$KV.TTL.short")
    assert raw.headers is not None and raw.headers.get("Nats-TTL") == "1"
    assert (await w.updates(timeout=WAIT)).key == "short"
    assert (await w.updates(timeout=WAIT)).key == "long"
    # When the value expires the server places a delete marker (reason MaxAge) for the key,
    # which the watcher reports as a purge; the marker itself expires after 1 s too.
    marker = await w.updates(timeout=WAIT)
    assert (marker.key, marker.operation) == ("short", KV_PURGE)
    # The marker, as stored: no body, the reason and its own TTL in headers (nats-py's get()
    # only looks at KV-Operation, so it would hand the marker out as an empty value).
    raw = await js.get_last_msg("KV_TTL", "$KV.TTL.short")
    assert raw.data in (b"", None) and raw.headers is not None
    assert (raw.headers.get("Nats-Marker-Reason"), raw.headers.get("Nats-TTL")) == ("MaxAge", "1s")
    assert (await kv.get("long")).value == b"v"

    async def marker_gone() -> bool:
        return (await js.stream_info("KV_TTL")).state.messages == 1

    await wait_for(marker_gone, timeout=WAIT, what="the marker to expire")
    # A create after expiry is a create again.
    assert await kv.create("short", b"again") > 0
    await w.stop()


async def test_bucket_management(nc: Any) -> None:
    js = nc.jetstream()
    await js.create_key_value(bucket="M1")
    await js.create_key_value(bucket="M2", history=3, description="two")
    kv = await js.key_value("M2")
    assert (await kv.status()).history == 3
    with pytest.raises(jserr.BucketNotFoundError):
        await js.key_value("NOPE")
    with pytest.raises(jserr.KeyHistoryTooLargeError):
        await js.create_key_value(bucket="BIG", history=65)
    assert await js.delete_key_value("M1")
    with pytest.raises(jserr.BucketNotFoundError):
        await js.key_value("M1")
    names = await js.streams_info()
    assert [s.config.name for s in names] == ["KV_M2"]
