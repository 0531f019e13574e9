"""The stream endpoints of the API: STREAM.CREATE, UPDATE, INFO, NAMES, LIST, DELETE, PURGE,
MSG.GET, MSG.DELETE (and SNAPSHOT/RESTORE, refused), as nats-server 2.14 answers them
(jetstream_api.go: the order of checks decides which error a bad request gets)."""

from __future__ import annotations

import base64
import time
from typing import Any

from . import errors
from . import headers as H
from . import stream_config as sc
from .api import Request, endpoint
from .errors import ApiError, api_error
from .reqjson import INT, UINT64, Bool, GoType, Ptr, Slice, Str, Time, struct
from .store import StoreError
from .stream import Stream

T_CREATE = "io.nats.jetstream.api.v1.stream_create_response"
T_UPDATE = "io.nats.jetstream.api.v1.stream_update_response"
T_INFO = "io.nats.jetstream.api.v1.stream_info_response"
T_NAMES = "io.nats.jetstream.api.v1.stream_names_response"
T_LIST = "io.nats.jetstream.api.v1.stream_list_response"
T_DELETE = "io.nats.jetstream.api.v1.stream_delete_response"
T_PURGE = "io.nats.jetstream.api.v1.stream_purge_response"
T_MSG_GET = "io.nats.jetstream.api.v1.stream_msg_get_response"
T_MSG_DELETE = "io.nats.jetstream.api.v1.stream_msg_delete_response"
T_SNAPSHOT = "io.nats.jetstream.api.v1.stream_snapshot_response"
T_RESTORE = "io.nats.jetstream.api.v1.stream_restore_response"

NAMES_LIMIT = 1024
LIST_LIMIT = 256
MAX_SUBJECT_DETAILS = 100_000

_PAGED: dict[str, GoType] = {"offset": INT}
INFO_REQUEST = struct("JSApiStreamInfoRequest", [
    (("ApiPagedRequest",), _PAGED), ((), {"deleted_details": Bool(), "subjects_filter": Str()})])  # fmt: skip
NAMES_REQUEST = struct("JSApiStreamNamesRequest", [(("ApiPagedRequest",), _PAGED), ((), {"subject": Str()})])
LIST_REQUEST = struct("JSApiStreamListRequest", [(("ApiPagedRequest",), _PAGED), ((), {"subject": Str()})])
PURGE_REQUEST = struct("JSApiStreamPurgeRequest", [((), {"seq": UINT64, "filter": Str(), "keep": UINT64})])
MSG_DELETE_REQUEST = struct("JSApiMsgDeleteRequest", [((), {"seq": UINT64, "no_erase": Bool()})])
MSG_GET_REQUEST = struct("JSApiMsgGetRequest", [((), {
    "seq": UINT64, "last_by_subj": Str(), "next_by_subj": Str(), "batch": INT, "max_bytes": INT,
    "start_time": Ptr(Time()), "multi_last": Slice(), "up_to_seq": UINT64, "up_to_time": Ptr(Time()),
    "no_hdr": Bool(),
})])  # fmt: skip


def _stream(req: Request, name: str) -> Stream:
    assert req.jsa is not None
    s = req.jsa.streams.get(name)
    if s is None:
        raise api_error(errors.STREAM_NOT_FOUND)
    return s


def _wrap(e: Exception, entry: tuple[int, int, str]) -> ApiError:
    """NewJS...Error(err, Unless(err)): an ApiError stays as it is."""
    if isinstance(e, ApiError):
        return e
    return api_error(entry, err=str(e))


# -- create / update -----------------------------------------------------------------------


@endpoint("$JS.API.STREAM.CREATE.*")
def stream_create(req: Request) -> None:
    jsa = req.jsa
    assert jsa is not None
    cfg, pedantic = sc.decode_request(req.body, strict=req.js.opts.strict)
    sc.set_static_metadata(cfg)
    name = req.tokens[-1]
    if name != cfg["name"]:
        raise api_error(errors.STREAM_MISMATCH)
    if "\\" in name or "/" in name:
        raise api_error(errors.STREAM_NAME_CONTAINS_PATH_SEPARATORS)
    if cfg["sealed"]:
        raise sc._invalid("stream configuration for create can not be sealed")
    if cfg["mirror_direct"] and cfg["mirror"] is None:
        raise sc._invalid("stream has no mirror but does have mirror direct")
    env = jsa.env()
    try:
        sc.non_clustered_limits_check(env, cfg)
    except ApiError as e:
        raise _wrap(e, errors.STREAM_LIMITS) from None
    stream = add_stream(req, cfg, pedantic)
    answer = {"type": T_CREATE, **stream.info_json(cluster=False, domain=False), "did_create": True}
    req.respond(answer)


