"""The JetStream API: requests on `$JS.API.*` to handlers, and their JSON answers.

As nats-server, the system account subscribes to `$JS.API.>` once and dispatches on the
subject to the endpoint whose pattern matches; a subject that names no endpoint is silently
ignored (the requester times out: the subscription exists, so no no-responders status).
Handlers are registered with `@endpoint(pattern)` by the modules that implement them
(streams, consumers, ...; handlers.py imports them all, and engine.py imports handlers.py, so
they are registered before the API starts); a handler takes a `Request` and answers with `req.respond(obj)`
or raises `ApiError`.

Answers are Go JSON as nats-server writes it: keys in the order of its structs (our dicts keep
insertion order), `type` first; an error answer is `type`, `error`, then the response's other
non-omitted fields with zero values (`Request.error`). Answers count in the API statistics
as nats-server counts them (`Request.track`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..delivery import deliver_msg
from ..internal import InternalClient
from ..protocol import wire
from ..protocol.subjects import match_literal
from . import errors
from .errors import ApiError, api_error
from .reqjson import GoJSONError, decode
from .versioning import required_level_error

if TYPE_CHECKING:
    from ..accounts import Account
    from .jsaccount import JetStreamPort, JsAccount

Handler = Callable[["Request"], None]

# (subject pattern, handler, the request needs JetStream enabled for the account)
_ENDPOINTS: list[tuple[str, Handler, bool]] = []


def endpoint(pattern: str, *, needs_account: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler for requests on `pattern` (a subject with wildcards)."""

    def register(fn: Handler) -> Handler:
        _ENDPOINTS.append((pattern, fn, needs_account))
        return fn

    return register


class Request:
    """One API request: who sent it, what it asks, and how to answer it."""

    def __init__(self, api: Api, subject: bytes, reply: bytes, hdr: int, msg: Any,
                 account: Account | None, jsa: JsAccount | None) -> None:
        self.api = api
        self.js = api.js
        self.subject = subject.decode(errors="replace")
        self.tokens = self.subject.split(".")
        self.reply = reply
        self.hdr_block = bytes(msg[:hdr]) if hdr > 0 else b""
        self.body = bytes(msg[max(hdr, 0):-2])
        self.account = account
        self.jsa = jsa
        self.answered = False

    def json_body(self, *, required: bool = False) -> dict[str, Any]:
        """The request's JSON object ({} for an empty body unless `required`)."""
        if not self.body.strip():
            if required:
                raise api_error(errors.BAD_REQUEST)
            return {}
        try:
            v = json.loads(self.body)
        except ValueError as e:
            raise api_error(errors.INVALID_JSON, err=_go_json_error(str(e))) from None
        if not isinstance(v, dict):
            raise api_error(errors.INVALID_JSON, err="json: cannot unmarshal into object")
        return v

    def decode(self, schema: Any) -> dict[str, Any]:
        """The body decoded as nats-server decodes the request struct `schema` (reqjson),
        with its errors as 10025 invalid JSON."""
        try:
            return decode(self.body, schema, strict=self.js.opts.strict)
        except GoJSONError as e:
            raise api_error(errors.INVALID_JSON, err=str(e)) from None

    def is_json_object_or_array(self) -> bool:
        """isJSONObjectOrArray: the body (after whitespace) starts with '{' or '['."""
        b = self.body.lstrip(b" \t\r\n")
        return b[:1] in (b"{", b"[")

    def is_empty(self) -> bool:
        """isEmptyRequest: nothing, `{}`, or a JSON object without keys."""
        if not self.body or self.body == b"{}":
            return True
        try:
            v = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(v, dict) and not v

    def respond(self, obj: dict[str, Any], *, track: bool = True) -> None:
        """Answer; `track`: count the request in the API statistics (nats-server's
        sendAPIResponse; MSG.GET answers directly and does not count)."""
        if track:
            self.track(False)
        self.api.send(self.reply, wire.go_json(obj))
        self.answered = True

    def track(self, error: bool) -> None:
        """trackAPI / trackAPIErr: the account's and the server's counters."""
        jsa = self.jsa
        if jsa is None:
            return
        jsa.api_total += 1
        self.js.api_total += 1
        if error:
            jsa.api_errors += 1
            self.js.api_errors += 1

    def error(self, resp_type: str, e: ApiError, **zero: Any) -> None:
        """An error answer: `type`, `error`, then the response's zero-valued fields."""
        self.track(True)
        body: dict[str, Any] = {"type": resp_type, "error": e.json()}
        body.update(zero)
        self.respond(body, track=False)


def _go_json_error(text: str) -> str:
    """Python's JSON error, close to Go's wording where the cases look at it."""
    return text


