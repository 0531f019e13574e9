"""A consumer's configuration: decoding it as nats-server's Go JSON does, its defaults, the
checks nats-server makes, and the JSON it answers (nats-server's ConsumerConfig field order,
zero values omitted). No I/O here: the consumer (consumer.py) and the API (consumer_api.py)
use these.

Durations are ints in nanoseconds, times are `GoTime` (nanoseconds and the UTC offset they
were written with, which Go keeps when it writes them back).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

from ..protocol.subjects import is_literal, is_subset_match, is_valid_subject
from . import errors, versioning
from .errors import ApiError, api_error

ACK_WAIT_DEFAULT = 30_000_000_000
DELETE_WAIT_DEFAULT = 5_000_000_000  # inactive threshold of ephemerals
DEFAULT_MAX_ACK_PENDING = 1000
WAIT_QUEUE_DEFAULT_MAX = 512
PINNED_TTL_DEFAULT = 120_000_000_000
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4 * 1024
MAX_METADATA_LEN = 128 * 1024
SOURCE_HEALTH_HB = 1_000_000_000

DELIVER_POLICIES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK_POLICIES = ("none", "all", "explicit", "flow_control")
REPLAY_POLICIES = ("instant", "original")
PRIORITY_POLICIES = ("none", "overflow", "pinned_client", "prioritized")

REQ_LEVEL_KEY = "_nats.req.level"
SERVER_LEVEL_KEY = "_nats.level"
SERVER_VERSION_KEY = "_nats.ver"
SERVER_VERSION = "2.14.0"
API_LEVEL = str(versioning.API_LEVEL)

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9/_=-]{1,16}$")


# ------------------------------------------------------------------------------------- times


@dataclasses.dataclass(frozen=True, slots=True)
class GoTime:
    """A time as Go holds it after decoding RFC 3339: instant (ns) and zone offset (s)."""

    ns: int
    offset: int = 0

    def is_zero(self) -> bool:
        return self.ns == ZERO_TIME_NS and self.offset == 0

    def utc(self) -> GoTime:
        return GoTime(self.ns, 0)

    def text(self) -> str:
        return format_time(self.ns, self.offset)


# Go's zero time (0001-01-01T00:00:00Z) in ns since the Unix epoch.
ZERO_TIME_NS = -62135596800 * 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)


def _time_error(text: str) -> str:
    """Go's time.Parse error for RFC 3339: the layout element that did not match and the rest
    of the value at that point."""
    layout = "2006-01-02T15:04:05Z07:00"
    v = text
    steps = (("2006", r"\d{4}"), ("-", "-"), ("01", r"\d\d"), ("-", "-"), ("02", r"\d\d"), ("T", "T"),
             ("15", r"\d\d"), (":", ":"), ("04", r"\d\d"), (":", ":"), ("05", r"\d\d(?:\.\d+)?"),
             ("Z07:00", r"Z|[+-]\d\d:\d\d"))  # fmt: skip
    for elem, rx in steps:
        m = re.match(rx, v)
        if m is None:
            return f"parsing time {go_quote(text)} as {go_quote(layout)}: cannot parse {go_quote(v)} as {go_quote(elem)}"
        v = v[m.end():]
    if v:
        return f"parsing time {go_quote(text)}: extra text: {go_quote(v)}"
    return f"parsing time {go_quote(text)}: out of range"


def parse_time(text: str) -> GoTime:
    """RFC 3339 (with up to 9 fraction digits) as Go's time.Time UnmarshalJSON takes it."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(_time_error(text))
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = int((m.group(7) or "").ljust(9, "0"))
    offset = 0
    if m.group(9):
        offset = (int(m.group(10)) * 3600 + int(m.group(11)) * 60) * (1 if m.group(9) == "+" else -1)
    try:
        base = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc)
    except ValueError:
        what = "month" if not 1 <= mo <= 12 else "day" if not 1 <= d <= 31 else "hour" if h > 23 else (
            "minute" if mi > 59 else "second")  # fmt: skip
        raise ValueError(f"parsing time {go_quote(text)}: {what} out of range") from None
    secs = (base - _EPOCH) // dt.timedelta(seconds=1) - offset
    return GoTime(secs * 1_000_000_000 + frac, offset)


def format_time(ns: int, offset: int = 0) -> str:
    """Go's RFC3339Nano: trailing zeros of the fraction dropped, Z for a zero offset."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = _EPOCH + dt.timedelta(seconds=secs + offset)
    out = t.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0")
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    if offset == 0:
        return out + "Z"
    sign = "+" if offset > 0 else "-"
    h, m = divmod(abs(offset) // 60, 60)
    return f"{out}{sign}{h:02d}:{m:02d}"


def now_time() -> GoTime:
    import time

    return GoTime(time.time_ns())


# --------------------------------------------------------------------------------- durations

_DUR_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
              "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip
_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1.5s", "300ms", "1h2m"), in ns; ValueError if invalid."""
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if m is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return -int(total) if neg else int(total)


