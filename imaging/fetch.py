"""Fetch a product image from a URL a webhook gave us, without becoming an SSRF proxy.

Only http and https; the host is resolved here and every address it resolves to must be
public (not private, loopback, link-local, multicast, reserved, unspecified, shared or
documentation space, including IPv4 inside IPv6) unless ``allow_private`` (tests). The
connection then goes to the address that was checked — the URL's host travels in the
``Host`` header and as the TLS server name, so certificates are verified against it —
so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked again. The
body is streamed and cut off at ``max_bytes`` (counted after content decoding).

Policy violations raise ``ValueError`` with the reason; HTTP error statuses raise
``httpx.HTTPStatusError`` and network failures httpx's own errors (retryable); running
past ``timeout`` seconds in all raises ``TimeoutError``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable

import httpx

MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_address(address: str) -> None:
    """Raise ValueError unless ``address`` is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{flag}"):
            raise ValueError(f"refusing {flag.replace('_', '-')} address {ip}")
    if not ip.is_global:
        raise ValueError(f"refusing non-global address {ip}")


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
        with httpx.Client(follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "GET",
                target,
                headers={"Host": host_header},
                timeout=_remaining(deadline, url),
                extensions={"sni_hostname": server_name},
            )
            response = client.send(request, stream=True)
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
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise ValueError(f"{url} is over the {max_bytes}-byte cap")
        if time.monotonic() > deadline:
            raise TimeoutError(f"fetching {url} ran out of time after {total} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