def add_stream(req: Request, config: dict[str, Any], pedantic: bool) -> Stream:
    """addStreamWithAssignment for one server: the checks, then the stream (existing with the
    same configuration: that one)."""
    jsa = req.jsa
    assert jsa is not None
    env = jsa.env()
    cfg = sc.check_stream_cfg(config, env, pedantic)
    if cfg["num_replicas"] > 1:
        raise api_error(errors.STREAM_REPLICAS_NOT_SUPPORTED)
    unsupported = [k for k in ("allow_batched",) if cfg[k]]
    if unsupported:
        raise sc._invalid(f"{unsupported[0]} is not supported by this server")
    old = jsa.streams.get(cfg["name"])
    if old is not None:
        ocfg = old.config
        cmp = dict(cfg)
        sc.copy_metadata(cmp, ocfg)
        other = dict(ocfg)
        other["metadata"] = dict(ocfg.get("metadata") or {}) or None
        if cmp == other:
            return old
        raise api_error(errors.STREAM_NAME_EXIST)
    sc.check_limits(env, cfg, sc.reservation(env, cfg))
    for src in ([cfg["mirror"]] if cfg["mirror"] else []) + list(cfg["sources"] or []):
        _check_source_filters(src, "mirror" if src is cfg["mirror"] else "source")
    if any(sc.collide(t, s) for o in jsa.streams.values() for s in o.config["subjects"] or []
           for t in cfg["subjects"] or []):  # fmt: skip
        raise api_error(errors.STREAM_SUBJECT_OVERLAP)
    for src in ([cfg["mirror"]] if cfg["mirror"] else []) + list(cfg["sources"] or []):
        if src.get("external") is not None:
            raise api_error(errors.STREAM_CREATE, err="external (cross-account or cross-domain) sources and "
                            "mirrors are not supported by this server")  # fmt: skip
    try:
        stream = Stream(jsa, cfg, time.time())
    except (StoreError, OSError) as e:
        req.js.server.log.warn(f"Stream create failed for '{jsa.account.name} > {cfg['name']}': {e}")
        raise api_error(errors.STREAM_CREATE, err="error creating store for stream") from None
    jsa.streams[stream.name] = stream
    stream.start()
    return stream


def _check_source_filters(src: dict[str, Any], kind: str) -> None:
    trs = src.get("subject_transforms") or []
    if not trs:
        fs = src.get("filter_subject") or ""
        if fs and not sc.is_valid_subject(fs):
            what = "for the mirror" if kind == "mirror" else "for the source:"
            raise api_error(errors.STREAM_CREATE, err=f"subject filter '{fs}' {what} invalid subject")
        return
    for t in trs:
        s = t.get("src") or ""
        if s and not sc.is_valid_subject(s):
            raise api_error(errors.STREAM_CREATE, err=f"subject filter '{s}' for the {kind}: invalid subject")


@endpoint("$JS.API.STREAM.UPDATE.*")
def stream_update(req: Request) -> None:
    jsa = req.jsa
    assert jsa is not None
    ncfg, pedantic = sc.decode_request(req.body, strict=req.js.opts.strict)
    env = jsa.env()
    cfg = sc.check_stream_cfg(ncfg, env, pedantic)
    name = req.tokens[-1]
    if name != cfg["name"]:
        raise api_error(errors.STREAM_MISMATCH)
    s = _stream(req, name)
    sc.set_static_metadata(cfg)
    try:
        new = sc.config_update_check(s.config, cfg, env, pedantic)
    except ApiError as e:
        raise _wrap(e, errors.STREAM_UPDATE) from None
    unsupported = [k for k in ("allow_batched",) if new[k]]
    if unsupported:
        raise sc._invalid(f"{unsupported[0]} is not supported by this server")
    if new["consumer_limits"] != s.config["consumer_limits"]:
        _check_consumer_limits(s, new)
    if any(sc.collide(t, x) for o in jsa.streams.values() if o is not s for x in o.config["subjects"] or []
           for t in new["subjects"] or []):  # fmt: skip
        raise api_error(errors.STREAM_SUBJECT_OVERLAP)
    s.update(new)
    req.respond({"type": T_UPDATE, **s.info_json(cluster=False)})