# ---------------------------------------------------------------------------- the config


@dataclasses.dataclass
class ConsumerConfig:
    """nats-server's ConsumerConfig, field for field (zero values as Go's)."""

    durable_name: str = ""
    name: str = ""
    description: str = ""
    deliver_policy: str = "all"
    opt_start_seq: int = 0
    opt_start_time: GoTime | None = None
    ack_policy: str = "none"
    ack_wait: int = 0
    max_deliver: int = 0
    backoff: list[int] | None = None
    filter_subject: str = ""
    filter_subjects: list[str] | None = None
    replay_policy: str = "instant"
    rate_limit_bps: int = 0
    sample_freq: str = ""
    max_waiting: int = 0
    max_ack_pending: int = 0
    flow_control: bool = False
    headers_only: bool = False
    max_batch: int = 0
    max_expires: int = 0
    max_bytes: int = 0
    deliver_subject: str = ""
    deliver_group: str = ""
    idle_heartbeat: int = 0
    inactive_threshold: int = 0
    num_replicas: int = 0
    mem_storage: bool = False
    direct: bool = False
    sourcing: bool = False
    metadata: dict[str, str] | None = None
    pause_until: GoTime | None = None
    priority_groups: list[str] | None = None
    priority_policy: str = "none"
    priority_timeout: int = 0

    def copy(self) -> ConsumerConfig:
        c = dataclasses.replace(self)
        if c.backoff is not None:
            c.backoff = list(c.backoff)
        if c.filter_subjects is not None:
            c.filter_subjects = list(c.filter_subjects)
        if c.metadata is not None:
            c.metadata = dict(c.metadata)
        if c.priority_groups is not None:
            c.priority_groups = list(c.priority_groups)
        return c

    # -- derived ------------------------------------------------------------------------

    @property
    def is_durable(self) -> bool:
        return bool(self.durable_name)

    @property
    def is_push(self) -> bool:
        return bool(self.deliver_subject)

    def filters(self) -> list[str]:
        """gatherSubjectFilters: filter_subjects, then filter_subject."""
        out = list(self.filter_subjects or ())
        if self.filter_subject:
            out.append(self.filter_subject)
        return out

    def paused_until_ns(self) -> int:
        p = self.pause_until
        return 0 if p is None or p.is_zero() else p.ns

    # -- JSON out -----------------------------------------------------------------------

    def to_json(self, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """The config as nats-server writes it (omitempty fields left out when zero).
        `metadata` replaces the stored metadata (answers add the server's level)."""
        out: dict[str, Any] = {}
        for f in _FIELDS:
            key, kind = f
            v = getattr(self, key)
            if key == "metadata":
                v = metadata if metadata is not None else v
                if v:
                    out[key] = dict(sorted(v.items()))
                continue
            if kind in _ALWAYS:
                out[key] = v
                continue
            if kind == "time":
                if v is not None:
                    out[key] = v.text()
                continue
            if key == "priority_policy":
                if v != "none":
                    out[key] = v
                continue
            if v:
                out[key] = list(v) if isinstance(v, list) else v
        return out


# (JSON key, kind); the kind says how Go decodes it and whether it is always written.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("durable_name", "str"),
    ("name", "str"),
    ("description", "str"),
    ("deliver_policy", "deliver"),
    ("opt_start_seq", "uint"),
    ("opt_start_time", "time"),
    ("ack_policy", "ack"),
    ("ack_wait", "dur"),
    ("max_deliver", "int"),
    ("backoff", "durs"),
    ("filter_subject", "str"),
    ("filter_subjects", "strs"),
    ("replay_policy", "replay"),
    ("rate_limit_bps", "uint"),
    ("sample_freq", "str"),
    ("max_waiting", "int"),
    ("max_ack_pending", "int"),
    ("flow_control", "bool"),
    ("headers_only", "bool"),
    ("max_batch", "int"),
    ("max_expires", "dur"),
    ("max_bytes", "int"),
    ("deliver_subject", "str"),
    ("deliver_group", "str"),
    ("idle_heartbeat", "dur"),
    ("inactive_threshold", "dur"),
    ("num_replicas", "replicas"),
    ("mem_storage", "bool"),
    ("direct", "bool"),
    ("sourcing", "bool"),
    ("metadata", "map"),
    ("pause_until", "time"),
    ("priority_groups", "strs"),
    ("priority_policy", "priority"),
    ("priority_timeout", "dur"),
)
_ALWAYS = ("deliver", "ack", "replay", "replicas")
_GO_TYPES = {
    "str": "string", "uint": "uint64", "int": "int", "dur": "time.Duration", "bool": "bool",
    "durs": "[]time.Duration", "strs": "[]string", "map": "map[string]string",
    "replicas": "int", "time": "time.Time",
}  # fmt: skip
_ENUMS = {
    "deliver": ({"all": "all", "undefined": "all", "last": "last", "new": "new",
                 "by_start_sequence": "by_start_sequence", "by_start_time": "by_start_time",
                 "last_per_subject": "last_per_subject"}, "can not unmarshal {q}"),
    "ack": ({k: k for k in ACK_POLICIES}, "can not unmarshal {q}"),
    "replay": ({k: k for k in REPLAY_POLICIES}, "can not unmarshal {q}"),
    "priority": ({k: k for k in PRIORITY_POLICIES}, "unknown priority policy: {raw}"),
}  # fmt: skip
_INT_BOUNDS = {"uint": (0, (1 << 64) - 1), "int": (-(1 << 63), (1 << 63) - 1),
               "dur": (-(1 << 63), (1 << 63) - 1), "replicas": (-(1 << 63), (1 << 63) - 1)}  # fmt: skip


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def go_quote(s: str) -> str:
    """Go's %q of a string (close enough for error texts: JSON escaping)."""
    return json.dumps(s, ensure_ascii=False)