class Api:
    """The API's subscriptions (in the system account) and its dispatch."""

    def __init__(self, js: JetStreamPort) -> None:
        self.js = js
        self.client: InternalClient | None = None
        self.account: Account | None = None

    def start(self, sysacc: Account) -> None:
        self.account = sysacc
        self.client = InternalClient(self.js.server, sysacc, "JetStream")
        self._routes: dict[bytes, tuple[Handler, bool] | None] = {}
        self.client.subscribe(b"$JS.API.>", self._dispatch, forward=False)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _route(self, subject: bytes) -> tuple[Handler, bool] | None:
        """The endpoint for a subject (cached; the most specific pattern first)."""
        r = self._routes.get(subject, False)
        if r is not False:
            return r  # type: ignore[return-value]
        found: tuple[Handler, bool] | None = None
        for pattern, fn, needs in _ENDPOINTS:
            if match_literal(subject, pattern.encode()):
                found = (fn, needs)
                break
        if len(self._routes) > 4096:
            self._routes.clear()
        self._routes[subject] = found
        return found

    def _dispatch(self, sub: Any, origin: Any, acc: Account, subject: bytes, reply: bytes | None,
                  hdr: int, msg: Any) -> bool:
        route = self._route(subject)
        if route is None:
            return True  # no such endpoint: nats-server does not answer
        return self._callback(*route)(sub, origin, acc, subject, reply, hdr, msg)

    def _callback(self, fn: Handler, needs_account: bool) -> Any:
        def on_request(sub: Any, origin: Any, acc: Account, subject: bytes, reply: bytes | None,
                       hdr: int, msg: Any) -> bool:
            if not reply:
                return True  # nats-server ignores API requests without a reply
            account = self._requester(origin, hdr, msg)
            jsa = self.js.accounts.get(account.name) if account is not None else None
            req = Request(self, subject, reply, hdr, msg, account, jsa)
            try:
                if req.hdr_block and required_level_error(req.hdr_block):
                    raise api_error(errors.REQUIRED_API_LEVEL)
                if needs_account and jsa is None:
                    raise api_error(errors.NOT_ENABLED_FOR_ACCOUNT)
                fn(req)
            except ApiError as e:
                if not req.answered:
                    req.error(_response_type(req.subject), e, **error_zeros(req.subject))
            except Exception as e:  # a bug: the request gets an answer, the server goes on
                self.js.server.log.error(f"JetStream API request on {req.subject} failed: {e!r}")
                if not req.answered:
                    err = api_error(errors.STREAM_GENERAL_ERROR_F, err=str(e) or type(e).__name__)
                    req.error(_response_type(req.subject), err, **error_zeros(req.subject))
            return True

        return on_request

    def _requester(self, origin: Any, hdr: int, msg: Any) -> Account | None:
        """The account a request came from: the import's Nats-Request-Info, else the client's."""
        srv = self.js.server
        if hdr > 0:
            raw = wire.get_header(bytes(msg[:hdr]), "Nats-Request-Info")
            if raw:
                try:
                    name = json.loads(raw).get("acc", "")
                except (ValueError, AttributeError):
                    name = ""
                if name:
                    return srv.accounts.get(name)
        return getattr(origin, "account", None)

    def send(self, reply: bytes, payload: bytes) -> None:
        """Publish an answer in the system account; the import takes it to the requester."""
        assert self.client is not None and self.account is not None
        deliver_msg(self.client, self.account, reply, None, -1, payload + b"\r\n")


# The response type of each endpoint, for error answers raised before a handler knew it.
_TYPES = {
    "INFO": "io.nats.jetstream.api.v1.account_info_response",
    "STREAM.CREATE": "io.nats.jetstream.api.v1.stream_create_response",
    "STREAM.UPDATE": "io.nats.jetstream.api.v1.stream_update_response",
    "STREAM.INFO": "io.nats.jetstream.api.v1.stream_info_response",
    "STREAM.NAMES": "io.nats.jetstream.api.v1.stream_names_response",
    "STREAM.LIST": "io.nats.jetstream.api.v1.stream_list_response",
    "STREAM.DELETE": "io.nats.jetstream.api.v1.stream_delete_response",
    "STREAM.PURGE": "io.nats.jetstream.api.v1.stream_purge_response",
    "STREAM.MSG.GET": "io.nats.jetstream.api.v1.stream_msg_get_response",
    "STREAM.MSG.DELETE": "io.nats.jetstream.api.v1.stream_msg_delete_response",
    "STREAM.SNAPSHOT": "io.nats.jetstream.api.v1.stream_snapshot_response",
    "STREAM.RESTORE": "io.nats.jetstream.api.v1.stream_restore_response",
    "CONSUMER.CREATE": "io.nats.jetstream.api.v1.consumer_create_response",
    "CONSUMER.DURABLE.CREATE": "io.nats.jetstream.api.v1.consumer_create_response",
    "CONSUMER.INFO": "io.nats.jetstream.api.v1.consumer_info_response",
    "CONSUMER.NAMES": "io.nats.jetstream.api.v1.consumer_names_response",
    "CONSUMER.LIST": "io.nats.jetstream.api.v1.consumer_list_response",
    "CONSUMER.DELETE": "io.nats.jetstream.api.v1.consumer_delete_response",
    "CONSUMER.PAUSE": "io.nats.jetstream.api.v1.consumer_pause_response",
}


# The fields an error answer of each endpoint carries with their zero values (the response
# struct's fields that are not omitempty).
_PAGED = {"total": 0, "offset": 0, "limit": 0}
_ZEROS: dict[str, dict[str, Any]] = {
    "STREAM.INFO": _PAGED,
    "STREAM.NAMES": {**_PAGED, "streams": None},
    "STREAM.LIST": {**_PAGED, "streams": []},
    "STREAM.PURGE": {"purged": 0},
    "STREAM.RESTORE": {"deliver_subject": ""},
    "CONSUMER.NAMES": {**_PAGED, "consumers": None},
    "CONSUMER.LIST": {**_PAGED, "consumers": []},
    "CONSUMER.PAUSE": {"paused": False, "pause_until": "0001-01-01T00:00:00Z"},
}


def _endpoint_key(subject: str) -> str:
    rest = subject[len("$JS.API."):]
    best = ""
    for k in _TYPES:
        if (rest == k or rest.startswith(k + ".")) and len(k) > len(best):
            best = k
    return best


def _response_type(subject: str) -> str:
    return _TYPES.get(_endpoint_key(subject), "io.nats.jetstream.api.v1.account_info_response")


def error_zeros(subject: str) -> dict[str, Any]:
    """The zero-valued fields of an error answer to `subject`."""
    return dict(_ZEROS.get(_endpoint_key(subject), {}))
