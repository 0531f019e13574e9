"""What a leaf node connection may carry: nats-server's permissions of a LEAF connection
(client.go setPermissions, leafnode.go processLeafNodeConnect / processLeafnodeInfo /
processLeafSub / leafMsgAllowed, deliverMsg). Sans-IO.

A user's permissions are written from the leaf's side: `publish` is what the leaf may send
into the hub, `subscribe` what it may receive from it. The connection turns them around, as
nats-server does on the hub (it swaps publish and subscribe of an accepted leaf), so that
both roles read the same way:

- `may_send(subject)`: a message may go out over this connection (hub: the user's subscribe
  permission and the leaf's CONNECT `deny_pub`; leaf: the hub's `export` and our
  `deny_exports`). Also what a literal LS+ from the peer must pass.
- `may_tell(subject)`: interest we may send the peer as LS+ (hub: the user's publish
  permission; leaf: the hub's `import` and our `deny_imports`). A wildcard subject passes
  when any allowed subject falls within it; deliveries are checked one by one.
- `inbound_ok(subject)`: a message the peer sent us may go on (hub: the user's publish
  permission, exactly as configured; leaf: `may_tell`); replies the connection was given
  with `allow_responses` pass too.

A hub that refuses an LS+ or a message tells the leaf (-ERR 'Permissions Violation for
Subscription/Publish to "x"'), logs it and closes; a leaf drops them silently.

Every leaf connection, with or without a user's permissions, also may not carry the
JetStream API (`$JS.API.>`, `$KV.>`, `$OBJ.>`; in the system account also `$JSC.>` and
`$NRG.>`) either way: nats-server denies them when it does not extend JetStream over the
connection (different domains, which is always the case with pynats-server). Requests a leaf
sends into the hub still pass (only the hub's check of the user's publish list applies).
A connection without other permissions checks these by prefix (`js_deny_prefixes`).
"""

from __future__ import annotations

from typing import Any

from .auth import (
    DEFAULT_RESPONSE_EXPIRES,
    DEFAULT_RESPONSE_MAX_MSGS,
    ClientPermissions,
    _has_wildcard,
    _sublist,
)
from .options import Permissions, ResponsePermission
from .protocol.subjects import match_literal, subjects_collide

_MQTT = b"$MQTT."
JS_DENY = ("$JS.API.>", "$KV.>", "$OBJ.>")  # nats-server's denyAllClientJs
SYS_JS_DENY = ("$JSC.>", "$NRG.>", *JS_DENY)  # denyAllJs (the system account)
JS_DENY_PREFIXES = tuple(p[:-1].encode() for p in JS_DENY)
SYS_JS_DENY_PREFIXES = tuple(p[:-1].encode() for p in SYS_JS_DENY)


def js_deny_prefixes(system: bool) -> tuple[bytes, ...]:
    """The JetStream subjects a leaf connection of (or not of) the system account may not
    carry, as subject prefixes."""
    return SYS_JS_DENY_PREFIXES if system else JS_DENY_PREFIXES
# Subjects whose interest and messages are not checked (loop detection, gateway replies).
_UNCHECKED_INTEREST = (b"$LDS.", b"$GR.", b"_GR_.")
_GW_PREFIX = b"_GR_."
_GW_SUBJECT_OFFSET = 5 + 7 + 7  # "_GR_." + 6-char cluster hash + "." + 6-char server hash + "."
_OLD_GW_PREFIX = b"$GR."
_OLD_GW_SUBJECT_OFFSET = 4 + 5  # "$GR." + 4-char hash + "."


def _gw_stripped(subject: bytes) -> tuple[bytes, bool]:
    """nats-server's getGWRoutedSubjectOrSelf: the subject inside a gateway-routed reply."""
    if len(subject) > _GW_SUBJECT_OFFSET and subject.startswith(_GW_PREFIX):
        return subject[_GW_SUBJECT_OFFSET:], True
    if len(subject) > _OLD_GW_SUBJECT_OFFSET and subject.startswith(_OLD_GW_PREFIX):
        return subject[_OLD_GW_SUBJECT_OFFSET:], True
    return subject, False


