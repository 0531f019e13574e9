"""Checks of a whole set of options, made once they are read (from flags, a configuration
file or code), with nats-server's error texts: what the command line, `Server.from_config`
and a reload refuse before a server starts or changes."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from . import const
from .gotime import go_duration
from .options import Options, RouteURL


class UsageError(Exception):
    pass


def check_jetstream_options(opts: Options) -> None:
    """What pynats-server's JetStream cannot do: say so before starting (ValueError)."""
    if opts.cluster.enabled or opts.cluster.routes:
        raise ValueError(
            "JetStream in a cluster (replicated streams over RAFT) is not supported by "
            "pynats-server: run JetStream on a server without routes"
        )
    if opts.no_system_account:
        raise ValueError("JetStream needs the system account (no_system_account is set)")


def parse_url(text: str, what: str) -> RouteURL:
    """`nats://[user:pass@]host:port` (also nats-route://). Port -1 means random."""
    try:
        u = urlsplit(text.strip())
        u.hostname  # noqa: B018  # checks the brackets of an IPv6 host
    except ValueError as e:  # "Invalid IPv6 URL" (found by fuzzing)
        raise UsageError(f"error parsing {what} url [{text}]: {str(e).lower()}") from None
    if not u.scheme or not u.netloc:
        raise UsageError(f"error parsing {what} url [{text}]: missing scheme or host")
    host = u.hostname or ""
    try:
        port_text = u.netloc.rsplit(":", 1)[1] if ":" in u.netloc.split("@")[-1].strip("[]") else ""
        port = int(port_text) if port_text else 0
    except ValueError:
        raise UsageError(f"error parsing {what} url [{text}]: bad port") from None
    return RouteURL(
        host=host,
        port=port,
        user=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
        scheme=u.scheme,
    )


def validate(opts: Options) -> None:
    if opts.jetstream is not None:
        try:
            check_jetstream_options(opts)
        except ValueError as e:
            raise UsageError(str(e)) from None
    jwt_mode = bool(opts.operators or opts.trusted_keys)  # accounts come from the resolver
    if opts.system_account and opts.system_account != const.SYSTEM_ACCOUNT and not jwt_mode and not any(
        a.name == opts.system_account for a in opts.accounts
    ):
        raise UsageError("error resolving system account: account missing")
    if opts.lame_duck_duration < const.LAME_DUCK_MIN_DURATION:
        raise UsageError(
            f"invalid lame_duck_duration of {_dur(opts.lame_duck_duration)}, minimum is 30 seconds"
        )
    if opts.lame_duck_grace_period >= opts.lame_duck_duration:
        raise UsageError("invalid lame_duck_grace_period, needs to be less than lame_duck_duration")
    if opts.max_payload > opts.max_pending:
        raise UsageError(
            f"max_payload ({opts.max_payload}) cannot be higher than max_pending ({opts.max_pending})"
        )
    from .auth import validate as validate_auth

    problem = validate_auth(opts)
    if problem:
        raise UsageError(problem)
    from .websocket_config import validate as validate_websocket

    problem = validate_websocket(opts)
    if problem:
        raise UsageError(problem)
    if opts.cluster.routes and not opts.cluster.enabled:
        # nats-server solicits routes without a cluster listener only from a config file;
        # from the command line a cluster listener is needed for others to route back.
        pass


def _dur(seconds: float) -> str:

    return go_duration(seconds)
