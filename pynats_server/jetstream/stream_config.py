"""Stream configurations: decoding, defaults, validation and updates (nats-server 2.14's
checkStreamCfg, configUpdateCheck and the create/update handlers' own checks).

A configuration is a dict holding every StreamConfig field, in nats-server's field order,
with Go's zero value when unset (`full()`); `to_json()` gives what nats-server marshals
(omitempty fields left out when zero). Decisions raise ApiError with nats-server's codes and
texts, in nats-server's order of checks. Sans-IO: what a check needs to know about the
account (other streams, limits) comes in a `StreamEnv`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.subjects import is_subset_match, subjects_collide
from . import errors
from .errors import ApiError, api_error
from .reqjson import (
    DURATION,
    INT,
    INT32,
    INT64,
    UINT64,
    Bool,
    Enum,
    GoJSONError,
    Map,
    Ptr,
    Slice,
    Str,
    Struct,
    Time,
    decode,
    enum_of,
    go_quote,
    struct,
)
from .transform import TransformError, new_transform, validate_mapping
from .versioning import API_LEVEL

MS = 1_000_000
SECOND = 1_000_000_000
DEFAULT_DUPLICATE_WINDOW = 120 * SECOND
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4 * 1024
MAX_METADATA_LEN = 128 * 1024
MAX_REPLICAS = 5
SERVER_VERSION = "2.14.0"
REQ_LEVEL_KEY = "_nats.req.level"
VER_KEY = "_nats.ver"
LEVEL_KEY = "_nats.level"

# ---------------------------------------------------------------------------------------------
# The request schema (StreamConfigRequest = StreamConfig + pedantic).


def _compression(raw: str, v: Any) -> str:
    if not isinstance(v, str) or raw.startswith(("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "-")):
        if v is None:
            raise GoJSONError("unknown compression algorithm")
        kind = "number" if raw[:1] in "-0123456789" else "bool" if isinstance(v, bool) else \
            "array" if isinstance(v, list) else "object"
        raise GoJSONError(f"json: cannot unmarshal {kind} into Go value of type string")
    if v in ("s2", "none"):
        return v
    raise GoJSONError("unknown compression algorithm")


RETENTION = enum_of({'"limits"': "limits", '"interest"': "interest", '"workqueue"': "workqueue"})
DISCARD = enum_of({'"old"': "old", '"new"': "new"}, fold=True)
STORAGE = enum_of({'"file"': "file", '"memory"': "memory"})
PERSIST_MODE = enum_of({'"default"': "default", '"async"': "async", '""': "default"})
COMPRESSION = Enum(decode=_compression)

_TRANSFORM = struct("SubjectTransformConfig", [((), {"src": Str(), "dest": Str()})])
_EXTERNAL = struct("ExternalStream", [((), {"api": Str(), "deliver": Str()})])
_SOURCE_CONSUMER = struct("StreamConsumerSource", [((), {"name": Str(), "deliver_subject": Str()})])
_SOURCE = struct("StreamSource", [((), {
    "name": Str(), "opt_start_seq": UINT64, "opt_start_time": Ptr(Time()), "filter_subject": Str(),
    "subject_transforms": Slice(_TRANSFORM, "[]server.SubjectTransformConfig"), "external": Ptr(_EXTERNAL),
    "consumer": Ptr(_SOURCE_CONSUMER),
})])  # fmt: skip
_PLACEMENT = struct("Placement", [((), {"cluster": Str(), "tags": Slice(), "preferred": Str()})])
_REPUBLISH = struct("RePublish", [((), {"src": Str(), "dest": Str(), "headers_only": Bool()})])
_CONSUMER_LIMITS = struct("StreamConsumerLimits", [((), {"inactive_threshold": DURATION, "max_ack_pending": INT})])

CONFIG_TYPES: dict[str, Any] = {
    "name": Str(), "description": Str(), "subjects": Slice(), "retention": RETENTION,
    "max_consumers": INT, "max_msgs": INT64, "max_bytes": INT64, "max_age": DURATION,
    "max_msgs_per_subject": INT64, "max_msg_size": INT32, "discard": DISCARD, "storage": STORAGE,
    "num_replicas": INT, "no_ack": Bool(), "duplicate_window": DURATION, "placement": Ptr(_PLACEMENT),
    "mirror": Ptr(_SOURCE), "sources": Slice(Ptr(_SOURCE), "[]*server.StreamSource"),
    "compression": COMPRESSION, "first_seq": UINT64, "subject_transform": Ptr(_TRANSFORM),
    "republish": Ptr(_REPUBLISH), "allow_direct": Bool(), "mirror_direct": Bool(),
    "discard_new_per_subject": Bool(), "sealed": Bool(), "deny_delete": Bool(), "deny_purge": Bool(),
    "allow_rollup_hdrs": Bool(), "consumer_limits": _CONSUMER_LIMITS, "allow_msg_ttl": Bool(),
    "subject_delete_marker_ttl": DURATION, "allow_msg_counter": Bool(), "allow_atomic": Bool(),
    "allow_msg_schedules": Bool(), "persist_mode": PERSIST_MODE, "allow_batched": Bool(),
    "metadata": Map(),
}  # fmt: skip
CONFIG_REQUEST: Struct = struct("StreamConfigRequest", [(("StreamConfig",), CONFIG_TYPES), ((), {"pedantic": Bool()})])

# Every StreamConfig field in nats-server's order: (key, zero value, omitempty).
FIELDS: tuple[tuple[str, Any, bool], ...] = (
    ("name", "", False), ("description", "", True), ("subjects", None, True),
    ("retention", "limits", False), ("max_consumers", 0, False), ("max_msgs", 0, False),
    ("max_bytes", 0, False), ("max_age", 0, False), ("max_msgs_per_subject", 0, False),
    ("max_msg_size", 0, True), ("discard", "old", False), ("storage", "file", False),
    ("num_replicas", 0, False), ("no_ack", False, True), ("duplicate_window", 0, True),
    ("placement", None, True), ("mirror", None, True), ("sources", None, True),
    ("compression", "none", False), ("first_seq", 0, True), ("subject_transform", None, True),
    ("republish", None, True), ("allow_direct", False, False), ("mirror_direct", False, False),
    ("discard_new_per_subject", False, True), ("sealed", False, False), ("deny_delete", False, False),
    ("deny_purge", False, False), ("allow_rollup_hdrs", False, False), ("consumer_limits", None, False),
    ("allow_msg_ttl", False, False), ("subject_delete_marker_ttl", 0, True),
    ("allow_msg_counter", False, True), ("allow_atomic", False, True), ("allow_msg_schedules", False, True),
    ("persist_mode", "default", True), ("allow_batched", False, True), ("metadata", None, True),
)  # fmt: skip
FIELD_KEYS = tuple(k for k, _, _ in FIELDS)

# Nested structs' fields in order, with omitempty.
_SOURCE_FIELDS = (("name", False), ("opt_start_seq", True), ("opt_start_time", True), ("filter_subject", True),
                  ("subject_transforms", True), ("external", True), ("consumer", True))  # fmt: skip
_PLACEMENT_FIELDS = (("cluster", True), ("tags", True), ("preferred", True))
_REPUBLISH_FIELDS = (("src", True), ("dest", False), ("headers_only", True))
_LIMITS_FIELDS = (("inactive_threshold", True), ("max_ack_pending", True))
_TRANSFORM_FIELDS = (("src", False), ("dest", False))
_EXTERNAL_FIELDS = (("api", False), ("deliver", False))
_SCONSUMER_FIELDS = (("name", True), ("deliver_subject", True))


def full(partial: dict[str, Any]) -> dict[str, Any]:
    """A configuration with every field (Go's zero values where `partial` has none)."""
    cfg: dict[str, Any] = {}
    for k, zero, _ in FIELDS:
        v = partial.get(k, zero)
        if v is None:
            v = zero
        cfg[k] = copy.deepcopy(v)
    if cfg["consumer_limits"] is None:
        cfg["consumer_limits"] = {}
    return cfg


def decode_request(body: bytes, *, strict: bool = True) -> tuple[dict[str, Any], bool]:
    """(the configuration, pedantic) of a CREATE/UPDATE body; raises ApiError 10025."""
    try:
        doc = decode(body, CONFIG_REQUEST, strict=strict)
    except GoJSONError as e:
        raise api_error(errors.INVALID_JSON, err=str(e)) from None
    pedantic = bool(doc.pop("pedantic", False))
    return full(doc), pedantic


# ---------------------------------------------------------------------------------------------
# JSON as nats-server writes it


def _zero(v: Any) -> bool:
    return v is None or v is False or v == 0 or v == "" or v == [] or v == {}


def _obj(d: dict[str, Any] | None, fields: tuple[tuple[str, bool], ...]) -> dict[str, Any]:
    d = d or {}
    out: dict[str, Any] = {}
    for k, omit in fields:
        v = d.get(k)
        if omit and _zero(v):
            continue
        if v is None:
            v = "" if k not in ("opt_start_seq",) else 0
        out[k] = v
    return out


def _source_json(s: dict[str, Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    out = _obj(s, _SOURCE_FIELDS)
    if "subject_transforms" in out:
        out["subject_transforms"] = [_obj(t, _TRANSFORM_FIELDS) for t in out["subject_transforms"]]
    if "external" in out:
        out["external"] = _obj(out["external"], _EXTERNAL_FIELDS)
    if "consumer" in out:
        out["consumer"] = _obj(out["consumer"], _SCONSUMER_FIELDS)
    return out


def to_json(cfg: dict[str, Any], *, dynamic: bool = False) -> dict[str, Any]:
    """The configuration as nats-server marshals it; `dynamic`: the server's version and API
    level added to the metadata (create, update and info answers)."""
    out: dict[str, Any] = {}
    for k, zero, omit in FIELDS:
        v = cfg.get(k)
        if k == "metadata" and dynamic:
            md = dict(v or {})
            md[VER_KEY] = SERVER_VERSION
            md[LEVEL_KEY] = str(API_LEVEL)
            v = md
        if omit and (_zero(v) or v == zero):
            continue
        if k == "placement":
            v = _obj(v, _PLACEMENT_FIELDS)
        elif k == "mirror":
            v = _source_json(v)
        elif k == "sources":
            v = [_source_json(s) for s in v or ()]
        elif k in ("subject_transform",):
            v = _obj(v, _TRANSFORM_FIELDS)
        elif k == "republish":
            v = _obj(v, _REPUBLISH_FIELDS)
        elif k == "consumer_limits":
            v = _obj(v, _LIMITS_FIELDS)
        elif k == "metadata":
            v = dict(sorted((v or {}).items()))
        elif k == "subjects" and v is None:
            v = []
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# Metadata (jetstream_versioning.go)


def set_static_metadata(cfg: dict[str, Any]) -> None:
    """The required API level of the configuration's features; dynamic keys removed."""
    md = dict(cfg.get("metadata") or {})
    md.pop(VER_KEY, None)
    md.pop(LEVEL_KEY, None)
    level = 0
    if cfg.get("allow_msg_ttl") or (cfg.get("subject_delete_marker_ttl") or 0) > 0:
        level = max(level, 1)
    if cfg.get("allow_msg_counter") or cfg.get("allow_atomic") or cfg.get("allow_msg_schedules"):
        level = max(level, 2)
    if cfg.get("persist_mode") == "async":
        level = max(level, 2)
    if cfg.get("allow_batched"):
        level = max(level, 4)
    md[REQ_LEVEL_KEY] = str(level)
    cfg["metadata"] = md


def copy_metadata(cfg: dict[str, Any], prev: dict[str, Any]) -> None:
    """copyStreamMetadata: the previous required level replaces the new one (for comparing)."""
    md = dict(cfg.get("metadata") or {})
    md.pop(VER_KEY, None)
    md.pop(LEVEL_KEY, None)
    pmd = prev.get("metadata") or {}
    if REQ_LEVEL_KEY in pmd:
        md[REQ_LEVEL_KEY] = pmd[REQ_LEVEL_KEY]
    else:
        md.pop(REQ_LEVEL_KEY, None)
    cfg["metadata"] = md or None


# ---------------------------------------------------------------------------------------------
# Subjects and names


def is_valid_name(name: str) -> bool:
    """isValidAssetName."""
    return bool(name) and not any(c in name for c in " \t\r\n\f.*>\\/")


def is_valid_subject(subject: str) -> bool:
    if not subject:
        return False
    fwc = False
    for t in subject.split("."):
        if not t or fwc:
            return False
        if len(t) > 1:
            if any(c in t for c in "\t\n\f\r "):
                return False
            continue
        if t == ">":
            fwc = True
        elif t in " \t\n\r\f":
            return False
    return True


def is_literal(subject: str) -> bool:
    return not any(t in ("*", ">") for t in subject.split("."))


def collide(a: str, b: str) -> bool:
    return a == b or subjects_collide(a.encode(), b.encode())


def subset(subject: str, test: str) -> bool:
    return is_subset_match(subject, test)


# ---------------------------------------------------------------------------------------------
# checkStreamCfg


@dataclass
class AccountLimits:
    """The account limits the checks use (JetStreamAccountLimits)."""

    max_memory: int = -1
    max_storage: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    storage_max_stream_bytes: int = -1
    max_bytes_required: bool = False


@dataclass
class StreamEnv:
    """What the checks need to know beyond the configuration itself."""

    # The configurations of the account's streams by name.
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    limits: AccountLimits = field(default_factory=AccountLimits)
    # The server's duplicates window limit (ns, 0: none).
    max_duplicates: int = 0
    # Reservations and limits of the server (checkAllLimits).
    mem_reserved: int = 0
    store_reserved: int = 0
    max_memory: int = -1
    max_store: int = -1
    lookup: Callable[[str], dict[str, Any] | None] | None = None

    def stream(self, name: str) -> dict[str, Any] | None:
        if self.lookup is not None:
            return self.lookup(name)
        return self.streams.get(name)


def _invalid(text: str) -> ApiError:
    return api_error(errors.STREAM_INVALID_CONFIG_F, err=text)


def _pedantic(text: str) -> ApiError:
    return api_error(errors.PEDANTIC, err=text)


def check_stream_cfg(config: dict[str, Any], env: StreamEnv, pedantic: bool = False) -> dict[str, Any]:
    """The configuration with nats-server's defaults, or ApiError (checkStreamCfg)."""
    name = config["name"]
    if not is_valid_name(name):
        raise _invalid("stream name is required and can not contain '.', '*', '>', '\\', '/'")
    if len(name) > MAX_NAME_LEN:
        raise _invalid(f"stream name is too long, maximum allowed is {MAX_NAME_LEN}")
    if len(config["description"]) > MAX_DESCRIPTION_LEN:
        raise _invalid(f"stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}")
    md_len = sum(len(k) + len(v) for k, v in (config.get("metadata") or {}).items())
    if md_len > MAX_METADATA_LEN:
        raise _invalid(f"stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes")

    cfg = copy.deepcopy(config)
    if cfg["num_replicas"] == 0:
        cfg["num_replicas"] = 1
    if cfg["num_replicas"] > MAX_REPLICAS:
        raise _invalid(f"maximum replicas is {MAX_REPLICAS}")
    if cfg["num_replicas"] < 0:
        raise api_error(errors.REPLICAS_COUNT_CANNOT_BE_NEGATIVE)
    for k in ("max_msgs", "max_msgs_per_subject", "max_bytes", "max_msg_size", "max_consumers"):
        v = cfg[k]
        if v == 0 or v < -1:
            if pedantic and v < -1:
                raise _pedantic(f"{k} must be set to -1")
            cfg[k] = -1
    if cfg["max_age"] < 0:
        raise _invalid("max age can not be negative")
    if cfg["max_age"] and cfg["max_age"] < 100 * MS:
        raise _invalid("max age needs to be >= 100ms")

    lim_dups = env.max_duplicates
    if cfg["duplicate_window"] == 0 and cfg["mirror"] is None and not cfg["sources"]:
        window = DEFAULT_DUPLICATE_WINDOW
        if lim_dups > 0 and window > lim_dups:
            if pedantic:
                raise _pedantic("duplicate window limits are higher than current limits")
            window = lim_dups
        if cfg["max_age"] and cfg["max_age"] < window:
            if pedantic:
                raise _pedantic("duplicate window cannot be bigger than max age")
            cfg["duplicate_window"] = cfg["max_age"]
        else:
            cfg["duplicate_window"] = window
    dw = cfg["duplicate_window"]
    if dw < 0:
        raise _invalid("duplicates window can not be negative")
    if cfg["max_age"] and dw > cfg["max_age"]:
        raise _invalid("duplicates window can not be larger then max age")
    if lim_dups > 0 and dw > lim_dups:
        raise _invalid(f"duplicates window can not be larger then server limit of {_go_duration(lim_dups)}")
    if 0 < dw < 100 * MS:
        raise _invalid("duplicates window needs to be >= 100ms")

    if cfg["deny_purge"] and cfg["allow_rollup_hdrs"]:
        raise _invalid("roll-ups require the purge permission")

    if cfg["allow_msg_counter"]:
        if cfg["discard"] == "new":
            raise _invalid("counter stream cannot use discard new")
        if cfg["allow_msg_ttl"]:
            raise _invalid("counter stream cannot use message TTLs")
        if cfg["retention"] != "limits":
            raise _invalid("counter stream can only use limits retention")

    if cfg["discard_new_per_subject"]:
        if cfg["discard"] != "new":
            raise _invalid("discard new per subject requires discard new policy to be set")
        if cfg["max_msgs_per_subject"] <= 0:
            raise _invalid("discard new per subject requires max msgs per subject > 0")

    sdm = cfg["subject_delete_marker_ttl"]
    if sdm > 0:
        if sdm < SECOND:
            raise _invalid("subject delete marker TTL must be at least 1 second")
        if not cfg["allow_msg_ttl"]:
            if pedantic:
                raise _invalid("subject delete marker cannot be set if message TTLs are disabled")
            cfg["allow_msg_ttl"] = True
        if not cfg["allow_rollup_hdrs"]:
            if pedantic:
                raise _invalid("subject delete marker cannot be set if roll-ups are disabled")
            cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False
    elif sdm < 0:
        raise _invalid("subject delete marker TTL must not be negative")

    if cfg["allow_msg_schedules"] and not cfg["allow_rollup_hdrs"]:
        if pedantic:
            raise _invalid("message scheduling cannot be set if roll-ups are disabled")
        cfg["allow_rollup_hdrs"], cfg["deny_purge"] = True, False

    if cfg["persist_mode"] == "async":
        if cfg["storage"] != "file":
            raise _invalid("async persist mode is only supported on file storage")
        if cfg["num_replicas"] > 1:
            raise _invalid("async persist mode is not supported on replicated streams")
        if cfg["allow_atomic"]:
            raise _invalid("async persist mode is not supported with atomic batch publish")

    stream_subs: list[str] = []
    delivery_prefixes: list[str] = []
    api_prefixes: list[str] = []

    mirror = cfg["mirror"]
    if mirror is not None:
        _check_mirror(cfg, mirror, env, pedantic, stream_subs, delivery_prefixes, api_prefixes)

    if cfg["sources"] and cfg["allow_msg_schedules"]:
        raise api_error(errors.SOURCE_WITH_MSG_SCHEDULES)
    _check_sources(cfg, env, stream_subs, delivery_prefixes, api_prefixes)

    for pfx in delivery_prefixes:
        if not (is_valid_subject(pfx) and is_literal(pfx)):
            raise api_error(errors.STREAM_INVALID_EXTERNAL_DELIVERY_SUBJ, prefix=pfx)
        for sub in stream_subs:
            if collide(sub, f"{pfx}.{sub}"):
                raise api_error(errors.STREAM_EXTERNAL_DEL_PREFIX_OVERLAPS, prefix=pfx, subject=sub)
    for pfx in api_prefixes:
        if not (is_valid_subject(pfx) and is_literal(pfx)):
            raise _invalid(f"stream external api prefix {go_q(pfx)} must be a valid subject without wildcards")
        if collide(pfx, "$JS.API"):
            raise api_error(errors.STREAM_EXTERNAL_API_OVERLAP, prefix=pfx, subject="$JS.API")

    _check_cycles(cfg, env)

    subjects = cfg["subjects"] or []
    if not subjects:
        if mirror is None and not cfg["sources"]:
            cfg["subjects"] = [name]
    else:
        if mirror is not None:
            raise api_error(errors.MIRROR_WITH_SUBJECTS)
        seen: set[str] = set()
        for i, subj in enumerate(subjects):
            if not is_valid_subject(subj):
                raise _invalid("invalid subject")
            if subj in seen:
                raise _invalid("duplicate subjects detected")
            if subj == ">":
                if not cfg["no_ack"]:
                    raise _invalid("capturing all subjects requires no-ack to be true")
                if cfg["num_replicas"] != 1:
                    raise _invalid("capturing all subjects requires replicas of 1")
            if not cfg["no_ack"]:
                for ns in ("$JS.>", "$JSC.>", "$NRG.>"):
                    if collide(subj, ns) and not subset(subj, "$JS.EVENT.>"):
                        raise _invalid("subjects that overlap with jetstream api require no-ack to be true")
                if collide(subj, "$SYS.>") and not subset(subj, "$SYS.ACCOUNT.>"):
                    raise _invalid("subjects that overlap with system api require no-ack to be true")
            for other in subjects[i + 1:]:
                if collide(other, subj):
                    raise _invalid(f"subject {go_q(subj)} overlaps with {go_q(other)}")
            seen.add(subj)

    if not cfg["subjects"] and not cfg["sources"] and mirror is None:
        raise _invalid("stream needs at least one configured subject or be a source/mirror")

    lim = env.limits
    per_stream = lim.memory_max_stream_bytes if cfg["storage"] == "memory" else lim.storage_max_stream_bytes
    if lim.max_bytes_required and cfg["max_bytes"] <= 0:
        raise api_error(errors.STREAM_MAX_BYTES_REQUIRED)
    if per_stream > 0 and cfg["max_bytes"] > per_stream:
        raise api_error(errors.STREAM_MAX_STREAM_BYTES_EXCEEDED)

    st = cfg["subject_transform"]
    if st is not None:
        src = st.get("src") or ""
        if src and not is_valid_subject(src):
            raise api_error(errors.STREAM_TRANSFORM_INVALID_SOURCE, err=f"invalid subject {src}")
        try:
            validate_mapping(src, st.get("dest") or "")
        except TransformError as e:
            raise api_error(errors.STREAM_TRANSFORM_INVALID_DESTINATION, err=str(e)) from None

    rp = cfg["republish"]
    if rp is not None:
        if not rp.get("src"):
            if pedantic:
                raise _pedantic("republish source can not be empty")
            rp["src"] = ">"
        if (rp.get("dest") == ">" and rp["src"] == ">" and st is not None and len(cfg["subjects"] or []) == 1
                and st.get("src") == cfg["subjects"][0]):  # fmt: skip
            if pedantic:
                raise _pedantic("implicit republish based on subject transform")
            rp["src"] = rp["dest"] = st.get("dest") or ""
        dest = rp.get("dest") or ""
        if any(collide(dest, s) for s in cfg["subjects"] or []):
            raise _invalid("stream configuration for republish destination forms a cycle")
        try:
            new_transform(rp["src"], dest)
        except TransformError:
            raise _invalid(
                f"stream configuration for republish with transform from '{rp['src']}' to '{dest}' not valid"
            ) from None

    pl = cfg["placement"]
    if pl is not None and not any(pl.get(k) for k in ("cluster", "tags", "preferred")):
        cfg["placement"] = None
    elif pl is not None and pl.get("preferred"):
        raise _invalid("preferred server not permitted in placement")
    return cfg


def go_q(s: str) -> str:
    return go_quote(s)


def _go_duration(ns: int) -> str:
    from ..gotime import go_duration

    return go_duration(ns / 1e9)


def _check_mirror(cfg: dict[str, Any], m: dict[str, Any], env: StreamEnv, pedantic: bool,
                  stream_subs: list[str], delivery: list[str], apis: list[str]) -> None:
    if cfg["first_seq"] > 0:
        raise api_error(errors.MIRROR_WITH_FIRST_SEQ)
    if cfg["subjects"]:
        raise api_error(errors.MIRROR_WITH_SUBJECTS)
    if cfg["sources"]:
        raise api_error(errors.MIRROR_WITH_SOURCES)
    if cfg["allow_msg_counter"]:
        raise api_error(errors.MIRROR_WITH_COUNTERS)
    if cfg["allow_atomic"]:
        raise api_error(errors.MIRROR_WITH_ATOMIC_PUBLISH)
    if cfg["allow_batched"]:
        raise api_error(errors.MIRROR_WITH_BATCH_PUBLISH)
    if cfg["allow_msg_schedules"]:
        raise api_error(errors.MIRROR_WITH_MSG_SCHEDULES)
    c = m.get("consumer")
    if c is not None:
        if (not is_valid_name(c.get("name") or "") or not is_literal(c.get("deliver_subject") or "")
                or not is_valid_subject(c.get("deliver_subject") or "") or m.get("opt_start_seq")
                or m.get("opt_start_time") is not None or m.get("filter_subject")):  # fmt: skip
            raise api_error(errors.MIRROR_DURABLE_CONSUMER_CFG_INVALID)
    trs = m.get("subject_transforms") or []
    if m.get("filter_subject") and trs:
        raise api_error(errors.MIRROR_MULTIPLE_FILTERS_NOT_ALLOWED)
    if cfg["subject_delete_marker_ttl"] > 0:
        raise _invalid("subject delete markers forbidden on mirrors")
    for i, tr in enumerate(trs):
        src = tr.get("src") or ""
        if src and not is_valid_subject(src):
            raise api_error(errors.MIRROR_INVALID_SUBJECT_FILTER, err=f"invalid subject {src}")
        try:
            validate_mapping(src, tr.get("dest") or "")
        except TransformError as e:
            raise api_error(errors.MIRROR_INVALID_TRANSFORM_DESTINATION, err=str(e)) from None
        for j, other in enumerate(trs):
            if i != j and collide(src, other.get("src") or ""):
                raise api_error(errors.MIRROR_OVERLAPPING_SUBJECT_FILTERS)
    if m.get("external") is None:
        if not is_valid_name(m.get("name") or ""):
            raise api_error(errors.MIRROR_INVALID_STREAM_NAME)
        origin = env.stream(m["name"])
        if origin is not None:
            stream_subs.extend(origin.get("subjects") or [])
            mms = origin.get("max_msg_size") or 0
            if cfg["max_msg_size"] > 0 and mms > 0 and cfg["max_msg_size"] < mms:
                raise api_error(errors.MIRROR_MAX_MESSAGE_SIZE_TOO_BIG)
            if pedantic and cfg["mirror_direct"] != bool(origin.get("allow_direct")):
                raise _pedantic("origin stream has direct get set, mirror has it disabled")
            cfg["mirror_direct"] = bool(origin.get("allow_direct"))
    else:
        ext = m["external"]
        if ext.get("deliver"):
            delivery.append(ext["deliver"])
        if ext.get("api"):
            apis.append(ext["api"])


def get_hash(name: str, size: int = 8) -> str:
    """nats-server's getHash: the first bytes of a SHA-256, as [0-9A-Za-z] digits."""
    import hashlib

    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    b = hashlib.sha256(name.encode()).digest()
    return "".join(digits[b[i] % 62] for i in range(size))


def source_iname(src: dict[str, Any]) -> str:
    """composeIName: a source's identity (stream, external prefix, consumer, filters)."""
    iname = src.get("name") or ""
    ext = src.get("external")
    if ext is not None:
        iname += ":" + get_hash(ext.get("api") or "")
    c = src.get("consumer")
    if c is not None:
        iname += ":C=" + get_hash(c.get("name") or "")
    trs = src.get("subject_transforms") or []
    if not trs:
        source, dest = src.get("filter_subject") or ">", ">"
    else:
        source = "\f".join(t.get("src") or ">" for t in trs)
        dest = "\f".join(t.get("dest") or ">" for t in trs)
    return f"{iname} {source} {dest}"


def _check_sources(cfg: dict[str, Any], env: StreamEnv, stream_subs: list[str], delivery: list[str],
                   apis: list[str]) -> None:
    inames: set[str] = set()
    cnames: set[str] = set()
    for src in cfg["sources"] or []:
        if src is None or not is_valid_name(src.get("name") or ""):
            raise api_error(errors.SOURCE_INVALID_STREAM_NAME)
        iname = source_iname(src)
        if iname in inames:
            raise api_error(errors.SOURCE_DUPLICATE_DETECTED)
        inames.add(iname)
        trs = src.get("subject_transforms") or []
        if src.get("filter_subject") and trs:
            raise api_error(errors.SOURCE_MULTIPLE_FILTERS_NOT_ALLOWED)
        for tr in trs:
            s = tr.get("src") or ""
            if s and not is_valid_subject(s):
                raise api_error(errors.SOURCE_INVALID_SUBJECT_FILTER, err=f"invalid subject {s}")
            try:
                validate_mapping(s, tr.get("dest") or "")
            except TransformError as e:
                raise api_error(errors.SOURCE_INVALID_TRANSFORM_DESTINATION, err=str(e)) from None
        for i, tr in enumerate(trs):
            for j, other in enumerate(trs):
                if i != j and subset(tr.get("src") or "", other.get("src") or ""):
                    raise api_error(errors.SOURCE_OVERLAPPING_SUBJECT_FILTERS)
        c = src.get("consumer")
        if c is not None:
            if (not is_valid_name(c.get("name") or "") or not is_literal(c.get("deliver_subject") or "")
                    or not is_valid_subject(c.get("deliver_subject") or "") or src.get("opt_start_seq")
                    or src.get("opt_start_time") is not None or src.get("filter_subject")):  # fmt: skip
                raise api_error(errors.SOURCE_DURABLE_CONSUMER_CFG_INVALID)
            cname = f"{src.get('name')} {c.get('name')}"
            if cname in cnames:
                raise api_error(errors.SOURCE_DURABLE_CONSUMER_DUPLICATE_DETECTED)
            cnames.add(cname)
        ext = src.get("external")
        if ext is None:
            origin = env.stream(src["name"])
            if origin is not None:
                stream_subs.extend(origin.get("subjects") or [])
                mms = origin.get("max_msg_size") or 0
                if cfg["max_msg_size"] > 0 and mms > 0 and cfg["max_msg_size"] < mms:
                    raise api_error(errors.SOURCE_MAX_MESSAGE_SIZE_TOO_BIG)
        else:
            if ext.get("deliver"):
                delivery.append(ext["deliver"])
            if ext.get("api"):
                apis.append(ext["api"])


def _check_cycles(cfg: dict[str, Any], env: StreamEnv) -> None:
    def overlaps(subjects: list[str], filt: str) -> bool:
        if not filt:
            return True
        return any(collide(s, filt) for s in subjects)

    to_visit = [cfg]
    visited: set[str] = set()
    while to_visit:
        c = to_visit.pop(0)
        visited.add(c["name"])
        for src in c.get("sources") or []:
            if src is None or src.get("external") is not None:
                continue
            if src["name"] in visited:
                if overlaps(c.get("subjects") or [], src.get("filter_subject") or ""):
                    raise _invalid("detected cycle")
            else:
                other = env.stream(src["name"])
                if other is not None:
                    to_visit.append(other)
        m = c.get("mirror")
        if m is not None and m.get("external") is None:
            if m.get("name") in visited:
                raise _invalid("detected cycle")
            other = env.stream(m.get("name") or "")
            if other is not None:
                to_visit.append(other)


# ---------------------------------------------------------------------------------------------
# Limits (jsNonClusteredStreamLimitsCheck, checkAllLimits)


def check_bytes_limits(env: StreamEnv, add_bytes: int, storage: str, reserved: int, offset: int = 0) -> None:
    """checkBytesLimits with the server check on."""
    if add_bytes < 0:
        add_bytes = 1
    total = add_bytes + offset
    lim = env.limits
    if storage == "memory":
        if lim.max_memory >= 0 and (reserved > lim.max_memory or total > lim.max_memory - reserved):
            raise api_error(errors.MEMORY_RESOURCES_EXCEEDED)
        if env.max_memory >= 0 and (env.mem_reserved > env.max_memory or total > env.max_memory - env.mem_reserved):
            raise api_error(errors.MEMORY_RESOURCES_EXCEEDED)
    else:
        if lim.max_storage >= 0 and (reserved > lim.max_storage or total > lim.max_storage - reserved):
            raise api_error(errors.STORAGE_RESOURCES_EXCEEDED)
        if env.max_store >= 0 and (env.store_reserved > env.max_store or total > env.max_store - env.store_reserved):
            raise api_error(errors.STORAGE_RESOURCES_EXCEEDED)


def check_limits(env: StreamEnv, cfg: dict[str, Any], reserved: int, offset: int = 0) -> None:
    lim = env.limits
    mc = cfg.get("max_consumers") or 0
    if mc > 0 and lim.max_consumers > 0 and mc > lim.max_consumers:
        raise api_error(errors.MAXIMUM_CONSUMERS_LIMIT)
    check_bytes_limits(env, cfg.get("max_bytes") or 0, cfg.get("storage") or "file", reserved, offset)


def reservation(env: StreamEnv, cfg: dict[str, Any]) -> int:
    """tieredReservation (no tiers): the max_bytes of the account's other streams of the same
    storage type."""
    total = 0
    for name, other in env.streams.items():
        if name == cfg["name"]:
            continue
        if other.get("max_bytes", 0) > 0 and other.get("storage") == cfg.get("storage"):
            total += other["max_bytes"]
    return total


def non_clustered_limits_check(env: StreamEnv, cfg: dict[str, Any]) -> None:
    """jsNonClusteredStreamLimitsCheck (before the configuration is checked)."""
    lim = env.limits
    count = sum(1 for n in env.streams if n != cfg["name"])
    if lim.max_streams > 0 and count >= lim.max_streams:
        raise api_error(errors.MAXIMUM_STREAMS_LIMIT)
    check_limits(env, cfg, reservation(env, cfg))


# ---------------------------------------------------------------------------------------------
# Updates (configUpdateCheck)


def config_update_check(old: dict[str, Any], new: dict[str, Any], env: StreamEnv,
                        pedantic: bool = False) -> dict[str, Any]:
    cfg = check_stream_cfg(new, env, pedantic)
    if cfg["name"] != old["name"]:
        raise _invalid("stream configuration name must match original")
    if cfg["storage"] != old["storage"]:
        raise _invalid("stream configuration update can not change storage type")
    if cfg["retention"] != old["retention"] and "workqueue" in (old["retention"], cfg["retention"]):
        raise _invalid("stream configuration update can not change retention policy to/from workqueue")
    if not cfg["sealed"] and old["sealed"]:
        raise _invalid("stream configuration update can not unseal a sealed stream")
    if not cfg["deny_delete"] and old["deny_delete"]:
        raise _invalid("stream configuration update can not cancel deny message deletes")
    if not cfg["deny_purge"] and old["deny_purge"]:
        raise _invalid("stream configuration update can not cancel deny purge")
    if cfg["mirror"] is not None and cfg["mirror"] != old["mirror"]:
        raise api_error(errors.STREAM_MIRROR_NOT_UPDATABLE)
    if cfg["discard_new_per_subject"]:
        if cfg["discard"] != "new":
            raise _invalid("discard new per subject requires discard new policy to be set")
        if cfg["max_msgs_per_subject"] <= 0:
            raise _invalid("discard new per subject requires max msgs per subject > 0")
    if old["allow_msg_ttl"] and not cfg["allow_msg_ttl"]:
        raise _invalid("message TTL status can not be disabled")
    if cfg["allow_msg_counter"] != old["allow_msg_counter"]:
        raise _invalid("stream configuration update can not change message counter setting")
    if old["allow_msg_schedules"] and not cfg["allow_msg_schedules"]:
        raise _invalid("message schedules can not be disabled")
    if old["persist_mode"] != cfg["persist_mode"]:
        raise _invalid("stream configuration update can not change persist mode")
    if cfg["sealed"]:
        cfg["max_age"] = 0
        cfg["discard"] = "new"
        cfg["deny_delete"] = cfg["deny_purge"] = True
        cfg["allow_rollup_hdrs"] = False
    diff = max(max(cfg["max_bytes"], 0) - max(old["max_bytes"], 0), 0)
    reserved = reservation(env, cfg)
    if old["max_bytes"] > 0:
        reserved += old["max_bytes"]
    check_limits(env, {**cfg, "max_bytes": diff}, reserved)
    return cfg
