"""Server options, with nats-server's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from . import const


class _Default(float):
    """A default number, told apart from the same number set on purpose.

    nats-server reads an unset timeout as "work it out": the auth timeout becomes the TLS
    timeout plus one second once TLS is configured, unless one was given."""


AUTH_TIMEOUT_DEFAULT = _Default(const.AUTH_TIMEOUT)


def is_default(v: float) -> bool:
    return type(v) is _Default


@dataclass
class TLSOptions:
    """A `tls {}` block (or the --tls flags): what the server's SSLContext is built from
    (tlsctx.server_context), and the handshake rules around it."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    verify: bool = False  # require and verify client certificates
    map: bool = False  # verify_and_map: the client certificate names the user
    insecure: bool = False  # routes: do not verify the certificate of a route we dial
    check_known_urls: bool = False  # routes: verify_cert_and_check_known_urls
    timeout: float = 0.0  # 0: nats-server's default (2 s)
    handshake_first: bool = False  # TLS before INFO (nats-server 2.10+)
    handshake_first_fallback: float = 0.0  # >0: INFO after this long without a handshake
    ciphers: list[str] | None = None  # Go cipher suite names (TLS 1.2; 1.3 suites are fixed)
    curve_preferences: list[str] | None = None
    allow_insecure_ciphers: bool = False
    pinned_certs: set[str] | None = None  # hex SHA-256 of the peer's SubjectPublicKeyInfo
    min_version: str = ""  # "1.2" or "1.3"
    rate_limit: int = 0  # accepted, not enforced

    @property
    def handshake_timeout(self) -> float:
        return self.timeout or const.TLS_TIMEOUT


@dataclass
class WebsocketOptions:
    """The `websocket {}` block (nats-server's WebsocketOpts): a second listener whose
    clients speak the NATS protocol inside WebSocket frames (docs/DESIGN.md, "WebSocket")."""

    host: str = ""  # "" with a port: nats-server's default host (0.0.0.0)
    port: int = 0  # 0: no websocket listener; -1: a random port
    advertise: str = ""
    no_tls: bool = False  # nats-server refuses a listener with neither tls {} nor no_tls
    tls: TLSOptions | None = None
    same_origin: bool = False
    allowed_origins: list[str] = field(default_factory=list)
    compression: bool = False  # permessage-deflate, when the client asks for it too
    handshake_timeout: float = 0.0  # seconds; 0: none (as nats-server)
    # The block's own authorization (it replaces the server's for websocket clients).
    username: str = ""
    password: str = ""
    token: str = ""
    auth_timeout: float = 0.0  # 0: the server's
    no_auth_user: str = ""
    # Cookies of the upgrade request read as CONNECT's jwt / user / pass / auth_token.
    jwt_cookie: str = ""
    user_cookie: str = ""
    pass_cookie: str = ""
    token_cookie: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # added to the 101 answer
    ping_interval: float = 0.0  # 0: the server's

    @property
    def auth_override(self) -> bool:
        """nats-server's authOverride: the block's authorization replaces the server's."""
        return bool(self.username or self.token or self.no_auth_user)


@dataclass
class RouteURL:
    """A route to dial: `nats-route://[user:pass@]host:port`."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    scheme: str = "nats-route"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def redacted(self) -> str:
        auth = f"{self.user}:xxxxx@" if self.user else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"


@dataclass
class ResponsePermission:
    """`allow_responses`: the user may publish to the reply subjects of messages it
    received, up to `max_msgs` responses each within `expires` seconds (0: the defaults,
    1 and 2 minutes; negative: no limit)."""

    max_msgs: int = 1
    expires: float = 120.0


@dataclass
class Permissions:
    """A user's allow and deny lists (subscribe entries may be `subject queue`).

    None is no list. An empty publish allow list allows nothing (as in nats-server);
    empty deny lists and an empty subscribe allow list are no lists."""

    publish_allow: list[str] | None = None
    publish_deny: list[str] | None = None
    subscribe_allow: list[str] | None = None
    subscribe_deny: list[str] | None = None
    response: ResponsePermission | None = None


@dataclass
class User:
    """A users-list entry: a user name and password (plain text or a bcrypt hash), or an
    nkey (a public user key `U...`, authenticated by signing the INFO nonce)."""

    user: str = ""
    password: str = ""
    permissions: Permissions | None = None
    nkey: str = ""
    # Upper-case connection types (STANDARD, WEBSOCKET, ...); empty: any.
    allowed_connection_types: set[str] = field(default_factory=set)
    account: str = ""  # the account the user is bound to ("": the global account)


@dataclass
class ExportConfig:
    """One entry of an account's `exports` (a stream or a service)."""

    subject: str
    service: bool = False
    accounts: list[str] | None = None  # None: public
    response_type: str = "Singleton"
    response_threshold: float = 0.0  # 0: nats-server's default (2 minutes)
    account_token_position: int = 0


@dataclass
class ImportConfig:
    """One entry of an account's `imports`: `subject` of `account`, seen here as `to`."""

    account: str
    subject: str
    service: bool = False
    to: str = ""
    prefix: str = ""
    share: bool = False