class _Decode:
    """Decodes JSON values into Go-typed fields; errors carry Go's unmarshal text."""

    def __init__(self, struct: str, prefix: str) -> None:
        self.struct = struct
        self.prefix = prefix

    def type_error(self, v: Any, key: str, gotype: str, raw: str | None = None) -> ApiError:
        what = _json_type(v)
        if what == "number" and gotype not in ("string", "bool", "[]string", "map[string]string", "time.Time",
                                               "[]time.Duration"):
            # Go names the number only when it was decoding into a number.
            what = "number " + (raw if raw is not None else json.dumps(v))
        return api_error(errors.INVALID_JSON, err=f"json: cannot unmarshal {what} into Go struct field "
                         f"{self.struct}.{self.prefix}{key} of type {gotype}")  # fmt: skip

    def value(self, key: str, kind: str, v: Any) -> Any:
        if kind in _ENUMS:
            table, fmt = _ENUMS[kind]
            if isinstance(v, str) and v in table:
                return table[v]
            raw = json.dumps(v, separators=(",", ":"))
            raise api_error(errors.INVALID_JSON, err=fmt.format(q=go_quote(raw), raw=raw))
        if kind == "str":
            if not isinstance(v, str):
                raise self.type_error(v, key, "string")
            return v
        if kind == "bool":
            if not isinstance(v, bool):
                raise self.type_error(v, key, "bool")
            return v
        if kind in _INT_BOUNDS:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.type_error(v, key, _GO_TYPES[kind])
            if isinstance(v, float):
                raise self.type_error(v, key, _GO_TYPES[kind], raw=_num_text(v))
            lo, hi = _INT_BOUNDS[kind]
            if not lo <= v <= hi:
                raise self.type_error(v, key, _GO_TYPES[kind])
            return v
        if kind == "time":
            if not isinstance(v, str):
                raise self.type_error(v, key, "time.Time")
            try:
                return parse_time(v)
            except ValueError as e:
                raise api_error(errors.INVALID_JSON, err=str(e)) from None
        if kind == "durs":
            if not isinstance(v, list):
                raise self.type_error(v, key, "[]time.Duration")
            return [self.value(key, "dur", x) for x in v]
        if kind == "strs":
            if not isinstance(v, list):
                raise self.type_error(v, key, "[]string")
            return [self.value(key, "str", x) for x in v]
        if kind == "map":
            if not isinstance(v, dict):
                raise self.type_error(v, key, "map[string]string")
            return {k: self.value(key, "str", x) for k, x in v.items()}
        raise AssertionError(kind)


def _num_text(v: float) -> str:
    return repr(v) if v != int(v) else str(int(v)) + ".0"


def decode_config(obj: Any, *, struct: str = "ConsumerConfig", prefix: str = "config.") -> ConsumerConfig:
    """A config from decoded JSON, with Go's rules (unknown keys ignored, null = zero)."""
    cfg = ConsumerConfig()
    if obj is None:
        return cfg
    dec = _Decode(struct, prefix)
    if not isinstance(obj, dict):
        raise api_error(errors.INVALID_JSON, err=f"json: cannot unmarshal {_json_type(obj)} into Go struct "
                        "field CreateConsumerRequest.config of type server.ConsumerConfig")  # fmt: skip
    for key, kind in _FIELDS:
        if key not in obj:
            continue
        v = obj[key]
        if v is None:
            continue
        setattr(cfg, key, dec.value(key, kind, v))
    return cfg


