"""A stream: its configuration, its store, the subscriptions that feed it, its consumers.

Messages come in through an internal subscription on the stream's subjects in its account
(sent to routes like any interest), are checked and stored, and the publisher's reply gets the
PubAck. Consumers (consumer.py) register with the stream and are told when messages arrive;
the stream publishes what they deliver into its account with `publish()`.

Layout on disk (file streams and the configuration of memory ones alike):
`<account dir>/streams/<name>/meta.inf` (the configuration and creation time, JSON) and the
store's own files beside it (store/filestore.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from ..delivery import deliver_msg
from ..internal import InternalClient
from ..monitor import go_time
from ..protocol import wire
from . import errors
from .errors import ApiError, api_error
from .store import (
    DiscardPolicy,
    FileStore,
    FileStoreConfig,
    MemStore,
    RetentionPolicy,
    StorageType,
    StoreConfig,
    StoreError,
    StreamStore,
)

if TYPE_CHECKING:
    from .engine import JsAccount

META_FILE = "meta.inf"
DEFAULT_DUPLICATE_WINDOW = 120.0  # seconds
_ZERO_TIME = "0001-01-01T00:00:00Z"

# The stream configuration's fields in nats-server's order (StreamConfig), with defaults.
# Fields whose default is None are omitted from answers when unset (Go's omitempty).
CONFIG_FIELDS: tuple[tuple[str, Any], ...] = (
    ("name", ""),
    ("description", None),
    ("subjects", None),
    ("retention", "limits"),
    ("max_consumers", -1),
    ("max_msgs", -1),
    ("max_bytes", -1),
    ("max_age", 0),
    ("max_msgs_per_subject", -1),
    ("max_msg_size", -1),
    ("discard", "old"),
    ("storage", "file"),
    ("num_replicas", 1),
    ("no_ack", None),
    ("duplicate_window", 0),
    ("placement", None),
    ("mirror", None),
    ("sources", None),
    ("compression", "none"),
    ("first_seq", None),
    ("subject_transform", None),
    ("republish", None),
    ("allow_direct", False),
    ("mirror_direct", False),
    ("discard_new_per_subject", None),
    ("sealed", False),
    ("deny_delete", False),
    ("deny_purge", False),
    ("allow_rollup_hdrs", False),
    ("consumer_limits", {}),
    ("allow_msg_ttl", False),
    ("subject_delete_marker_ttl", None),
    ("metadata", None),
)


def ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def normalize_config(req: dict[str, Any]) -> dict[str, Any]:
    """A requested configuration with nats-server's defaults filled in, in its field order.

    Only defaults here; what a configuration may not be is checked by check_config."""
    cfg: dict[str, Any] = {}
    for k, default in CONFIG_FIELDS:
        v = req.get(k)
        if v is None or (v is False and default is None) or (v == 0 and default is None and k != "first_seq"):
            if default is not None:
                cfg[k] = default
            continue
        cfg[k] = v
    if not cfg.get("subjects") and not cfg.get("mirror") and not cfg.get("sources"):
        cfg["subjects"] = [cfg["name"]]
    if not cfg.get("duplicate_window"):
        window = ns(DEFAULT_DUPLICATE_WINDOW)
        if cfg["max_age"] and cfg["max_age"] < window:
            window = cfg["max_age"]
        cfg["duplicate_window"] = window
    if cfg.get("max_consumers") == 0:
        cfg["max_consumers"] = -1
    return cfg


def store_config(cfg: dict[str, Any]) -> StoreConfig:
    return StoreConfig(
        name=cfg["name"],
        storage=StorageType.MEMORY if cfg["storage"] == "memory" else StorageType.FILE,
        max_msgs=cfg["max_msgs"],
        max_bytes=cfg["max_bytes"],
        max_age=cfg["max_age"],
        max_msgs_per_subject=cfg["max_msgs_per_subject"],
        max_msg_size=cfg["max_msg_size"],
        discard=DiscardPolicy.NEW if cfg["discard"] == "new" else DiscardPolicy.OLD,
        discard_new_per_subject=bool(cfg.get("discard_new_per_subject")),
        allow_msg_ttl=bool(cfg.get("allow_msg_ttl")),
        subject_delete_marker_ttl=int(cfg.get("subject_delete_marker_ttl") or 0),
        first_seq=int(cfg.get("first_seq") or 0),
        retention={"limits": RetentionPolicy.LIMITS, "interest": RetentionPolicy.INTEREST,
                   "workqueue": RetentionPolicy.WORKQUEUE}[cfg["retention"]],  # fmt: skip
    )


class Stream:
    """One stream of an account."""

    def __init__(self, jsa: JsAccount, cfg: dict[str, Any], created: float, *, recovered: bool = False) -> None:
        self.jsa = jsa
        self.js = jsa.js
        self.account = jsa.account
        self.config = cfg
        self.name: str = cfg["name"]
        self.created = created
        self.dir = os.path.join(jsa.store_dir, "streams", self.name)
        self.consumers: dict[str, Any] = {}  # name -> consumer.Consumer
        self.client: InternalClient | None = None
        self.closed = False
        self._expiry: Any = None  # the loop timer of the next age/TTL expiry
        scfg = store_config(cfg)
        self.is_memory = scfg.storage == StorageType.MEMORY
        os.makedirs(self.dir, exist_ok=True)
        if not recovered:
            self.write_meta()
        self.store: StreamStore
        if self.is_memory:
            self.store = MemStore(scfg)
        else:
            opts = self.js.opts
            self.store = FileStore(
                FileStoreConfig(store_dir=self.dir, sync_always=opts.sync_always,
                                sync_interval=opts.sync_interval),
                scfg,
            )  # fmt: skip

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the stream's subjects (the account's interest reaches routes)."""
        self.client = InternalClient(self.js.server, self.account, "JetStream")
        for subject in self.config.get("subjects") or ():
            self.client.subscribe(subject.encode(), self._on_msg, forward=True)
        self.schedule_expiry()

    def stop(self) -> None:
        """Stop serving (server shutdown): the store is closed, the files stay."""
        if self.closed:
            return
        self.closed = True
        for c in list(self.consumers.values()):
            c.stop()
        if self.client is not None:
            self.client.close()
        if self._expiry is not None:
            self._expiry.cancel()
        self.store.stop()

    def delete(self) -> None:
        """STREAM.DELETE: consumers, messages and files go."""
        for c in list(self.consumers.values()):
            c.delete()
        self.stop()
        self.store.delete()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.jsa.streams.pop(self.name, None)

    def write_meta(self) -> None:
        meta = {"config": self.config, "created": self.created}
        path = os.path.join(self.dir, META_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, path)

    # -- expiry (max_age, per-message TTL) -----------------------------------------------

    def schedule_expiry(self) -> None:
        if self.closed:
            return
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.store.next_expiry()
        if deadline is None:
            return
        loop = self.js.server.loop
        delay = max((deadline - time.time_ns()) / 1e9, 0.0)
        self._expiry = loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if self.closed:
            return
        self.store.expire(time.time_ns())
        self.schedule_expiry()

    # -- messages in --------------------------------------------------------------------

    def _on_msg(self, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None,
                hdr: int, msg: Any) -> bool:
        hdr_block = bytes(msg[:hdr]) if hdr > 0 else b""
        payload = bytes(msg[max(hdr, 0):-2])
        self.process(subject, reply, hdr_block, payload)
        return True

    def process(self, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> int:
        """Store one published message and answer its PubAck; the sequence (0 if refused)."""
        try:
            seq = self.store_message(subject, hdr, payload)
        except ApiError as e:
            if reply:
                body = {"error": e.json(), "stream": self.name, "seq": 0}
                self.publish(reply, None, b"", wire.go_json(body))
            return 0
        if reply:
            self.publish(reply, None, b"", self.pub_ack(seq))
        return seq

    def store_message(self, subject: bytes, hdr: bytes, payload: bytes) -> int:
        """Checks and storage of one message (raises ApiError); consumers are told."""
        try:
            seq, _ts = self.store.store_msg(subject, hdr, payload)
        except StoreError as e:
            raise _store_error(e) from None
        self.schedule_expiry_if_needed()
        self.signal_consumers(seq)
        return seq

    def schedule_expiry_if_needed(self) -> None:
        if self._expiry is None and (self.config.get("max_age") or self.config.get("allow_msg_ttl")):
            self.schedule_expiry()

    def pub_ack(self, seq: int, duplicate: bool = False) -> bytes:
        """nats-server writes the PubAck by hand: `{"stream":"S","seq":1}`."""
        name = json.dumps(self.name)
        if duplicate:
            return b'{"stream":%s,"seq":%d,"duplicate": true}' % (name.encode(), seq)
        return b'{"stream":%s,"seq":%d}' % (name.encode(), seq)

    # -- consumers ----------------------------------------------------------------------

    def register_consumer(self, c: Any) -> None:
        self.consumers[c.name] = c

    def remove_consumer(self, c: Any) -> None:
        name = c.name
        if self.consumers.get(name) is c:
            del self.consumers[name]

    def signal_consumers(self, seq: int) -> None:
        """A message was stored: consumers that wait for one get to deliver it."""
        for c in list(self.consumers.values()):
            c.new_message(seq)

    def publish(self, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool:
        """Publish into the stream's account (PubAcks, consumer deliveries, statuses)."""
        if self.client is None:
            return False
        if hdr:
            return deliver_msg(self.client, self.account, subject, reply, len(hdr), hdr + payload + b"\r\n")
        return deliver_msg(self.client, self.account, subject, reply, -1, payload + b"\r\n")

    # -- consumers: retention and removals (added by the consumer work) ------------------
    # nats-server's mset.ackMsg / noInterest / storeUpdates, as the consumers need them.
    # `ack_msg` is the hook consumers call when a message is acked (interest and workqueue
    # retention); `storage_updated` tells consumers about messages that left the store.

    def ack_msg(self, seq: int, consumer: Any) -> bool:
        """A consumer acked `seq`: under interest or workqueue retention the message goes
        once no consumer needs it any more. True when it was removed."""
        if self.closed or seq == 0 or self.config.get("retention", "limits") == "limits":
            return False
        st = self.store.fast_state()
        if seq > st.last_seq:
            return True
        if seq < st.first_seq or not self.no_interest(seq, None):
            return False
        try:
            return bool(self.store.remove_msg(seq))
        except StoreError:
            return False

    def no_interest(self, seq: int, skip: Any) -> bool:
        """No consumer (but `skip`) still needs message `seq`."""
        subject = None
        subjects = self.config.get("subjects") or []
        if self.consumers and (len(subjects) > 1 or any("*" in s or ">" in s for s in subjects)):
            try:
                subject = self.store.subject_for_seq(seq)
            except StoreError:
                return True
        for c in list(self.consumers.values()):
            if c is not skip and c.need_ack(seq, subject):
                return False
        return True

    def storage_updated(self, md: int, bd: int, seq: int, subject: bytes) -> None:
        """The store's update callback: a removed message is no longer pending for consumers;
        a bulk removal makes them count again."""
        if md == -1 and seq > 0 and subject:
            for c in list(self.consumers.values()):
                c.dec_stream_pending(seq, subject)
        elif md < 0:
            for c in list(self.consumers.values()):
                c.stream_num_pending()

    def watch_storage_for_consumers(self) -> None:
        if not getattr(self, "_storage_watched", False):
            self._storage_watched = True
            self.store.register_storage_updates(self.storage_updated)

    # -- answers ------------------------------------------------------------------------

    def used_bytes(self) -> int:
        return self.store.fast_state().bytes

    def config_json(self, *, meta_extra: bool = True) -> dict[str, Any]:
        """The configuration as nats-server answers it (metadata gets the server's level and
        version in create/update/info answers only)."""
        cfg = dict(self.config)
        md = dict(cfg.get("metadata") or {})
        md.setdefault("_nats.req.level", "1" if cfg.get("allow_msg_ttl") or cfg.get("subject_delete_marker_ttl") else "0")
        if meta_extra:
            md["_nats.level"] = "4"
            md["_nats.ver"] = "2.14.0"
        cfg["metadata"] = dict(sorted(md.items()))
        return cfg

    def state_json(self) -> dict[str, Any]:
        st = self.store.state(deleted=False)
        out: dict[str, Any] = {
            "messages": st.msgs,
            "bytes": st.bytes,
            "first_seq": st.first_seq,
            "first_ts": go_time(st.first_ts / 1e9) if st.first_ts else _ZERO_TIME,
            "last_seq": st.last_seq,
            "last_ts": go_time(st.last_ts / 1e9) if st.last_ts else _ZERO_TIME,
        }
        if st.num_subjects:
            out["num_subjects"] = st.num_subjects
        if st.num_deleted:
            out["num_deleted"] = st.num_deleted
        out["consumer_count"] = len(self.consumers)
        return out

    def info_json(self) -> dict[str, Any]:
        return {
            "config": self.config_json(),
            "created": go_time(self.created),
            "state": self.state_json(),
            "cluster": {"leader": self.js.server.name},
            "ts": go_time(time.time()),
        }


def _store_error(e: StoreError) -> ApiError:
    text = str(e)
    if "maximum messages per subject" in text:
        return api_error(errors.STREAM_STORE_FAILED_F, err=text)
    return api_error(errors.STREAM_STORE_FAILED_F, err=text)
