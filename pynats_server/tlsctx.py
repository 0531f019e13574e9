"""SSLContexts from TLS options, with nats-server's start-up error texts.

Everything cryptographic is the standard library's `ssl` (OpenSSL). This module only
translates a `tls {}` block into contexts the way nats-server's GenTLSConfig does (TLS 1.2
at least, client certificates required with `verify`, the CA file as the pool they are
checked against) and turns what OpenSSL reports into the words nats-server uses. One
function builds each context from an options object, so a configuration reload can rebuild
them.
"""

from __future__ import annotations

import errno
import ssl

from .options import TLSOptions


class TLSConfigError(ValueError):
    """A TLS option nats-server would refuse at start-up; the text is nats-server's."""


# Go's cipher suite names (crypto/tls) and OpenSSL's names for the same suites. TLS 1.3
# suites cannot be chosen in Go (nor in Python's ssl): they are accepted and change nothing.
_TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
SECURE_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    **{n: "" for n in _TLS13},
}
# What Go 1.26 (nats-server 2.14) lists as insecure: refused unless allow_insecure_cipher_suites.
INSECURE_CIPHERS = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
}
_GO_NAME = {v: k for k, v in {**SECURE_CIPHERS, **INSECURE_CIPHERS}.items() if v}
CURVES = ("X25519MLKEM768", "X25519", "CurveP256", "CurveP384", "CurveP521")
TLS_VERSIONS = {"1.0": 0x0301, "1.1": 0x0302, "1.2": 0x0303, "1.3": 0x0304}


def cipher_suite_name(openssl_name: str) -> str:
    """The suite as nats-server logs it and /connz shows it (Go's tls.CipherSuiteName)."""
    if openssl_name.startswith("TLS_"):
        return openssl_name  # TLS 1.3: OpenSSL uses the IANA names too
    return _GO_NAME.get(openssl_name, openssl_name)


def tls_version_name(version: str | None) -> str:
    """`TLSv1.3` -> `1.3`, as nats-server prints versions."""
    return (version or "").replace("TLSv", "")


def _read(path: str) -> bytes:
    """The file, or TLSConfigError with Go's wording for why not."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        what = {errno.ENOENT: "no such file or directory", errno.EACCES: "permission denied"}
        if e.errno == errno.EISDIR:
            raise TLSConfigError(f"read {path}: is a directory") from None
        reason = what.get(e.errno or 0, (e.strerror or str(e)).lower())
        raise TLSConfigError(f"open {path}: {reason}") from None
    except ValueError:  # a NUL in the path (found by fuzzing): Go's open() says EINVAL
        raise TLSConfigError(f"open {path}: invalid argument") from None


def _load_pair(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    pre = "error parsing X509 certificate/key pair: "
    try:
        cert = _read(cert_file)
        key = _read(key_file)
    except TLSConfigError as e:
        raise TLSConfigError(pre + str(e)) from None
    if b"-----BEGIN" not in cert:
        raise TLSConfigError(pre + "tls: failed to find any PEM data in certificate input")
    if b"PRIVATE KEY-----" not in key:
        if b"-----BEGIN CERTIFICATE" in key:
            raise TLSConfigError(pre + "tls: found a certificate rather than a key in the PEM for the private key")
        raise TLSConfigError(pre + "tls: failed to find any PEM data in key input")
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            raise TLSConfigError(pre + "tls: private key does not match public key") from None
        raise TLSConfigError(pre + f"tls: {e.reason or e}".lower()) from None
    except OSError as e:
        raise TLSConfigError(pre + str(e)) from None


def _load_ca(ctx: ssl.SSLContext, ca_file: str) -> None:
    pem = _read(ca_file)
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise TLSConfigError("failed to parse root ca certificate")
    try:
        ctx.load_verify_locations(cadata=pem.decode("ascii", errors="replace"))
    except (ssl.SSLError, ValueError):
        raise TLSConfigError("failed to parse root ca certificate") from None


def check_options(tls: TLSOptions) -> None:
    """What nats-server's parseTLS refuses in the options themselves (files aside)."""
    insecure = []
    for name in tls.ciphers or ():
        if name in INSECURE_CIPHERS:
            insecure.append(name)
        elif name not in SECURE_CIPHERS:
            raise TLSConfigError(f"unrecognized cipher {name}")
    if insecure and not tls.allow_insecure_ciphers:
        raise TLSConfigError(
            "insecure cipher suites configured without 'allow_insecure_cipher_suites' option set: "
            + ", ".join(insecure)
        )
    for name in tls.curve_preferences or ():
        if name not in CURVES:
            raise TLSConfigError(f"unrecognized curve preference {name}")


def _base(tls: TLSOptions, purpose: int) -> ssl.SSLContext:
    check_options(tls)
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    # Go prefers its own order of suites, as a server.
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    names = [c for c in (tls.ciphers or ()) if SECURE_CIPHERS.get(c) or INSECURE_CIPHERS.get(c)]
    if names:
        try:
            ctx.set_ciphers(":".join(SECURE_CIPHERS.get(n) or INSECURE_CIPHERS[n] for n in names))
        except ssl.SSLError:
            raise TLSConfigError("no configured cipher suite is available") from None
    # curve_preferences: validated above; Python's ssl has no API for the group list, so
    # OpenSSL's defaults (X25519, P-256, ...) apply.
    return ctx