def _check_consumer_limits(s: Stream, cfg: dict[str, Any]) -> None:
    lim = cfg["consumer_limits"] or {}
    it = lim.get("inactive_threshold") or 0
    mp = lim.get("max_ack_pending") or 0
    bad = []
    for name, c in s.consumers.items():
        ccfg = getattr(c, "config", None) or {}
        if (ccfg.get("inactive_threshold") or 0) > it or (ccfg.get("max_ack_pending") or 0) > mp:
            bad.append(name)
    if bad:
        raise api_error(errors.STREAM_UPDATE, err="change to limits violates consumers: " + ", ".join(bad))


# -- info, names, list ---------------------------------------------------------------------


@endpoint("$JS.API.STREAM.INFO.*")
def stream_info(req: Request) -> None:
    details, subjects, offset = False, "", 0
    if req.is_json_object_or_array():
        r = req.decode(INFO_REQUEST)
        details = bool(r.get("deleted_details"))
        subjects = r.get("subjects_filter") or ""
        offset = max(r.get("offset") or 0, 0)
    s = _stream(req, req.tokens[-1])
    total = limit = answer_offset = 0
    subj_map: dict[str, int] | None = None
    if subjects:
        st = s.store.subjects_totals(subjects.encode(errors="surrogateescape"))
        if st:
            # The answer keeps the requested offset; the page is cut at the subjects' count.
            total, limit, answer_offset = len(st), MAX_SUBJECT_DETAILS, offset
            names = sorted(k.decode(errors="surrogateescape") for k in st)
            page = names[min(offset, len(names)):offset + MAX_SUBJECT_DETAILS]
            subj_map = {n: st[n.encode(errors="surrogateescape")] for n in page} or None
    info = s.info_json(details=details, subjects=subj_map)
    req.respond({"type": T_INFO, "total": total, "offset": answer_offset, "limit": limit, **info})


def _filtered(req: Request, subject: str) -> list[Stream]:
    assert req.jsa is not None
    out = []
    for s in req.jsa.streams.values():
        if not subject or any(sc.collide(subject, x) for x in s.config["subjects"] or []):
            out.append(s)
    out.sort(key=lambda s: s.name)
    return out


@endpoint("$JS.API.STREAM.NAMES")
def stream_names(req: Request) -> None:
    offset, subject = 0, ""
    if req.is_json_object_or_array():
        r = req.decode(NAMES_REQUEST)
        offset = max(r.get("offset") or 0, 0)
        subject = r.get("subject") or ""
    streams = _filtered(req, subject)
    offset = min(offset, len(streams))
    names = [s.name for s in streams[offset:offset + NAMES_LIMIT]]
    req.respond({"type": T_NAMES, "total": len(streams), "offset": offset, "limit": NAMES_LIMIT,
                 "streams": names or None})  # fmt: skip


@endpoint("$JS.API.STREAM.LIST")
def stream_list(req: Request) -> None:
    offset, subject = 0, ""
    if req.is_json_object_or_array():
        r = req.decode(LIST_REQUEST)
        offset = max(r.get("offset") or 0, 0)
        subject = r.get("subject") or ""
    streams = _filtered(req, subject)
    offset = min(offset, len(streams))
    infos = [s.info_json(cluster=False, dynamic=False) for s in streams[offset:offset + LIST_LIMIT]]
    req.respond({"type": T_LIST, "total": len(streams), "offset": offset, "limit": LIST_LIMIT, "streams": infos})


# -- delete, purge -------------------------------------------------------------------------


@endpoint("$JS.API.STREAM.DELETE.*")
def stream_delete(req: Request) -> None:
    if not req.is_empty():
        raise api_error(errors.NOT_EMPTY_REQUEST)
    _stream(req, req.tokens[-1]).delete()
    req.respond({"type": T_DELETE, "success": True})