def go_json_error(doc: str | bytes, e: ValueError) -> str:
    """Go's encoding/json syntax error text for what Python's decoder refused."""
    if isinstance(doc, bytes):
        doc = doc.decode("utf-8", errors="replace")
    msg = getattr(e, "msg", str(e))
    pos = getattr(e, "pos", None)
    if pos is None or pos >= len(doc) or msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    ch = doc[pos]
    q = "'" + ("\\" + ch if ch == "'" else ch) + "'"
    if msg.startswith("Expecting property name"):
        return f"invalid character {q} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {q} after object key"
    if msg.startswith("Expecting ','"):
        return f"invalid character {q} after {'object key:value pair' if _in_object(doc, pos) else 'array element'}"
    if msg.startswith("Extra data"):
        return f"invalid character {q} after top-level value"
    return f"invalid character {q} looking for beginning of value"


def _in_object(doc: str, pos: int) -> bool:
    depth: list[str] = []
    in_str = esc = False
    for c in doc[:pos]:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            depth.append(c)
        elif c in "]}" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "{"


def decode_create_request(body: bytes) -> tuple[str, ConsumerConfig, str, bool]:
    """CreateConsumerRequest: (stream_name, config, action, pedantic). nats-server takes an
    empty body as an empty request."""
    if not body.strip():
        return "", ConsumerConfig(), "", False
    try:
        obj = json.loads(body)
    except ValueError as e:
        raise api_error(errors.INVALID_JSON, err=go_json_error(body, e)) from None
    if not isinstance(obj, dict):
        raise api_error(errors.INVALID_JSON, err=f"json: cannot unmarshal {_json_type(obj)} into Go value "
                        "of type server.CreateConsumerRequest")  # fmt: skip
    dec = _Decode("CreateConsumerRequest", "")
    stream = obj.get("stream_name")
    stream = "" if stream is None else dec.value("stream_name", "str", stream)
    cfg = decode_config(obj.get("config"))
    action = obj.get("action")
    act = ""
    if action is not None:
        if action not in ("", "create", "update"):
            raw = json.dumps(action, separators=(",", ":"))
            raise api_error(errors.INVALID_JSON, err=f"unknown consumer action: {raw}")
        act = action
    pedantic = obj.get("pedantic")
    ped = bool(dec.value("pedantic", "bool", pedantic)) if pedantic is not None else False
    return stream, cfg, act, ped


# ------------------------------------------------------------------------------ defaults


@dataclasses.dataclass
class Limits:
    """The limits a consumer config is checked against (server, account, stream)."""

    srv_max_ack_pending: int = 0
    srv_max_request_batch: int = 0
    acc_max_ack_pending: int = -1
    stream_max_ack_pending: int = 0  # the stream's consumer_limits
    stream_inactive_threshold: int = 0