def _check_pair_given(tls: TLSOptions) -> None:
    if tls.cert_file and not tls.key_file:
        raise TLSConfigError("missing 'key_file' in TLS configuration")
    if tls.key_file and not tls.cert_file:
        raise TLSConfigError("missing 'cert_file' in TLS configuration")


def server_context(tls: TLSOptions, *, verify: bool | None = None, route: bool = False) -> ssl.SSLContext:
    """The context for connections we accept (clients, routes, HTTPS monitoring).

    Routes always require and verify the peer's certificate, as nats-server does;
    `verify=False` is for HTTPS monitoring, which asks for no client certificate."""
    _check_pair_given(tls)
    ctx = _base(tls, ssl.PROTOCOL_TLS_SERVER)
    if tls.cert_file:
        _load_pair(ctx, tls.cert_file, tls.key_file)
    want = (tls.verify or route) if verify is None else verify
    if tls.ca_file:
        _load_ca(ctx, tls.ca_file)
    if want:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not tls.ca_file:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # Go: the system pool
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def route_client_context(tls: TLSOptions) -> ssl.SSLContext:
    """The context for routes we dial: our certificate as the client's, the CA file as the
    roots the peer's certificate is checked against (nats-server mirrors the pool)."""
    _check_pair_given(tls)
    ctx = _base(tls, ssl.PROTOCOL_TLS_CLIENT)
    if tls.cert_file:
        _load_pair(ctx, tls.cert_file, tls.key_file)
    if tls.ca_file:
        _load_ca(ctx, tls.ca_file)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- what a handshake failure is called in nats-server's log --------------------------------

_ALERTS = {
    "UNKNOWN_CA": "unknown certificate authority",
    "BAD_CERTIFICATE": "bad certificate",
    "CERTIFICATE_EXPIRED": "expired certificate",
    "CERTIFICATE_REVOKED": "revoked certificate",
    "CERTIFICATE_UNKNOWN": "unknown certificate",
    "UNSUPPORTED_CERTIFICATE": "unsupported certificate",
    "CERTIFICATE_REQUIRED": "certificate required",
    "HANDSHAKE_FAILURE": "handshake failure",
    "INTERNAL_ERROR": "internal error",
    "PROTOCOL_VERSION": "protocol version not supported",
    "DECRYPT_ERROR": "error decrypting message",
    "DECODE_ERROR": "error decoding message",
    "ILLEGAL_PARAMETER": "illegal parameter",
    "ACCESS_DENIED": "access denied",
    "UNEXPECTED_MESSAGE": "unexpected message",
    "BAD_RECORD_MAC": "bad record MAC",
    "INSUFFICIENT_SECURITY": "insufficient security level",
    "USER_CANCELLED": "user canceled",
    "NO_APPLICATION_PROTOCOL": "no application protocol",
    "UNRECOGNIZED_NAME": "unrecognized name",
}


def looks_like_tls(head: bytes) -> bool:
    """Go's test of a connection's first record header (5 bytes): a handshake or an alert,
    with a plausible version. Anything else is "not a TLS handshake" at once, without
    waiting for a whole record (a plaintext CONNECT is refused immediately)."""
    return head[0] in (0x15, 0x16) and (head[1] << 8 | head[2]) < 0x1000


def go_verify_error(e: ssl.SSLCertVerificationError, *, server: bool) -> str:
    code = getattr(e, "verify_code", 0)
    msg = getattr(e, "verify_message", "") or str(e)
    if code in (2, 18, 19, 20, 21):  # no issuer in the pool, self-signed
        why = "x509: certificate signed by unknown authority"
    elif code == 10:
        why = "x509: certificate has expired or is not yet valid"
    elif code == 9:
        why = "x509: certificate has expired or is not yet valid"
    elif code == 62:
        why = "x509: certificate is not valid for the name dialled"
    else:
        why = f"x509: {msg}"
    return f"tls: failed to verify certificate: {why}"


def go_handshake_error(e: BaseException, *, server: bool = True) -> str:
    """An exception from OpenSSL's handshake, in the words of Go's crypto/tls."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return go_verify_error(e, server=server)
    if isinstance(e, ssl.SSLError):
        reason = e.reason or ""
        if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED") and server:
            return "tls: client didn't provide a certificate"
        for key, text in _ALERTS.items():
            if "ALERT" in reason and reason.endswith(key):
                return f"remote error: tls: {text}"
        if reason == "NO_SHARED_CIPHER":
            return "tls: no cipher suite supported by both client and server"
        if reason in ("UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER", "VERSION_TOO_LOW"):
            return "tls: client offered only unsupported versions"
        if reason in ("DECRYPTION_FAILED_OR_BAD_RECORD_MAC", "BAD_RECORD_MAC"):
            return "local error: tls: bad record MAC"
        if reason:
            return "tls: " + reason.lower().replace("_", " ")
    return str(e) or type(e).__name__