@dataclass
class JetStreamLimits:
    """An account's JetStream limits (`accounts { A { jetstream {...} } }`); -1: unlimited."""

    max_memory: int = -1
    max_storage: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    storage_max_stream_bytes: int = -1
    max_bytes_required: bool = False


@dataclass
class JetStreamOptions:
    """`-js` / `jetstream {}`: where streams are stored and how much they may use."""

    store_dir: str = ""  # "": the system's temporary directory + /nats, as nats-server
    max_memory: int = -1  # -1: 75% of the machine's memory
    max_storage: int = -1  # -1: 75% of the free space where store_dir is
    domain: str = ""
    sync_interval: float = 120.0  # seconds between syncs of file stores to disk
    sync_always: bool = False
    strict: bool = True


@dataclass
class AccountConfig:
    name: str
    exports: list[ExportConfig] = field(default_factory=list)
    imports: list[ImportConfig] = field(default_factory=list)
    default_permissions: Permissions | None = None
    jetstream: JetStreamLimits | None = None  # None: no JetStream for this account


@dataclass
class ResolverOptions:
    """The account resolver of operator mode: `MEM` (accounts from `resolver_preload` only),
    `FULL` (every account JWT in `dir`, kept in sync with the cluster) or `CACHE` (some,
    fetched from other servers on demand). Durations in seconds; 0: nats-server's default."""

    kind: str = "MEM"  # MEM, FULL or CACHE
    dir: str = ""
    allow_delete: bool = False
    hard_delete: bool = False
    limit: int = 0  # JWTs kept (0: no limit for FULL, 1000 for CACHE)
    ttl: float = 0.0  # CACHE: how long a JWT is kept
    interval: float = 0.0  # FULL: how often the store is compared with the cluster's (1 m)
    timeout: float = 0.0  # fetching a JWT from other servers (2 s)


@dataclass
class ClusterOptions:
    host: str = ""  # empty: no cluster listener
    port: int = 0  # -1: random
    name: str = ""  # empty: a generated (dynamic) name
    advertise: str = ""
    no_advertise: bool = False
    connect_retries: int = 0
    user: str | None = None
    password: str | None = None
    auth_timeout: float = AUTH_TIMEOUT_DEFAULT
    tls: TLSOptions | None = None
    ping_interval: float = 0.0  # 0: the server's ping_interval, capped at 30 s
    ping_max: int = 0
    routes: list[RouteURL] = field(default_factory=list)
    # Route permissions: import (publish lists) filters the interest we send, export
    # (subscribe lists) the interest we accept (nats-server setRoutePermissions).
    permissions: Permissions | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.host) or self.port != 0

    @property
    def tls_timeout(self) -> float:
        return self.tls.handshake_timeout if self.tls is not None else const.TLS_TIMEOUT

    def route_auth_timeout(self) -> float:
        if self.tls is not None and is_default(self.auth_timeout):
            return self.tls_timeout + 1.0
        return float(self.auth_timeout)


# -- leaf nodes (the `leafnodes {}` block; read by leaf_config.py) ----------------------

DEFAULT_LEAFNODE_PORT = 7422
DEFAULT_RECONNECT = 1.0  # seconds (nats-server DEFAULT_LEAF_NODE_RECONNECT)
DEFAULT_FIRST_INFO_TIMEOUT = 1.0  # DEFAULT_LEAFNODE_INFO_WAIT


@dataclass
class LeafURL:
    """A remote to dial: `nats-leaf://[user:pass@]host:port` (or nats://, tls://)."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_port}"

    @property
    def host_port(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"


@dataclass
class LeafUser:
    """An entry of `leafnodes { authorization { users [...] } }`."""

    user: str
    password: str = ""
    account: str = ""


@dataclass
class RemoteLeaf:
    """One entry of `leafnodes { remotes [...] }`: where to connect as a leaf node."""

    urls: list[LeafURL] = field(default_factory=list)
    account: str = ""  # the local account the connection is bound to ("": $G)
    credentials: str = ""  # a .creds file: user JWT and seed (signs the hub's nonce)
    nkey: str = ""  # a user seed
    tls: TLSOptions | None = None
    tls_required: bool = False  # `tls: true` or a tls:// URL without a tls block
    hub: bool = False
    deny_imports: list[str] = field(default_factory=list)
    deny_exports: list[str] = field(default_factory=list)
    no_randomize: bool = False
    first_info_timeout: float = DEFAULT_FIRST_INFO_TIMEOUT
    disabled: bool = False


@dataclass
class LeafNodeOptions:
    """`leafnodes {}`: the listener that accepts leaf nodes, its auth, and the remotes."""

    host: str = ""
    port: int = 0  # 0: no listener; -1: a random port
    advertise: str = ""
    no_advertise: bool = False
    user: str = ""
    password: str = ""
    account: str = ""  # the account the single authorization user (or nkey) binds to
    nkey: str = ""  # a public user nkey: the leaf signs the INFO nonce with its seed
    users: list[LeafUser] = field(default_factory=list)
    auth_timeout: float = 0.0  # 0: nats-server's default (the client one)
    tls: TLSOptions | None = None
    reconnect: float = DEFAULT_RECONNECT
    remotes: list[RemoteLeaf] = field(default_factory=list)
    isolate: bool = False

    @property
    def listening(self) -> bool:
        return self.port != 0

    @property
    def enabled(self) -> bool:
        return self.listening or bool(self.remotes)


def parse_leaf_url(text: str) -> LeafURL:
    """A remote URL as nats-server's parseURL reads it (default port 7422)."""
    u = urlsplit(text.strip())
    if not u.scheme or not u.hostname:
        raise ValueError(f"error parsing leafnode url [{text!r}]")
    try:
        port = u.port or DEFAULT_LEAFNODE_PORT
    except ValueError as e:
        raise ValueError(f"error parsing leafnode url [{text!r}]: {e}") from None
    user = unquote(u.username) if u.username is not None else None
    pw = unquote(u.password) if u.password is not None else None
    return LeafURL(u.scheme, u.hostname, port, user, pw)



