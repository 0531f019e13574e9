"""The consumer endpoints of the API: CONSUMER.CREATE (three subject forms), the legacy
CONSUMER.DURABLE.CREATE, INFO, NAMES, LIST, DELETE, PAUSE (jsConsumer*Request in nats-server's
jetstream_api.go), and adding a consumer to a stream (addConsumerWithAssignment)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from ..protocol.subjects import subjects_collide
from . import errors
from .api import Request, endpoint
from .consumer import META_FILE, Consumer, create_name
from .consumer_config import (
    MAX_NAME_LEN,
    ZERO_TIME,
    ConsumerConfig,
    Limits,
    check_config,
    check_update,
    copy_metadata,
    decode_config,
    decode_create_request,
    dynamic_metadata,
    is_valid_asset_name,
    parse_time,
    set_defaults,
    set_static_metadata,
)
from .errors import ApiError, api_error

if TYPE_CHECKING:
    from .stream import Stream

T_CREATE = "io.nats.jetstream.api.v1.consumer_create_response"
T_INFO = "io.nats.jetstream.api.v1.consumer_info_response"
T_NAMES = "io.nats.jetstream.api.v1.consumer_names_response"
T_LIST = "io.nats.jetstream.api.v1.consumer_list_response"
T_DELETE = "io.nats.jetstream.api.v1.consumer_delete_response"
T_PAUSE = "io.nats.jetstream.api.v1.consumer_pause_response"

NAMES_LIMIT = 1024
LIST_LIMIT = 256


def _stream(req: Request, name: str) -> Stream:
    assert req.jsa is not None
    s = req.jsa.streams.get(name)
    if s is None:
        raise api_error(errors.STREAM_NOT_FOUND)
    return s


def limits_for(stream: Stream) -> Limits:
    cl = stream.config.get("consumer_limits") or {}
    return Limits(
        acc_max_ack_pending=stream.jsa.limits.max_ack_pending,
        stream_max_ack_pending=int(cl.get("max_ack_pending") or 0),
        stream_inactive_threshold=int(cl.get("inactive_threshold") or 0),
    )


def _create_error(e: str | ApiError) -> ApiError:
    return e if isinstance(e, ApiError) else api_error(errors.CONSUMER_CREATE, err=e)


def add_consumer(stream: Stream, cfg: ConsumerConfig, action: str = "", pedantic: bool = False, *,
                 recovering: bool = False, created_ns: int = 0, recovered_name: str = "") -> Consumer:
    """addConsumerWithAssignment (single server): the defaults and checks, an existing
    consumer updated, or a new one started. Raises ApiError."""
    if stream.closed or stream.client is None:
        raise api_error(errors.STREAM_INVALID)
    lim = limits_for(stream)
    set_defaults(cfg, lim, pedantic)
    check_config(cfg, lim, stream.config, recovering=recovering)
    retention = stream.config.get("retention", "limits")
    cname = cfg.durable_name or cfg.name
    if cname:
        eo = stream.consumers.get(cname)
        if eo is not None:
            if action == "create":
                ocfg = eo.cfg.copy()
                ncfg = cfg.copy()
                copy_metadata(ncfg, ocfg)
                if ncfg != ocfg:
                    raise api_error(errors.CONSUMER_ALREADY_EXISTS)
            if retention == "workqueue" and not _partition_unique(stream, cname, cfg.filters()):
                raise api_error(errors.CONSUMER_WQ_CONSUMER_NOT_UNIQUE)
            if eo.closed:
                raise api_error(errors.CONSUMER_DOES_NOT_EXIST)
            has_interest = bool(eo.cfg.deliver_subject) and bool(
                stream.account.sublist.match(eo.cfg.deliver_subject.encode()))
            err = check_update(eo.cfg, cfg, has_interest)
            if err is not None:
                raise _create_error(err)
            eo.update_config(cfg)
            return eo
    if action == "update":
        raise api_error(errors.CONSUMER_DOES_NOT_EXIST)
    if not recovering:
        maxc = int(stream.config.get("max_consumers", -1) or -1)
        acc_max = stream.jsa.limits.max_consumers
        if maxc <= 0 or (acc_max > 0 and acc_max < maxc):
            maxc = acc_max
        if maxc > 0 and _limitable(stream) >= maxc:
            raise api_error(errors.MAXIMUM_CONSUMERS_LIMIT)
    if retention == "workqueue" and not cfg.direct and not cfg.sourcing:
        if cfg.ack_policy not in ("explicit", "flow_control"):
            raise api_error(errors.CONSUMER_WQ_REQUIRES_EXPLICIT_ACK)
        if _limitable(stream) > 0:
            subjects = cfg.filters()
            if not subjects:
                raise api_error(errors.CONSUMER_WQ_MULTIPLE_UNFILTERED)
            if not _partition_unique(stream, cname, subjects):
                if recovering:
                    stream.js.server.log.warn(
                        f'Consumer "{stream.name}" > "{cname}" has a filter subject that overlaps with other '
                        "consumers, which is not allowed for a stream with WorkQueue policy, it should be "
                        "administratively deleted")  # fmt: skip
                else:
                    raise api_error(errors.CONSUMER_WQ_CONSUMER_NOT_UNIQUE)
        if cfg.deliver_policy != "all":
            raise api_error(errors.CONSUMER_WQ_CONSUMER_NOT_DELIVER_ALL)
    if recovered_name and not cfg.durable_name and not cfg.name:
        # An auto-named ephemeral coming back: its directory has its name.
        name = recovered_name
    elif cfg.durable_name:
        if len(cfg.durable_name) > MAX_NAME_LEN:
            raise api_error(errors.CONSUMER_NAME_TOO_LONG, max=MAX_NAME_LEN)
        name = cfg.durable_name
    elif cfg.name:
        name = cfg.name
    else:
        # An auto-named ephemeral: nats-server's consumer keeps the config without the name.
        name = create_name()
        while name in stream.consumers:
            name = create_name()
    if not is_valid_asset_name(name):
        raise api_error(errors.CONSUMER_BAD_DURABLE_NAME)
    o = Consumer(stream, cfg, name, created_ns or time.time_ns())
    try:
        o.open_store(recovering)
    except (OSError, ValueError) as e:
        raise api_error(errors.CONSUMER_STORE_FAILED, err=str(e)) from None
    stream.register_consumer(o)
    o.start()
    if not recovering:
        o.created_advisory()
    return o


def _limitable(stream: Stream) -> int:
    return sum(1 for c in stream.consumers.values() if not c.cfg.direct and not c.cfg.sourcing)


def _partition_unique(stream: Stream, name: str, partitions: list[str]) -> bool:
    for part in partitions:
        for n, o in stream.consumers.items():
            if n == name or o.cfg.direct or o.cfg.sourcing:
                continue
            filters = o.cfg.filters()
            if not filters:
                return False
            for f in filters:
                if subjects_collide(part.encode(), f.encode()):
                    return False
    return True


# ------------------------------------------------------------------------------ endpoints


def _create(req: Request) -> None:
    stream_name_req, cfg, action, pedantic = decode_create_request(req.body)
    tokens = req.tokens
    n = len(tokens)
    filtered = ""
    if n == 5:
        kind = "ephemeral"
        stream_name = tokens[4]
        consumer_name = cfg.name
    elif tokens[3] == "DURABLE":
        kind = "durable"
        if n != 7:
            raise api_error(errors.CONSUMER_DURABLE_NAME_NOT_IN_SUBJECT)
        stream_name, consumer_name = tokens[5], tokens[6]
    else:
        kind = "new"
        stream_name, consumer_name = tokens[4], tokens[5]
        if n > 6:
            filtered = ".".join(tokens[6:])
    if stream_name != stream_name_req:
        raise api_error(errors.STREAM_MISMATCH)
    if consumer_name and ("\\" in consumer_name or "/" in consumer_name):
        raise api_error(errors.CONSUMER_NAME_CONTAINS_PATH_SEPARATORS)
    if kind == "durable":
        if not cfg.durable_name:
            raise api_error(errors.CONSUMER_DURABLE_NAME_NOT_SET)
        if consumer_name != cfg.durable_name:
            raise api_error(errors.CONSUMER_DURABLE_NAME_NOT_MATCH_SUBJECT)
        cfg.name = consumer_name
    if kind == "new":
        if cfg.durable_name and consumer_name != cfg.durable_name:
            raise api_error(errors.CONSUMER_DURABLE_NAME_NOT_MATCH_SUBJECT)
        cfg.name = consumer_name
    if kind == "ephemeral" and cfg.durable_name:
        raise api_error(errors.CONSUMER_EPHEMERAL_WITH_DURABLE_NAME)
    if filtered and cfg.filter_subjects:
        raise api_error(errors.CONSUMER_MULTIPLE_FILTERS_NOT_ALLOWED)
    if filtered and cfg.filter_subject != filtered:
        raise api_error(errors.CONSUMER_CREATE_FILTER_SUBJECT_MISMATCH)
    if cfg.num_replicas > 1:
        raise api_error(errors.STREAM_REPLICAS_NOT_SUPPORTED)
    stream = _stream(req, stream_name)
    existing = stream.consumers.get(consumer_name) if consumer_name else None
    if existing is not None:
        # PAUSE changes the pause; CREATE keeps what the consumer has.
        cfg.pause_until = existing.cfg.pause_until
    set_static_metadata(cfg)
    o = add_consumer(stream, cfg, action, pedantic)
    req.respond({"type": T_CREATE, **o.info()})
    if o.is_paused():
        o._pause_advisory()


@endpoint("$JS.API.CONSUMER.CREATE.*")
def consumer_create(req: Request) -> None:
    _create(req)


@endpoint("$JS.API.CONSUMER.CREATE.*.>")
def consumer_create_ex(req: Request) -> None:
    _create(req)


@endpoint("$JS.API.CONSUMER.DURABLE.CREATE.*.*")
def consumer_durable_create(req: Request) -> None:
    _create(req)


def _consumer(req: Request) -> tuple[Stream, Consumer]:
    s = _stream(req, req.tokens[4])
    o = s.consumers.get(req.tokens[5])
    if o is None:
        raise api_error(errors.CONSUMER_NOT_FOUND)
    return s, o


def _empty(req: Request) -> None:
    if req.body.strip():
        raise api_error(errors.NOT_EMPTY_REQUEST)


@endpoint("$JS.API.CONSUMER.INFO.*.*")
def consumer_info(req: Request) -> None:
    _empty(req)
    _, o = _consumer(req)
    req.respond({"type": T_INFO, **o.info()})


def _offset(req: Request) -> int:
    body = req.body.strip()
    if body[:1] not in (b"{", b"["):
        return 0
    v = req.json_body()
    off = v.get("offset", 0) if isinstance(v, dict) else 0
    if off is None:
        return 0
    if not isinstance(off, int) or isinstance(off, bool):
        what = {str: "string", bool: "bool", float: f"number {off}", list: "array", dict: "object"}.get(
            type(off), "value")  # fmt: skip
        raise api_error(errors.INVALID_JSON, err=f"json: cannot unmarshal {what} into Go struct field "
                        "JSApiConsumersRequest.ApiPagedRequest.offset of type int")  # fmt: skip
    return max(off, 0)


@endpoint("$JS.API.CONSUMER.NAMES.*")
def consumer_names(req: Request) -> None:
    try:
        offset = _offset(req)
        s = _stream(req, req.tokens[4])
    except ApiError as e:
        req.error(T_NAMES, e, total=0, offset=0, limit=0, consumers=[])
        return
    names = sorted(n for n, c in s.consumers.items() if not c.cfg.direct)
    total = len(names)
    offset = min(offset, total)
    req.respond({"type": T_NAMES, "total": total, "offset": offset, "limit": NAMES_LIMIT,
                 "consumers": names[offset:offset + NAMES_LIMIT]})  # fmt: skip


@endpoint("$JS.API.CONSUMER.LIST.*")
def consumer_list(req: Request) -> None:
    try:
        offset = _offset(req)
        s = _stream(req, req.tokens[4])
    except ApiError as e:
        req.error(T_LIST, e, total=0, offset=0, limit=0, consumers=[])
        return
    obs = sorted((c for c in s.consumers.values() if not c.cfg.direct), key=lambda c: c.name)
    total = len(obs)
    offset = min(offset, total)
    infos: list[dict[str, Any]] = []
    for o in obs[offset:]:
        infos.append(o.info(dynamic=False))
        if len(infos) >= LIST_LIMIT:
            break
    req.respond({"type": T_LIST, "total": total, "offset": offset, "limit": LIST_LIMIT, "consumers": infos})


@endpoint("$JS.API.CONSUMER.DELETE.*.*")
def consumer_delete(req: Request) -> None:
    _empty(req)
    _, o = _consumer(req)
    o.delete()
    req.respond({"type": T_DELETE, "success": True})


@endpoint("$JS.API.CONSUMER.PAUSE.*.*")
def consumer_pause(req: Request) -> None:
    zero = {"paused": False, "pause_until": ZERO_TIME}
    try:
        until = None
        body = req.body.strip()
        if body[:1] in (b"{", b"["):
            try:
                v = json.loads(body)
            except ValueError as e:
                raise api_error(errors.INVALID_JSON, err=str(e)) from None
            raw = v.get("pause_until") if isinstance(v, dict) else None
            if raw is not None:
                if not isinstance(raw, str):
                    raise api_error(errors.INVALID_JSON, err="json: cannot unmarshal into Go struct field "
                                    "JSApiConsumerPauseRequest.pause_until of type time.Time")  # fmt: skip
                try:
                    until = parse_time(raw).utc()
                except ValueError as e:
                    raise api_error(errors.INVALID_JSON, err=str(e)) from None
        _, o = _consumer(req)
    except ApiError as e:
        req.error(T_PAUSE, e, **zero)
        return
    ncfg = o.cfg.copy()
    ncfg.pause_until = None if until is None or until.is_zero() else until
    set_static_metadata(ncfg)
    o.update_config(ncfg)
    out: dict[str, Any] = {"type": T_PAUSE, "paused": False, "pause_until": ZERO_TIME}
    if until is not None:
        out["pause_until"] = until.text()
        now = time.time_ns()
        if now < until.ns:
            out["paused"] = True
            out["pause_remaining"] = until.ns - now
    req.respond(out)


_ = dynamic_metadata


def load_consumers(stream: Stream) -> None:
    """The consumers stored under a recovered stream come back (doConsumers): durables with
    their delivery state; an ephemeral comes back as one (its inactivity timer runs)."""
    odir = os.path.join(stream.dir, "obs")
    try:
        names = sorted(os.listdir(odir))
    except OSError:
        return
    if not names:
        return
    srv = stream.js.server
    acc = stream.account.name
    srv.log.notice(f"  Recovering {len(names)} consumers for stream - '{acc} > {stream.name}'")
    for name in names:
        path = os.path.join(odir, name, META_FILE)
        if not os.path.exists(path):
            srv.log.warn(f'    Missing consumer metafile "{path}"')
            continue
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
            cfg = decode_config(meta["config"], struct="FileConsumerInfo", prefix="")
            created = int(meta.get("created") or 0)
        except (OSError, ValueError, KeyError, TypeError, ApiError) as e:
            srv.log.warn(f'    Error unmarshalling consumer metafile "{path}": {e}')
            continue
        try:
            add_consumer(stream, cfg, recovering=True, created_ns=created, recovered_name=name)
        except ApiError as e:
            srv.log.warn(f"    Error adding consumer '{acc} > {stream.name} > {cfg.name or name}': {e.description}")