class LeafPermissions(ClientPermissions):
    """A leaf connection's permissions, in the connection's orientation (see the module)."""

    def __init__(
        self,
        send_allow: list[str] | None,
        send_deny: list[str] | None,
        tell_allow: list[str] | None,
        tell_deny: list[str] | None,
        *,
        hub: bool,
        response: ResponsePermission | None = None,
        export: tuple[list[str] | None, list[str] | None] | None = None,
    ) -> None:
        super().__init__(Permissions(publish_allow=send_allow, publish_deny=send_deny or None))
        self.hub = hub
        # An empty allow list allows nothing (a user's publish allow list that
        # allow_responses emptied); empty deny lists are none.
        self.sub_allow = _sublist(tell_allow) if tell_allow is not None else None
        self.sub_deny = _sublist(tell_deny) if tell_deny else None
        self._tell_allow = [s.encode() for s in tell_allow] if tell_allow is not None else []
        self._darray = []  # no delivery-time deny filter (see may_tell)
        if response is not None:
            self.resp = ResponsePermission(response.max_msgs or DEFAULT_RESPONSE_MAX_MSGS,
                                           response.expires or DEFAULT_RESPONSE_EXPIRES)
            self.replies = {}
        # The hub's check of inbound messages: the user's publish lists as configured.
        self._export_allow: list[bytes] | None = None
        self._export_deny: list[bytes] = []
        if export is not None:
            allow, deny = export
            self._export_allow = [s.encode() for s in allow] if allow is not None else None
            self._export_deny = [s.encode() for s in deny or ()]

    @classmethod
    def for_hub(cls, user: Permissions | None, deny_pub: list[str], *, system: bool = False) -> LeafPermissions | None:
        """An accepted leaf: its user's permissions turned around, plus its CONNECT
        `deny_pub` (what it does not want to receive) and the JetStream denies. None when
        there is no user permission and no deny_pub (the JetStream prefixes are then
        checked without this)."""
        js = list(SYS_JS_DENY if system else JS_DENY)
        if user is None:
            if not deny_pub:
                return None
            return cls(None, list(deny_pub) + js, None, js, hub=True)
        pub_allow = user.publish_allow
        if user.response is not None and pub_allow is None:
            pub_allow = []  # nats-server's validateResponsePermissions
        return cls(
            user.subscribe_allow or None,
            list(user.subscribe_deny or ()) + list(deny_pub) + js,
            pub_allow,
            list(user.publish_deny or ()) + js,
            hub=True,
            response=user.response,
            export=(pub_allow, user.publish_deny),
        )

    @classmethod
    def for_spoke(cls, info: dict[str, Any] | None, deny_exports: list[str],
                  deny_imports: list[str], *, system: bool = False) -> LeafPermissions | None:
        """A leaf we dialled: what the hub's INFO `export`/`import` allow (if it sent
        them), our remote's deny_exports / deny_imports, and the JetStream denies. None
        when nothing but the JetStream denies limits it."""
        exp = _subject_permission(info.get("export")) if info else None
        imp = _subject_permission(info.get("import")) if info else None
        if exp is None and imp is None and not deny_exports and not deny_imports:
            return None
        js = list(SYS_JS_DENY if system else JS_DENY)
        send_allow, send_deny = exp if exp is not None else (None, None)
        tell_allow, tell_deny = imp if imp is not None else (None, None)
        return cls(
            send_allow,
            list(send_deny or ()) + list(deny_exports) + js,
            tell_allow or None,
            list(tell_deny or ()) + list(deny_imports) + js,
            hub=False,
        )

    # -- checks

    def _static_pub(self, subject: bytes) -> bool:
        if self.pub_allow is not None and subject.startswith(_MQTT):
            # Other kinds than clients may always use $MQTT. (the deny list still applies).
            return self.pub_deny is None or not self.pub_deny.match(subject).psubs
        return super()._static_pub(subject)

    def may_send(self, subject: bytes) -> bool:
        """A message may go out on this connection (deliverMsg's check of a LEAF)."""
        return self.can_publish(_gw_stripped(subject)[0])

    def may_tell(self, subject: bytes) -> bool:
        """nats-server's canSubscribe on a leaf connection: interest we may tell the peer.
        (nats-server also loads a delivery-time filter from the subscribe deny list when a
        wildcard overlaps it; the publish side's lists already cover what it would drop.)"""
        if subject.startswith(_UNCHECKED_INTEREST):
            return True
        allowed = True
        if self.sub_allow is not None and not subject.startswith(_MQTT):
            r = self.sub_allow.match(subject)
            allowed = bool(r.psubs)
            if not allowed and _has_wildcard(subject):
                allowed = any(subjects_collide(a, subject) for a in self._tell_allow)
        if allowed and self.sub_deny is not None:
            allowed = not self.sub_deny.match(subject).psubs
        return allowed

    def accepts_interest(self, subject: bytes) -> bool:
        """An LS+ from the peer (processLeafSub): a literal subject must be one we may send."""
        if subject.startswith(_UNCHECKED_INTEREST) or _has_wildcard(subject):
            return True
        return self.can_publish(subject)

    def inbound_ok(self, subject: bytes) -> bool:
        """A message from the peer (leafMsgAllowed)."""
        checked, gw = _gw_stripped(subject)
        if checked.startswith(b"_R_.") or (checked.startswith(b"$JS.ACK.") and len(checked) > 8):
            return True
        if self.hub:
            if self._export_ok(checked):
                return True
        elif gw or self.may_tell(checked):
            return True
        return self.replies is not None and self._response_allowed(subject)

    def _export_ok(self, subject: bytes) -> bool:
        allowed = True
        if self._export_allow is not None and not subject.startswith(_MQTT):
            allowed = any(match_literal(subject, a) for a in self._export_allow)
        if allowed and self._export_deny:
            allowed = not any(match_literal(subject, d) for d in self._export_deny)
        return allowed


def _subject_permission(v: Any) -> tuple[list[str] | None, list[str] | None] | None:
    """An INFO `import`/`export` object: (allow, deny), None for absent ones."""
    if not isinstance(v, dict):
        return None
    allow = v.get("allow")
    deny = v.get("deny")
    return (
        [str(x) for x in allow] if isinstance(allow, list) else None,
        [str(x) for x in deny] if isinstance(deny, list) else None,
    )


def info_permissions(user: Permissions | None) -> dict[str, Any]:
    """The `import` and `export` an accepted leaf's INFO tells it (its user's subscribe and
    publish permissions), as nats-server's SubjectPermission JSON (empty lists left out)."""
    if user is None:
        return {}
    out: dict[str, Any] = {}
    if user.subscribe_allow is not None or user.subscribe_deny is not None:
        out["import"] = _sp_json(user.subscribe_allow, user.subscribe_deny)
    pub_allow = user.publish_allow
    if user.response is not None and pub_allow is None:
        pub_allow = []
    if pub_allow is not None or user.publish_deny is not None:
        out["export"] = _sp_json(pub_allow, user.publish_deny)
    return out


def _sp_json(allow: list[str] | None, deny: list[str] | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if allow:
        d["allow"] = list(allow)
    if deny:
        d["deny"] = list(deny)
    return d
