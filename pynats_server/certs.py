"""Reading a peer certificate the way nats-server does (sans-IO, no cryptography).

OpenSSL verifies certificates; this module only reads fields out of the DER bytes it hands
over: the subject's RDNs in their original order (for verify_and_map and for the subject
strings nats-server logs and /connz shows), and the SubjectPublicKeyInfo (pinned_certs).
Go formats a subject as pkix.Name.String() (RFC 2253 order, its own escaping) and matches
user names against it with the rules of go-ldap's DN (nats-server's internal/ldap).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# -- DER ------------------------------------------------------------------------------------


def _tlv(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at `pos`."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if pos + n > len(buf):
        raise ValueError("truncated DER")
    return tag, pos, pos + n


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, contents start, contents end) of each element in a range."""
    out = []
    pos = start
    while pos < end:
        tag, s, e = _tlv(buf, pos)
        out.append((tag, pos, s, e))
        pos = e
    return out


def _tbs_fields(der: bytes) -> list[tuple[int, int, int, int]]:
    _, s, e = _tlv(der, 0)  # Certificate
    _, s, e = _tlv(der, s)  # TBSCertificate
    fields = _children(der, s, e)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    return fields  # serial, signature, issuer, validity, subject, spki, ...


def spki_sha256(der: bytes) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo: what pinned_certs lists."""
    _, start, _, end = _tbs_fields(der)[5]
    return hashlib.sha256(der[start:end]).hexdigest()


def cert_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _oid(b: bytes) -> str:
    parts = [b[0] // 40, b[0] % 40] if b[0] < 80 else [2, b[0] - 80]
    v = 0
    for x in b[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


_STRING_TAGS = {0x0C: "utf-8", 0x13: "latin-1", 0x16: "latin-1", 0x12: "latin-1", 0x14: "latin-1",
                0x1E: "utf-16-be", 0x1C: "utf-32-be"}  # fmt: skip


@dataclass
class ATV:
    """One attribute of a subject: its OID, its value as text (None if not a string)."""

    oid: str
    value: str | None


def subject_rdns(der: bytes) -> list[list[ATV]]:
    """The subject's RDNs, in the certificate's order."""
    _, _, s, e = _tbs_fields(der)[4]
    rdns = []
    for _, _, ss, se in _children(der, s, e):  # SET
        atvs = []
        for _, _, as_, ae in _children(der, ss, se):  # SEQUENCE {oid, value}
            (ot, _, os_, oe), (vt, _, vs, ve) = _children(der, as_, ae)[:2]
            enc = _STRING_TAGS.get(vt)
            atvs.append(ATV(_oid(der[os_:oe]), der[vs:ve].decode(enc, errors="replace") if enc else None))
        rdns.append(atvs)
    return rdns


# -- Go's subject strings -----------------------------------------------------------------

_NAMES = {"2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN", "2.5.4.5": "SERIALNUMBER",
          "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET", "2.5.4.17": "POSTALCODE"}  # fmt: skip
# The order pkix.Name.ToRDNSequence writes the attributes it knows (one RDN per type).
_ORDER = ("2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17", "2.5.4.10", "2.5.4.11", "2.5.4.3", "2.5.4.5")
_SINGLE = ("2.5.4.3", "2.5.4.5")  # CommonName and SerialNumber keep only the last value
DC_OID = "0.9.2342.19200300.100.1.25"
_PRINTABLE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '()+,-./:=?*")


def _escape(v: str) -> str:
    out = []
    b = v.encode()
    last = len(b) - 1
    k = 0  # Go ranges over the string: k is the byte offset of each rune
    for ch in v:
        esc = ch in ',+"\\<>;' or (ch == " " and k in (0, last)) or (ch == "#" and k == 0)
        out.append("\\" + ch if esc else ch)
        k += len(ch.encode())
    return "".join(out)


def _marshal_string(v: str) -> bytes:
    """Go's asn1.Marshal of a string: PrintableString when it can be, else UTF8String."""
    b = v.encode()
    tag = 0x13 if all(x in _PRINTABLE for x in b) else 0x0C
    n = len(b)
    if n < 0x80:
        return bytes((tag, n)) + b
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(ln))) + ln + b


def _rdns_string(rdns: list[list[ATV]]) -> str:
    """Go's RDNSequence.String(): last RDN first, values of an RDN joined by '+'."""
    parts = []
    for rdn in reversed(rdns):
        vals = []
        for a in rdn:
            name = _NAMES.get(a.oid)
            if name is None:
                vals.append(f"{a.oid}=#" + _marshal_string(a.value or "").hex())
            else:
                vals.append(f"{name}={_escape(a.value or '')}")
        parts.append("+".join(vals))
    return ",".join(parts)


