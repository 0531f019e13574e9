"""Object store buckets through nats-py's object store API (a bucket is a stream
`OBJ_<bucket>` on `$O.<bucket>.C.>` (chunks) and `$O.<bucket>.M.>` (meta, rolled up per
object)). Every test runs against pynats-server and nats-server 2.14 (js_targets)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.errors as jserr
import pytest
from js_targets import js_url  # noqa: F401 - the fixture
from nats.js.api import ObjectLink, ObjectMeta, ObjectMetaOptions

WAIT = 10.0
CHUNK = 128 * 1024  # nats-py needs a chunk size when meta options are given


@pytest.fixture
async def nc(js_url: str) -> AsyncIterator[Any]:  # noqa: F811
    c = await nats.connect(js_url, allow_reconnect=False, connect_timeout=2)
    yield c
    await c.close()


def blob(n: int, seed: int = 1) -> bytes:
    """n bytes that differ from chunk to chunk (so a chunk out of order would show)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:n])


async def test_put_get_multi_chunk_objects(nc: Any) -> None:
    js = nc.jetstream()
    obs = await js.create_object_store("B")
    data = blob(300_000)  # 128 KiB chunks by default: 3 chunks
    info = await obs.put("big", data)
    assert (info.name, info.bucket, info.size, info.chunks, info.deleted) == ("big", "B", 300_000, 3, False)
    assert info.digest == "SHA-256=" + __import__("base64").urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    got = await obs.get("big")
    assert got.data == data and got.info.nuid == info.nuid
    # Small chunks: many messages, read back in order.
    meta = ObjectMeta(name="small", options=ObjectMetaOptions(max_chunk_size=1000))
    data2 = blob(25_500, seed=2)
    info2 = await obs.put("small", data2, meta=meta)
    assert info2.chunks == 26
    assert (await obs.get("small")).data == data2
    # From a file-like reader, into a writer.
    info3 = await obs.put("stream", io.BytesIO(data2))
    assert info3.size == len(data2)
    out = io.BytesIO()
    await obs.get("stream", writeinto=out)
    assert out.getvalue() == data2
    # Empty object.
    assert (await obs.put("empty", b"")).chunks == 0
    assert (await obs.get("empty")).data == b""
    # Replacing an object: its old chunks are purged.
    before = (await js.stream_info("OBJ_B")).state.messages
    await obs.put("big", b"short now")
    assert (await obs.get("big")).data == b"short now"
    assert (await js.stream_info("OBJ_B")).state.messages == before - 3 + 1
    st = await obs.status()
    assert st.bucket == "B" and not st.sealed
    with pytest.raises(jserr.ObjectNotFoundError):
        await obs.get("missing")


async def test_info_and_metadata(nc: Any) -> None:
    obs = await nc.jetstream().create_object_store("META", description="objects")
    meta = ObjectMeta(name="doc", description="a document", headers={"Kind": ["text"]})
    await obs.put("doc", b"hello", meta=meta)
    info = await obs.get_info("doc")
    assert (info.description, info.size, info.chunks) == ("a document", 5, 1)
    assert info.headers == {"Kind": ["text"]}
    await obs.update_meta("doc", ObjectMeta(name="doc", description="changed"))
    assert (await obs.get_info("doc")).description == "changed"
    assert (await obs.get("doc")).data == b"hello"
    # Meta updates are rolled up: one meta message per object stays.
    await obs.update_meta("doc", ObjectMeta(name="doc", description="again"))
    assert (await nc.jetstream().stream_info("OBJ_META")).state.messages == 2  # chunk + meta
    st = await obs.status()
    assert st.description == "objects"