def set_defaults(cfg: ConsumerConfig, lim: Limits, pedantic: bool) -> None:
    """setConsumerConfigDefaults."""

    def pedantic_err(text: str) -> ApiError:
        return api_error(errors.PEDANTIC, err=text)

    if cfg.max_deliver == 0 or cfg.max_deliver < -1:
        if pedantic and cfg.max_deliver < -1:
            raise pedantic_err("max_deliver must be set to -1")
        cfg.max_deliver = -1
    for attr, text in (("max_waiting", "max_waiting must not be negative"),):
        if getattr(cfg, attr) < 0:
            if pedantic:
                raise pedantic_err(text)
            setattr(cfg, attr, 0)
    if cfg.max_ack_pending < -1:
        if pedantic:
            raise pedantic_err("max_ack_pending must be set to -1")
        cfg.max_ack_pending = -1
    for attr, text in (
        ("max_batch", "max_batch must not be negative"),
        ("max_expires", "max_expires must not be negative"),
        ("max_bytes", "max_bytes must not be negative"),
        ("idle_heartbeat", "idle_heartbeat must not be negative"),
        ("inactive_threshold", "inactive_threshold must not be negative"),
        ("priority_timeout", "priority_timeout must not be negative"),
    ):
        if getattr(cfg, attr) < 0:
            if pedantic:
                raise pedantic_err(text)
            setattr(cfg, attr, 0)
    if not cfg.deliver_subject and cfg.max_waiting == 0:
        cfg.max_waiting = WAIT_QUEUE_DEFAULT_MAX
    if cfg.ack_wait == 0 and cfg.ack_policy in ("explicit", "all"):
        cfg.ack_wait = ACK_WAIT_DEFAULT
    if cfg.backoff:
        if pedantic and cfg.ack_wait != cfg.backoff[0]:
            raise pedantic_err("first backoff value has to equal batch AckWait")
        cfg.ack_wait = cfg.backoff[0]
    if cfg.max_ack_pending == 0:
        if pedantic and lim.stream_max_ack_pending > 0:
            raise pedantic_err("max_ack_pending must be set if it's configured in stream limits")
        cfg.max_ack_pending = lim.stream_max_ack_pending
    if cfg.inactive_threshold == 0:
        if pedantic and lim.stream_inactive_threshold > 0:
            raise pedantic_err("inactive_threshold must be set if it's configured in stream limits")
        cfg.inactive_threshold = lim.stream_inactive_threshold
    if cfg.max_ack_pending == 0 and cfg.ack_policy != "none":
        ack_pending = DEFAULT_MAX_ACK_PENDING
        if 0 < lim.srv_max_ack_pending < ack_pending:
            ack_pending = lim.srv_max_ack_pending
        if 0 < lim.acc_max_ack_pending < ack_pending:
            ack_pending = lim.acc_max_ack_pending
        cfg.max_ack_pending = ack_pending
    if not cfg.deliver_subject and cfg.max_batch == 0 and lim.srv_max_request_batch > 0:
        if pedantic:
            raise pedantic_err("max_request_batch must be set if it's JetStream limits are set")
        cfg.max_batch = lim.srv_max_request_batch
    if cfg.priority_policy == "pinned_client" and cfg.priority_timeout == 0:
        cfg.priority_timeout = PINNED_TTL_DEFAULT
    if cfg.ack_policy == "flow_control" and not pedantic:
        cfg.flow_control = True
        cfg.idle_heartbeat = SOURCE_HEALTH_HB


def is_valid_asset_name(name: str) -> bool:
    return bool(name) and not any(c in name for c in " \t\r\n\f.*>\\/")


def _subj(s: str) -> bytes:
    return s.encode()