def _to_rdn_sequence(rdns: list[list[ATV]]) -> list[list[ATV]]:
    """pkix.Name.ToRDNSequence() of a parsed certificate's subject."""
    by: dict[str, list[str]] = {}
    for rdn in rdns:
        for a in rdn:
            if a.value is not None and a.oid in _NAMES:
                by.setdefault(a.oid, []).append(a.value)
    out = []
    for oid in _ORDER:
        vals = by.get(oid)
        if vals:
            if oid in _SINGLE:
                vals = vals[-1:]
            out.append([ATV(oid, v) for v in vals])
    return out


def go_rdn_string(rdns: list[list[ATV]]) -> str:
    """cert.Subject.ToRDNSequence().String(): the known attributes only."""
    return _rdns_string(_to_rdn_sequence(rdns))


def go_subject_string(rdns: list[list[ATV]]) -> str:
    """cert.Subject.String(): the known attributes, then the others (e.g. emailAddress)."""
    extra = [[a] for rdn in rdns for a in rdn if a.oid not in _NAMES]
    return _rdns_string(extra + _to_rdn_sequence(rdns))


def subject_of(der: bytes) -> str:
    return go_subject_string(subject_rdns(der))


# -- go-ldap DNs ----------------------------------------------------------------------------

_LDAP_NAMES = {**_NAMES, DC_OID: "DC"}

DN = list[list[tuple[str, str]]]


def dn_from_rdns(rdns: list[list[ATV]]) -> DN | None:
    """ldap.FromRawCertSubject: RDNs (and values in each) in reverse, only known types."""
    out: DN = []
    for rdn in reversed(rdns):
        if not rdn:
            continue
        attrs = []
        for a in reversed(rdn):
            name = _LDAP_NAMES.get(a.oid)
            if name is None or a.value is None:
                return None
            attrs.append((name, a.value))
        out.append(attrs)
    return out


def parse_dn(text: str) -> DN | None:
    """ldap.ParseDN (RFC 4514), or None where it returns an error."""
    dn: DN = []
    rdn: list[tuple[str, str]] = []
    buf = bytearray()
    typ: str | None = None
    escaping = False
    trailing = 0
    b = text.encode()
    i = 0

    def take() -> str:
        nonlocal trailing
        s = bytes(buf[: len(buf) - trailing]).decode(errors="replace")
        buf.clear()
        trailing = 0
        return s

    while i < len(b):
        ch = b[i]
        if escaping:
            trailing = 0
            escaping = False
            if chr(ch) in ' "#+,;<=>\\':
                buf.append(ch)
                i += 1
                continue
            if i + 1 >= len(b):
                return None
            try:
                buf.append(int(b[i : i + 2], 16))
            except ValueError:
                return None
            i += 2
            continue
        if ch == 0x5C:  # backslash
            trailing = 0
            escaping = True
        elif ch == 0x3D:  # =
            typ = take()
            if i + 1 < len(b) and b[i + 1] == 0x23:  # '#': BER values are not supported
                return None
        elif ch in (0x2C, 0x2B):  # , +
            if not typ:
                return None
            rdn.append((typ, take()))
            typ = None
            if ch == 0x2C:
                dn.append(rdn)
                rdn = []
        elif ch == 0x20 and not buf:
            pass  # leading spaces
        else:
            trailing = trailing + 1 if ch == 0x20 else 0
            buf.append(ch)
        i += 1
    if buf:
        if not typ:
            return None
        rdn.append((typ, take()))
        dn.append(rdn)
    return dn