@dataclass
class Options:
    host: str = const.DEFAULT_HOST
    port: int = const.DEFAULT_PORT
    server_name: str = ""
    client_advertise: str = ""

    max_payload: int = const.MAX_PAYLOAD_SIZE
    max_control_line: int = const.MAX_CONTROL_LINE_SIZE
    max_pending: int = const.MAX_PENDING_SIZE
    max_connections: int = const.DEFAULT_MAX_CONNECTIONS
    max_subscriptions: int = 0  # per connection; 0: no limit

    ping_interval: float = const.DEFAULT_PING_INTERVAL
    ping_max: int = const.DEFAULT_PING_MAX_OUT
    write_deadline: float = const.DEFAULT_WRITE_DEADLINE
    no_header_support: bool = False

    # Authentication: one user/password, or a token, or a users list (users and nkeys).
    # A password or token may be a bcrypt hash.
    username: str | None = None
    password: str | None = None
    authorization: str | None = None  # token
    users: list[User] = field(default_factory=list)
    no_auth_user: str = ""  # the user a client that sends no credentials becomes
    auth_timeout: float = AUTH_TIMEOUT_DEFAULT

    # Client TLS: None is plaintext. allow_non_tls lets plaintext clients in as well.
    tls: TLSOptions | None = None
    allow_non_tls: bool = False

    # Accounts (config file `accounts {}`); users name theirs in User.account.
    accounts: list[AccountConfig] = field(default_factory=list)
    system_account: str = ""  # "": $SYS, unless no_system_account
    no_system_account: bool = False

    # JetStream: None is off.
    jetstream: JetStreamOptions | None = None

    # JWT operator mode (see docs/JWT.md): the operator JWTs (as given: a JWT or a file),
    # or bare trusted operator keys, and where account JWTs come from.
    operators: list[str] = field(default_factory=list)
    trusted_keys: list[str] = field(default_factory=list)
    resolver: ResolverOptions | None = None
    resolver_preload: dict[str, str] = field(default_factory=dict)
    resolver_pinned_accounts: list[str] | None = None

    # Monitoring: 0 disables it, -1 picks a random port.
    http_host: str = ""
    http_port: int = 0
    https_port: int = 0  # monitoring over TLS, with the client TLS certificate
    http_base_path: str = ""  # the monitoring endpoints under this path ("/nats/varz")
    max_closed_clients: int = const.DEFAULT_MAX_CLOSED_CLIENTS  # /connz?state=closed keeps these

    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    websocket: WebsocketOptions = field(default_factory=WebsocketOptions)
    # `leafnodes {}` (options.py; the configuration block in leaf_config.py): the leaf node listener and the remotes we dial.
    leafnode: LeafNodeOptions = field(default_factory=LeafNodeOptions)

    lame_duck_duration: float = const.DEFAULT_LAME_DUCK_DURATION
    lame_duck_grace_period: float = const.DEFAULT_LAME_DUCK_GRACE_PERIOD

    # Logging
    debug: bool = False
    trace: bool = False
    trace_verbose: bool = False
    logtime: bool = True
    log_file: str = ""
    log_size_limit: int = 0  # bytes; 0: the log file is never rotated
    log_max_num: int = 0  # rotated files kept (0: all)
    logtime_utc: bool = False
    max_traced_msg_len: int = 0  # payloads in trace lines cut to this (0: whole)
    syslog: bool = False
    remote_syslog: str = ""  # udp://host:port, tcp://host:port or unix:///path
    no_log: bool = False

    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    # The event loop for the CLI: "auto" (uvloop when installed), "uvloop" or "asyncio".
    loop: str = "auto"

    @property
    def auth_required(self) -> bool:
        return bool(self.username or self.authorization or self.users)

    @property
    def tls_timeout(self) -> float:
        return self.tls.handshake_timeout if self.tls is not None else const.TLS_TIMEOUT

    def client_auth_timeout(self) -> float:
        """nats-server's default auth timeout is the TLS timeout plus 1 s with TLS on."""
        if self.tls is not None and is_default(self.auth_timeout):
            return self.tls_timeout + 1.0
        return float(self.auth_timeout)