def check_config(cfg: ConsumerConfig, lim: Limits, stream_cfg: dict[str, Any], *, recovering: bool = False) -> None:
    """checkConsumerCfg: raises the ApiError nats-server answers for a bad config."""
    if cfg.name and not is_valid_asset_name(cfg.name):
        raise api_error(errors.STREAM_INVALID_CONFIG_F, err="consumer name can not contain '.', '*', '>', '\\', '/'")
    if cfg.durable_name and not is_valid_asset_name(cfg.durable_name):
        raise api_error(errors.STREAM_INVALID_CONFIG_F,
                        err="consumer durable name can not contain '.', '*', '>', '\\', '/'")  # fmt: skip
    replicas = int(stream_cfg.get("num_replicas") or 1)
    if cfg.num_replicas > 0 and cfg.num_replicas > replicas:
        raise api_error(errors.CONSUMER_REPLICAS_EXCEEDS_STREAM)
    if cfg.num_replicas < 0:
        raise api_error(errors.REPLICAS_COUNT_CANNOT_BE_NEGATIVE)
    retention = stream_cfg.get("retention", "limits")
    if retention in ("interest", "workqueue") and not recovering:
        if cfg.num_replicas != 0 and cfg.num_replicas != replicas:
            raise api_error(errors.CONSUMER_REPLICAS_SHOULD_MATCH_STREAM)
    if any(b < 0 for b in cfg.backoff or ()):
        raise api_error(errors.CONSUMER_BACK_OFF_NEGATIVE)
    if cfg.ack_wait < 0:
        raise api_error(errors.CONSUMER_ACK_WAIT_NEGATIVE)
    if cfg.ack_policy == "flow_control":
        if not cfg.deliver_subject:
            raise api_error(errors.CONSUMER_ACK_FC_REQUIRES_PUSH)
        if not cfg.flow_control:
            raise api_error(errors.CONSUMER_ACK_FC_REQUIRES_FC)
        if cfg.idle_heartbeat != SOURCE_HEALTH_HB:
            raise api_error(errors.STREAM_INVALID_CONFIG_F, err="flow control ack policy heartbeat needs to be 1s")
        if cfg.max_ack_pending <= 0:
            raise api_error(errors.CONSUMER_ACK_FC_REQUIRES_MAX_ACK_PENDING)
        if cfg.ack_wait != 0 or cfg.backoff:
            raise api_error(errors.CONSUMER_ACK_FC_REQUIRES_NO_ACK_WAIT)
        if cfg.max_deliver > 0:
            raise api_error(errors.CONSUMER_ACK_FC_REQUIRES_NO_MAX_DELIVER)
    if cfg.backoff and cfg.max_deliver != -1 and len(cfg.backoff) > cfg.max_deliver:
        raise api_error(errors.CONSUMER_MAX_DELIVER_BACKOFF)
    if len(cfg.description) > MAX_DESCRIPTION_LEN:
        raise api_error(errors.CONSUMER_DESCRIPTION_TOO_LONG, max=MAX_DESCRIPTION_LEN)
    if cfg.deliver_subject:
        ds = _subj(cfg.deliver_subject)
        if not is_literal(ds):
            raise api_error(errors.CONSUMER_DELIVER_TO_WILDCARDS)
        if not is_valid_subject(ds):
            raise api_error(errors.CONSUMER_INVALID_DELIVER_SUBJECT)
        if any(is_subset_match(cfg.deliver_subject, s) for s in stream_cfg.get("subjects") or ()):
            raise api_error(errors.CONSUMER_DELIVER_CYCLE)
        if cfg.max_waiting != 0:
            raise api_error(errors.CONSUMER_PUSH_MAX_WAITING)
        if cfg.max_ack_pending > 0 and cfg.ack_policy == "none":
            raise api_error(errors.CONSUMER_MAX_PENDING_ACK_POLICY_REQUIRED)
        if 0 < cfg.idle_heartbeat < 100_000_000:
            raise api_error(errors.CONSUMER_SMALL_HEARTBEAT)
    else:
        if cfg.ack_policy == "none" and retention == "workqueue":
            raise api_error(errors.CONSUMER_PULL_REQUIRES_ACK)
        if cfg.rate_limit_bps > 0:
            raise api_error(errors.CONSUMER_PULL_WITH_RATE_LIMIT)
        if cfg.max_waiting < 0:
            raise api_error(errors.CONSUMER_MAX_WAITING_NEGATIVE)
        if cfg.idle_heartbeat > 0:
            raise api_error(errors.CONSUMER_HB_REQUIRES_PUSH)
        if cfg.flow_control:
            raise api_error(errors.CONSUMER_FC_REQUIRES_PUSH)
        if cfg.max_batch < 0:
            raise api_error(errors.CONSUMER_MAX_REQUEST_BATCH_NEGATIVE)
        if cfg.max_expires != 0 and cfg.max_expires < 1_000_000:
            raise api_error(errors.CONSUMER_MAX_REQUEST_EXPIRES_TOO_SMALL)
        if lim.srv_max_request_batch > 0 and cfg.max_batch > lim.srv_max_request_batch:
            raise api_error(errors.CONSUMER_MAX_REQUEST_BATCH_EXCEEDED_F, limit=lim.srv_max_request_batch)
    if lim.srv_max_ack_pending > 0 and cfg.max_ack_pending > lim.srv_max_ack_pending:
        raise api_error(errors.CONSUMER_MAX_PENDING_ACK_EXCESS, limit=lim.srv_max_ack_pending)
    if lim.acc_max_ack_pending > 0 and cfg.max_ack_pending > lim.acc_max_ack_pending:
        raise api_error(errors.CONSUMER_MAX_PENDING_ACK_EXCESS, limit=lim.acc_max_ack_pending)
    if lim.stream_max_ack_pending > 0 and cfg.max_ack_pending > lim.stream_max_ack_pending:
        raise api_error(errors.CONSUMER_MAX_PENDING_ACK_EXCESS, limit=lim.stream_max_ack_pending)
    if lim.stream_inactive_threshold > 0 and cfg.inactive_threshold > lim.stream_inactive_threshold:
        raise api_error(errors.CONSUMER_INACTIVE_THRESHOLD_EXCESS,
                        limit=_go_duration_text(lim.stream_inactive_threshold))  # fmt: skip
    if cfg.direct:
        if not cfg.deliver_subject:
            raise api_error(errors.CONSUMER_DIRECT_REQUIRES_PUSH)
        if cfg.durable_name:
            raise api_error(errors.CONSUMER_DIRECT_REQUIRES_EPHEMERAL)
    if cfg.filter_subject and cfg.filter_subjects:
        raise api_error(errors.CONSUMER_DUPLICATE_FILTER_SUBJECTS)
    if cfg.filter_subject and not is_valid_subject(_subj(cfg.filter_subject)):
        raise api_error(errors.STREAM_INVALID_CONFIG_F, err="invalid subject")
    if any(not f for f in cfg.filter_subjects or ()):
        raise api_error(errors.CONSUMER_EMPTY_FILTER)
    filters = cfg.filters()
    for i, a in enumerate(filters):
        if not is_valid_subject(_subj(a)):
            raise api_error(errors.STREAM_INVALID_CONFIG_F, err="invalid subject")
        for j, b in enumerate(filters):
            if i != j and is_subset_match(a, b):
                raise api_error(errors.CONSUMER_OVERLAPPING_SUBJECT_FILTERS)
    _check_start(cfg)
    if cfg.sample_freq:
        s = cfg.sample_freq.removesuffix("%")
        try:
            ok = int(s) >= 0 and s.lstrip("+-").isdigit()
        except ValueError:
            raise api_error(errors.CONSUMER_INVALID_SAMPLING,
                            err=f'strconv.Atoi: parsing {go_quote(s)}: invalid syntax') from None  # fmt: skip
        if not ok:
            raise api_error(errors.CONSUMER_INVALID_SAMPLING, err="<nil>")
    if cfg.flow_control and cfg.idle_heartbeat == 0:
        raise api_error(errors.CONSUMER_WITH_FLOW_CONTROL_NEEDS_HEARTBEATS)
    if cfg.durable_name and cfg.name and cfg.name != cfg.durable_name:
        raise api_error(errors.CONSUMER_CREATE_DURABLE_AND_NAME_MISMATCH)
    if sum(len(k) + len(v) for k, v in (cfg.metadata or {}).items()) > MAX_METADATA_LEN:
        raise api_error(errors.CONSUMER_METADATA_LENGTH, limit=f"{MAX_METADATA_LEN // 1024}KB")
    if cfg.priority_policy != "none":
        if cfg.deliver_subject:
            raise api_error(errors.CONSUMER_PUSH_WITH_PRIORITY_GROUP)
        if not cfg.priority_groups:
            raise api_error(errors.CONSUMER_PRIORITY_POLICY_WITHOUT_GROUP)
        for g in cfg.priority_groups:
            if not g:
                raise api_error(errors.CONSUMER_EMPTY_GROUP_NAME)
            if not _GROUP_NAME.match(g):
                raise api_error(errors.CONSUMER_INVALID_GROUP_NAME)
    else:
        if cfg.priority_groups:
            raise api_error(errors.CONSUMER_PRIORITY_GROUP_WITH_POLICY_NONE)
        if cfg.priority_timeout > 0:
            raise api_error(errors.CONSUMER_PINNED_TTL_WITHOUT_PRIORITY_POLICY_NONE)
    placement = stream_cfg.get("placement") or {}
    if isinstance(placement, dict) and placement.get("preferred"):
        raise api_error(errors.STREAM_INVALID_CONFIG_F, err="preferred server not permitted in placement")


