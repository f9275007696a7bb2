"""Fetch a product image from a URL a webhook gave us, without becoming an SSRF proxy.

Only http and https; the host is resolved here and every address it resolves to must be
public (not private, loopback, link-local, multicast, reserved, unspecified, shared or
documentation space), and so must an IPv4 address carried inside an IPv6 one (mapped
``::ffff:0:0/96``, compatible ``::/96``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``), unless ``allow_private`` (tests). The
connection then goes to the address that was checked — the URL's host travels in the
``Host`` header and as the TLS server name, so certificates are verified against it —
so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked again. The
body is streamed and cut off at ``max_bytes``, counted after content decoding: gzip and
deflate are inflated here, ``INFLATE_CHUNK`` bytes at a time, so a compressed bomb stops at
the cap instead of being inflated whole; other content codings are refused. The deadline
covers every socket operation (connect, TLS, each read of the headers and the body), so a
server that trickles its headers one byte at a time cannot hold the fetch past it.

Policy violations raise ``ValueError`` with the reason; HTTP error statuses raise
``httpx.HTTPStatusError`` and network failures httpx's own errors (retryable); running
past ``timeout`` seconds in all raises ``TimeoutError``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import zlib
from collections.abc import Callable, Iterator

import httpcore
import httpx

MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
INFLATE_CHUNK = 64 * 1024
Resolver = Callable[[str, int], list[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: the IPv4 address is the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use (RFC 8215): never global


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and routes to), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64, IPv4-compatible (::a.b.c.d)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(address: str) -> None:
    """Raise ValueError unless ``address`` is a public unicast address (and so is any IPv4
    address inside it)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
        try:
            _check_ip(inner)
        except ValueError as exc:
            raise ValueError(f"{exc} (inside {ip})") from None
        if ip.ipv4_mapped is not None:
            return
    _check_ip(ip)


def _check_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    for flag in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{flag}"):
            raise ValueError(f"refusing {flag.replace('_', '-')} address {ip}")
    if not ip.is_global or ip in NAT64_LOCAL:
        raise ValueError(f"refusing non-global address {ip}")


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation ends by ``deadline`` (time.monotonic())."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream, self._deadline = stream, deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._backend, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the fetch's deadline passed")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("no unix sockets here")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _transport(deadline: float) -> httpx.HTTPTransport:
    """httpx's transport with every socket operation bounded by ``deadline``. httpx has no
    total timeout (each read gets the whole read timeout again), and HTTPTransport takes no
    network backend, so its pool is rebuilt with one."""
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=1,
        network_backend=_DeadlineBackend(deadline),
    )
    return transport


def _target(url: str, allow_private: bool, resolve: Resolver) -> tuple[httpx.URL, str, str]:
    """(URL to connect to, Host header, TLS server name) for ``url``, after the checks."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {url!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"refusing URL scheme {parsed.scheme!r} (only http and https): {url}")
    if parsed.userinfo:
        raise ValueError(f"refusing URL with credentials for host {parsed.host!r}")
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded
    if not host:
        raise ValueError(f"URL has no host: {url}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise ValueError(f"host {host!r} resolves to no address")
    if not allow_private:
        for address in addresses:
            try:
                check_address(address)
            except ValueError as exc:
                raise ValueError(f"{exc} (host {host!r} in {url})") from exc
    pinned = parsed.copy_with(host=addresses[0], port=port)
    return pinned, parsed.netloc.decode("ascii"), host


def fetch_image(
    url: str,
    *,
    max_bytes: int,
    allow_private: bool = False,
    timeout: float = 30.0,
    resolve: Resolver = resolve_host,
) -> bytes:
    """The body at ``url``, at most ``max_bytes`` long; see the module docstring."""
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        target, host_header, server_name = _target(url, allow_private, resolve)
        # one client per hop: a pooled TLS connection must not serve another host name
        with httpx.Client(follow_redirects=False, trust_env=False, transport=_transport(deadline)) as client:
            request = client.build_request(
                "GET",
                target,
                headers={"Host": host_header, "Accept-Encoding": "gzip, deflate, identity"},
                timeout=_remaining(deadline, url),
                extensions={"sni_hostname": server_name},
            )
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"fetching {url} ran out of time waiting for its headers") from exc
                raise
            try:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise ValueError(f"redirect without Location from {url}")
                    url = str(httpx.URL(url).join(location))
                    continue
                response.raise_for_status()
                return _read_capped(response, url, max_bytes, deadline)
            finally:
                response.close()
    raise ValueError(f"more than {MAX_REDIRECTS} redirects, last to {url}")


def _remaining(deadline: float, url: str) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"fetching {url} ran out of time")
    return httpx.Timeout(left)


def _read_capped(response: httpx.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ValueError(f"{url} declares {int(declared)} bytes, over the {max_bytes}-byte cap")
    chunks, total = [], 0
    try:
        for chunk in _decoded(response, url):
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"{url} is over the {max_bytes}-byte cap")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fetching {url} ran out of time after {total} bytes")
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"fetching {url} ran out of time after {total} bytes") from exc
    return b"".join(chunks)


def _decoded(response: httpx.Response, url: str) -> Iterator[bytes]:
    """The body after its content coding, never more than INFLATE_CHUNK bytes per piece
    (httpx's own decoder inflates each network read whole)."""
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        yield from response.iter_raw()
        return
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"{url} is sent with content coding {', '.join(codings)!r} (only gzip or deflate)")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        for raw in response.iter_raw():
            data = raw
            while data and not inflater.eof:
                out = inflater.decompress(data, INFLATE_CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    yield out
        if not inflater.eof:
            raise ValueError(f"{url}: the compressed body ends early")
    except zlib.error as exc:
        raise ValueError(f"{url}: the compressed body cannot be decoded ({exc})") from None