async def test_list_and_delete(nc: Any) -> None:
    js = nc.jetstream()
    obs = await js.create_object_store("L")
    with pytest.raises(jserr.NotFoundError):
        await obs.list()
    for name in ("a", "b", "c"):
        await obs.put(name, blob(200_000, seed=ord(name)))
    assert sorted(i.name for i in await obs.list()) == ["a", "b", "c"]
    before = (await js.stream_info("OBJ_L")).state.messages  # 3 x (2 chunks + meta)
    assert before == 9
    await obs.delete("b")
    with pytest.raises(jserr.ObjectNotFoundError):
        await obs.get("b")
    deleted = await obs.get_info("b", show_deleted=True)
    assert deleted.deleted and deleted.size == 0
    # The chunks are purged, the meta stays as a tombstone.
    assert (await js.stream_info("OBJ_L")).state.messages == before - 2
    listed = await obs.list()
    assert sorted((i.name, bool(i.deleted)) for i in listed) == [("a", False), ("b", True), ("c", False)]
    assert sorted(i.name for i in await obs.list(ignore_deletes=True)) == ["a", "c"]


async def test_links(nc: Any) -> None:
    js = nc.jetstream()
    src = await js.create_object_store("SRC")
    dst = await js.create_object_store("DST")
    data = blob(150_000)
    await src.put("target", data)
    # A link to one object in another bucket: get() follows it.
    await dst.put("ln", b"", meta=ObjectMeta(name="ln", options=ObjectMetaOptions(link=ObjectLink(bucket="SRC", name="target"), max_chunk_size=CHUNK)))
    info = await dst.get_info("ln")
    assert info.is_link() and info.options.link.bucket == "SRC"
    assert (await dst.get("ln")).data == data
    # A link to a whole bucket cannot be read as an object.
    await dst.put("all", b"", meta=ObjectMeta(name="all", options=ObjectMetaOptions(link=ObjectLink(bucket="SRC"), max_chunk_size=CHUNK)))
    with pytest.raises(jserr.LinkIsABucketError):
        await dst.get("all")


async def test_watch(nc: Any) -> None:
    obs = await nc.jetstream().create_object_store("WATCH")
    w = await obs.watch()
    assert await w.updates(timeout=WAIT) is None  # empty bucket
    await obs.put("one", b"1")
    e = await w.updates(timeout=WAIT)
    assert (e.name, e.size) == ("one", 1)
    await obs.put("two", blob(140_000))
    e = await w.updates(timeout=WAIT)
    assert (e.name, e.chunks) == ("two", 2)
    await obs.delete("one")
    e = await w.updates(timeout=WAIT)
    assert (e.name, e.deleted) == ("one", True)
    await w.stop()
    # A new watcher: the current state (last meta per object) then the marker.
    w2 = await obs.watch()
    seen = []
    while (e := await w2.updates(timeout=WAIT)) is not None:
        seen.append((e.name, bool(e.deleted)))
    assert sorted(seen) == [("one", True), ("two", False)]
    await w2.stop()
    # Updates only: nothing of the past.
    w3 = await obs.watch(updates_only=True)
    await obs.put("three", b"3")
    e = await w3.updates(timeout=WAIT)
    assert e.name == "three"
    await w3.stop()


async def test_sealed_bucket(nc: Any) -> None:
    js = nc.jetstream()
    obs = await js.create_object_store("SEAL")
    await obs.put("kept", b"data")
    await obs.seal()
    st = await obs.status()
    assert st.sealed
    assert (await js.stream_info("OBJ_SEAL")).config.sealed is True
    assert (await obs.get("kept")).data == b"data"  # reading still works
    # nats-server answers any change to a sealed stream with 10109.
    with pytest.raises(jserr.APIError) as ei:
        await obs.put("more", b"x")
    assert (ei.value.err_code, ei.value.description) == (10109, "invalid operation on sealed stream")
    with pytest.raises(jserr.APIError) as ei:
        await obs.delete("kept")
    assert ei.value.err_code == 10109
    assert (await obs.get("kept")).data == b"data"


async def test_bucket_management(nc: Any) -> None:
    js = nc.jetstream()
    await js.create_object_store("O1", storage="memory")
    obs = await js.object_store("O1")
    await obs.put("x", os.urandom(10))
    assert (await js.stream_info("OBJ_O1")).config.storage == "memory"
    with pytest.raises(jserr.BucketNotFoundError):
        await js.object_store("NOPE")
    assert await js.delete_object_store("O1")
    with pytest.raises(jserr.BucketNotFoundError):
        await js.object_store("O1")