def _check_start(cfg: ConsumerConfig) -> None:
    def bad(dp: str, what: str) -> ApiError:
        return api_error(errors.CONSUMER_INVALID_POLICY,
                         err=f"consumer delivery policy is deliver {dp}, but optional start {what} is also set")  # fmt: skip

    def not_set(dp: str, what: str) -> ApiError:
        return api_error(errors.CONSUMER_INVALID_POLICY,
                         err=f"consumer delivery policy is deliver {dp}, but optional {what} is not set")  # fmt: skip

    dp = cfg.deliver_policy
    seq, tm = cfg.opt_start_seq, cfg.opt_start_time
    names = {"all": "all", "last": "last", "last_per_subject": "last per subject", "new": "new"}
    if dp in names:
        if seq > 0:
            raise bad(names[dp], "sequence")
        if tm is not None:
            raise bad(names[dp], "time")
        if dp == "last_per_subject" and not cfg.filter_subject and not cfg.filter_subjects:
            raise not_set("last per subject", "filter subject")
    elif dp == "by_start_sequence":
        if seq == 0:
            raise not_set("by start sequence", "start sequence")
        if tm is not None:
            raise bad("by start sequence", "time")
    elif dp == "by_start_time":
        if tm is None:
            raise not_set("by start time", "start time")
        if seq != 0:
            raise bad("by start time", "start sequence")


def _go_duration_text(ns: int) -> str:
    from ..gotime import go_duration

    return go_duration(ns / 1e9)


def check_update(old: ConsumerConfig, new: ConsumerConfig, deliver_has_interest: bool) -> str | ApiError | None:
    """checkNewConsumerConfig: what an existing consumer may not change (text or ApiError)."""
    if old == new:
        return None
    if old.deliver_policy != new.deliver_policy:
        return "deliver policy can not be updated"
    if old.opt_start_seq != new.opt_start_seq:
        return "start sequence can not be updated"
    if (old.opt_start_time is None) != (new.opt_start_time is None) or (
        old.opt_start_time is not None and new.opt_start_time is not None and old.opt_start_time.ns != new.opt_start_time.ns
    ):
        return "start time can not be updated"
    if old.ack_policy != new.ack_policy:
        return "ack policy can not be updated"
    if old.replay_policy != new.replay_policy:
        return "replay policy can not be updated"
    if old.idle_heartbeat != new.idle_heartbeat:
        return "heart beats can not be updated"
    if old.flow_control != new.flow_control:
        return "flow control can not be updated"
    if old.deliver_subject != new.deliver_subject:
        if not old.deliver_subject:
            return "can not update pull consumer to push based"
        if not new.deliver_subject:
            return "can not update push consumer to pull based"
        if deliver_has_interest:
            return api_error(errors.CONSUMER_NAME_EXIST)
    if old.max_waiting != new.max_waiting:
        return "max waiting can not be updated"
    if new.backoff and new.max_deliver != -1 and len(new.backoff) > new.max_deliver:
        return api_error(errors.CONSUMER_MAX_DELIVER_BACKOFF)
    return None