def _rdn_equal(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> bool:
    def has_all(x: list[tuple[str, str]], y: list[tuple[str, str]]) -> bool:
        return all(any(t1.lower() == t2.lower() and v1 == v2 for t1, v1 in x) for t2, v2 in y)

    return len(a) == len(b) and has_all(a, b) and has_all(b, a)


def dn_equal(a: DN, b: DN) -> bool:
    return len(a) == len(b) and all(_rdn_equal(x, y) for x, y in zip(a, b, strict=True))


def dn_rdns_match(a: DN, b: DN) -> bool:
    """The same RDNs in any order."""
    return len(a) == len(b) and all(any(_rdn_equal(x, y) for y in b) for x in a)


# -- verify_and_map -------------------------------------------------------------------------

# find_user(name, dn, is_dns_san): a user name, or None.
Lookup = Callable[[str, "DN | None", bool], "str | None"]


def map_certificate(der: bytes, peer: dict[str, Any], find_user: Lookup, debug: Callable[[str], None]) -> str | None:
    """The user a client certificate names, as nats-server's checkClientTLSCertSubject
    finds it: email SANs, then DNS SANs, then URI SANs, then the subject as a DN (exact,
    then with the RDNs in any order), then the subject string with its domain
    components, then without. `find_user(name, dn)` looks a user up by name (dn None) or
    by DN (name empty); `peer` is ssl's decoded certificate (for the SANs)."""
    rdns = subject_rdns(der)
    sans = peer.get("subjectAltName") or ()
    emails = [v for k, v in sans if k == "email"]
    dns_names = [v for k, v in sans if k == "DNS"]
    uris = [v for k, v in sans if k == "URI"]
    if not emails and not go_subject_string(rdns) and not uris:
        debug("User required in cert, none found")
        return None
    # Go's switch falls through from emails to DNS names to URIs, entering at the first
    # kind the certificate has.
    kinds = [("email", emails), ("SAN", dns_names), ("URI", uris)]
    start = 0 if emails else (1 if dns_names else 2)
    for label, names in kinds[start:]:
        for n in names:
            user = find_user(n, None, label == "SAN")
            if user is not None:
                debug(f"Using {label} found in cert for auth [{_goq(user)}]")
                return user
    rdn = go_rdn_string(rdns)
    dn = dn_from_rdns(rdns)
    if dn is not None:
        user = find_user("", dn, False)
        if user is not None:
            debug(f"Using DistinguishedNameMatch for auth [{_goq(user)}]")
            return user
        debug(f"DistinguishedNameMatch could not be used for auth [{_goq(rdn)}]")
    dcs = ",".join(f"DC={a.value}" for r in rdns for a in r if a.oid == DC_OID and a.value is not None)
    if dcs:
        u = rdn + "," + dcs
        user = find_user(u, None, False)
        if user is not None:
            debug(f"Using RDNSequence for auth [{_goq(user)}]")
            return user
        debug(f"RDNSequence could not be used for auth [{_goq(u)}]")
    user = find_user(rdn, None, False)
    if user is not None:
        debug(f"Using certificate subject for auth [{_goq(user)}]")
        return user
    debug(f"User in cert [{_goq(rdn)}], not found")
    return None


def find_by_name_or_dn(names: list[str]) -> Lookup:
    """nats-server's lookup: a user named exactly so, else one whose name parses as a DN
    equal to the certificate's (then the same RDNs in another order)."""

    def find(name: str, dn: DN | None, _dns: bool = False) -> str | None:
        if name:
            return name if name in names else None
        if dn is None:
            return None
        parsed = []
        for u in names:
            d = parse_dn(u)
            if d is None:
                continue
            if dn_equal(d, dn):
                return u
            parsed.append((u, d))
        for u, d in parsed:
            if dn_rdns_match(d, dn):
                return u
        return None

    return find


def dns_name_matches(san: str, hosts: list[str]) -> bool:
    """A DNS SAN against host names (RFC 6125 6.4.3: `*` only as the whole leftmost label)."""
    labels = san.lower().split(".")
    for h in hosts:
        hl = h.lower().split(".")
        if len(hl) != len(labels):
            continue
        start = 1 if labels[0] == "*" else 0
        if labels[start:] == hl[start:]:
            return True
    return False


def route_cert_allowed(der: bytes, peer: dict[str, Any], *, check_known_urls: bool, map_user: str | None,
                       route_hosts: list[str], debug: Callable[[str], None]) -> bool:
    """nats-server's isRouterAuthorized with cluster TLS map / verify_cert_and_check_known_urls:
    a DNS SAN that is one of our route URLs' hosts, or a name equal to the cluster user."""

    def find(name: str, dn: DN | None, is_dns: bool) -> str | None:
        if not name:
            return None
        if check_known_urls and is_dns and dns_name_matches(name, route_hosts):
            return name
        if map_user is not None and name == map_user:
            return name
        return None

    return map_certificate(der, peer, find, debug) is not None


def _goq(s: str) -> str:
    """Go's %q (enough for names and DNs)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def not_after(der: bytes) -> float:
    """The certificate's notAfter, as a Unix time."""
    import calendar

    _, _, s, e = _tbs_fields(der)[3]  # Validity
    _, (tag, _, s2, e2) = _children(der, s, e)[:2]
    text = der[s2:e2].decode("ascii")
    if tag == 0x17:  # UTCTime: YYMMDDHHMMSSZ
        yy = int(text[:2])
        text = ("19" if yy >= 50 else "20") + text
    t = (int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14]))
    return float(calendar.timegm(t + (0, 0, 0)))


def first_cert_der(path: str) -> bytes | None:
    """The first certificate of a PEM file, as DER (None if unreadable)."""
    import ssl

    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read()
        start = text.index("-----BEGIN CERTIFICATE-----")
        end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
        return ssl.PEM_cert_to_DER_cert(text[start:end])
    except (OSError, ValueError):
        return None