@endpoint("$JS.API.STREAM.PURGE.*")
def stream_purge(req: Request) -> None:
    filt, seq, keep = "", 0, 0
    if req.is_json_object_or_array():
        r = req.decode(PURGE_REQUEST)
        seq, keep, filt = r.get("seq") or 0, r.get("keep") or 0, r.get("filter") or ""
        if seq > 0 and keep > 0:
            raise api_error(errors.BAD_REQUEST)
    s = _stream(req, req.tokens[-1])
    if s.config["sealed"]:
        raise api_error(errors.STREAM_SEALED)
    if s.config["deny_purge"]:
        raise api_error(errors.STREAM_PURGE_FAILED_F, err="stream purge not permitted")
    try:
        n = s.purge(filt, seq, keep)
    except StoreError as e:
        req.respond({"type": T_PURGE, "error": api_error(errors.STREAM_GENERAL_ERROR_F, err=str(e)).json(),
                     "purged": 0})  # fmt: skip
        return
    req.respond({"type": T_PURGE, "success": True, "purged": n})


# -- messages ------------------------------------------------------------------------------


@endpoint("$JS.API.STREAM.MSG.DELETE.*")
def msg_delete(req: Request) -> None:
    if req.is_empty():
        raise api_error(errors.BAD_REQUEST)
    r = req.decode(MSG_DELETE_REQUEST)
    s = _stream(req, req.tokens[-1])
    if s.config["sealed"]:
        raise api_error(errors.STREAM_SEALED)
    if s.config["deny_delete"]:
        raise api_error(errors.STREAM_MSG_DELETE_FAILED_F, err="message delete not permitted")
    seq = r.get("seq") or 0
    try:
        removed = s.remove_msg(seq, erase=not r.get("no_erase"))
    except StoreError as e:
        err = api_error(errors.STREAM_MSG_DELETE_FAILED_F, err=str(e))
        req.respond({"type": T_MSG_DELETE, "error": err.json()})
        return
    if not removed:
        req.respond({"type": T_MSG_DELETE, "error": api_error(errors.SEQUENCE_NOT_FOUND, seq=seq).json()})
        return
    req.respond({"type": T_MSG_DELETE, "success": True})


@endpoint("$JS.API.STREAM.MSG.GET.*")
def msg_get(req: Request) -> None:
    if req.is_empty():
        raise api_error(errors.BAD_REQUEST)
    r = req.decode(MSG_GET_REQUEST)
    if (r.get("batch") or 0) > 0 or (r.get("max_bytes") or 0) > 0:
        raise api_error(errors.BAD_REQUEST)
    seq = r.get("seq") or 0
    last_for = r.get("last_by_subj") or ""
    next_for = r.get("next_by_subj") or ""
    start = r.get("start_time")
    if ((seq > 0 and last_for) or (seq == 0 and not last_for and not next_for and start is None)
            or (seq > 0 and start is not None) or (start is not None and last_for) or (last_for and next_for)):  # fmt: skip
        raise api_error(errors.BAD_REQUEST)
    s = _stream(req, req.tokens[-1])
    store = s.store
    if start is not None:
        seq = store.get_seq_from_time(H.parse_time_ns(start))
    try:
        if seq > 0 and not next_for:
            sm = store.load_msg(seq)
        elif next_for:
            nf = next_for.encode(errors="surrogateescape")
            sm, _ = store.load_next_msg(nf, b"*" in nf or b">" in nf, seq)
        else:
            sm = store.load_last_msg(last_for.encode(errors="surrogateescape"))
    except StoreError:
        raise api_error(errors.NO_MESSAGE_FOUND) from None
    m: dict[str, Any] = {"subject": sm.subject.decode(errors="surrogateescape"), "seq": sm.seq}
    if sm.hdr and not r.get("no_hdr"):
        m["hdrs"] = base64.b64encode(sm.hdr).decode()
    if sm.msg:
        m["data"] = base64.b64encode(sm.msg).decode()
    m["time"] = H.go_time_ns(sm.ts)
    # nats-server answers this one directly, outside its API accounting.
    req.respond({"type": T_MSG_GET, "message": m}, track=False)


# -- snapshot / restore --------------------------------------------------------------------


@endpoint("$JS.API.STREAM.SNAPSHOT.*")
def stream_snapshot(req: Request) -> None:
    _stream(req, req.tokens[-1])
    raise api_error(errors.STREAM_SNAPSHOT, err="stream snapshots are not supported by this server")


@endpoint("$JS.API.STREAM.RESTORE.*")
def stream_restore(req: Request) -> None:
    raise api_error(errors.STREAM_RESTORE, err="stream restores are not supported by this server")