# ------------------------------------------------------------------------------ metadata


def set_static_metadata(cfg: ConsumerConfig) -> None:
    """setStaticConsumerMetadata: the API level the config needs, under _nats.req.level."""
    md = dict(cfg.metadata or {})
    md.pop(SERVER_VERSION_KEY, None)
    md.pop(SERVER_LEVEL_KEY, None)
    level = 0
    if cfg.paused_until_ns():
        level = 1
    if cfg.priority_policy != "none" or cfg.priority_timeout or cfg.priority_groups:
        level = max(level, 1)
    if cfg.ack_policy == "flow_control":
        level = 4
    md[REQ_LEVEL_KEY] = str(level)
    cfg.metadata = md


def dynamic_metadata(cfg: ConsumerConfig) -> dict[str, str]:
    """The metadata answers carry: the stored one plus the server's version and level."""
    md = dict(cfg.metadata or {})
    md[SERVER_VERSION_KEY] = SERVER_VERSION
    md[SERVER_LEVEL_KEY] = API_LEVEL
    return md


def copy_metadata(cfg: ConsumerConfig, prev: ConsumerConfig) -> None:
    """copyConsumerMetadata: versioning fields taken from `prev` (for equality checks)."""
    md = cfg.metadata
    if md is not None:
        md.pop(SERVER_VERSION_KEY, None)
        md.pop(SERVER_LEVEL_KEY, None)
    pv = (prev.metadata or {}).get(REQ_LEVEL_KEY)
    if pv is not None:
        if cfg.metadata is None:
            cfg.metadata = {}
        cfg.metadata[REQ_LEVEL_KEY] = pv
        return
    if cfg.metadata is not None:
        cfg.metadata.pop(REQ_LEVEL_KEY, None)
        if not cfg.metadata:
            cfg.metadata = None


# -------------------------------------------------------------------------- pull requests


@dataclasses.dataclass(slots=True)
class NextRequest:
    """A pull request's body (nextReqFromMsg): expires/heartbeat in ns (0: none)."""

    batch: int = 1
    expires: int = 0
    max_bytes: int = 0
    no_wait: bool = False
    heartbeat: int = 0
    group: dict[str, Any] | None = None


def parse_next_request(body: bytes) -> NextRequest:
    """An empty body is batch 1, a number is the batch, else the JSON request. ValueError
    carries nats-server's text for a 400 Bad Request."""
    req = body.strip()
    if not req:
        return NextRequest()
    if req[:1] == b"{":
        try:
            obj = json.loads(req)
        except ValueError as e:
            raise ValueError(go_json_error(req, e)) from None
        if not isinstance(obj, dict):
            raise ValueError("json: cannot unmarshal into Go value")
        r = NextRequest(batch=0)
        dec = _Decode("JSApiConsumerGetNextRequest", "")
        for key, kind, attr in (("batch", "int", "batch"), ("expires", "dur", "expires"),
                                ("max_bytes", "int", "max_bytes"), ("no_wait", "bool", "no_wait"),
                                ("idle_heartbeat", "dur", "heartbeat")):  # fmt: skip
            v = obj.get(key)
            if v is not None:
                try:
                    setattr(r, attr, dec.value(key, kind, v))
                except ApiError as e:
                    raise ValueError(e.description.removeprefix("invalid JSON: ")) from None
        grp = obj.get("group"), obj.get("min_pending"), obj.get("min_ack_pending"), obj.get("id"), obj.get("priority")
        if any(g is not None for g in grp):
            r.group = {"group": grp[0] or "", "min_pending": grp[1] or 0, "min_ack_pending": grp[2] or 0,
                       "id": grp[3] or "", "priority": grp[4] or 0}  # fmt: skip
        else:
            r.group = {}
        if r.heartbeat > 0 and r.heartbeat * 2 > r.expires:
            raise ValueError("heartbeat value too large")
        return r
    try:
        return NextRequest(batch=int(req))
    except ValueError:
        return NextRequest()
