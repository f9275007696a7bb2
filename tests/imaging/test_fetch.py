"""fetch_image against a real HTTP server on loopback (allow_private=True) and fake resolvers."""

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from imaging.fetch import check_address, fetch_image

PAYLOAD = bytes(range(256)) * 4  # 1 KiB
BOMB_MIB = 64
GZIP_BOMB = zlib.compress(bytes(BOMB_MIB * 2**20), 9, wbits=31)  # gzip, ~64 kB for 64 MiB of zeros


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet; the server is ours
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "transfer-encoding" for name, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path
        if path == "/image":
            self._send(200, PAYLOAD, [("Content-Type", "image/png")])
        elif path == "/host":
            self._send(200, self.headers["Host"].encode())
        elif path == "/declared-big":
            self.send_response(200)
            self.send_header("Content-Length", str(10 * len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)  # the client must not wait for the rest
        elif path == "/streamed-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"1\r\nx\r\n")
                self.wfile.flush()
                time.sleep(0.1)
            self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/hops/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/image" if n == 0 else f"/hops/{n - 1}"
            self._send(302, headers=[("Location", target)])
        elif path == "/to-ftp":
            self._send(301, headers=[("Location", "ftp://example.com/x.png")])
        elif path == "/gzip-bomb":
            self._send(200, GZIP_BOMB, [("Content-Encoding", "gzip")])
        elif path == "/gzip-image":
            self._send(200, gzip.compress(PAYLOAD), [("Content-Encoding", "gzip")])
        elif path == "/deflate-image":
            self._send(200, zlib.compress(PAYLOAD), [("Content-Encoding", "deflate")])
        elif path == "/brotli":
            self._send(200, b"\x0b\x02\x80", [("Content-Encoding", "br")])
        elif path == "/gzip-truncated":
            self._send(200, gzip.compress(PAYLOAD)[:-12], [("Content-Encoding", "gzip")])
        elif path == "/to-b":
            self._send(302, headers=[("Location", f"http://b.test:{self.server.server_port}/host")])
        else:
            self._send(404, b"nope")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_fetches_bytes(server):
    assert fetch_image(f"{server}/image", max_bytes=len(PAYLOAD), allow_private=True, timeout=5) == PAYLOAD


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_refused_before_connecting(server, host):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(ValueError, match="refusing loopback address"):
        fetch_image(f"http://{host}:{port}/image", max_bytes=10_000, timeout=5)


@pytest.mark.parametrize(
    "address,reason",
    [
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-global"),
        ("192.0.2.1", "private"),
    ],
)
def test_non_public_addresses_refused(address, reason):
    with pytest.raises(ValueError, match=f"refusing {reason} address"):
        check_address(address)
    with pytest.raises(ValueError, match=f"refusing {reason} address .*cdn.example"):
        fetch_image("https://cdn.example/p.png", max_bytes=10, timeout=5, resolve=lambda h, p: [address])


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    check_address(address)


def test_any_private_answer_refuses_the_host():
    with pytest.raises(ValueError, match="refusing private address 10.0.0.5"):
        fetch_image(
            "https://cdn.example/p.png", max_bytes=10, timeout=5, resolve=lambda h, p: ["93.184.216.34", "10.0.0.5"]
        )


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://x/",
        "data:image/png;base64,AAAA",
        "//example.com/a.png",
    ],
)
def test_other_schemes_refused(url):
    with pytest.raises(ValueError, match="refusing URL scheme"):
        fetch_image(url, max_bytes=10, allow_private=True, timeout=5)


def test_credentials_in_url_refused():
    with pytest.raises(ValueError, match="credentials"):
        fetch_image("http://user:pw@127.0.0.1/x", max_bytes=10, allow_private=True, timeout=5)


def test_declared_size_over_cap(server):
    with pytest.raises(ValueError, match="declares 10240 bytes, over the 2048-byte cap"):
        fetch_image(f"{server}/declared-big", max_bytes=2048, allow_private=True, timeout=5)


def test_streamed_size_over_cap(server):
    with pytest.raises(ValueError, match="over the 2048-byte cap"):
        fetch_image(f"{server}/streamed-big", max_bytes=2048, allow_private=True, timeout=5)
    body = fetch_image(f"{server}/streamed-big", max_bytes=10 * len(PAYLOAD), allow_private=True, timeout=5)
    assert body == PAYLOAD * 10


def test_three_redirects_followed_four_refused(server):
    assert fetch_image(f"{server}/hops/2", max_bytes=len(PAYLOAD), allow_private=True, timeout=5) == PAYLOAD
    with pytest.raises(ValueError, match="more than 3 redirects"):
        fetch_image(f"{server}/hops/3", max_bytes=len(PAYLOAD), allow_private=True, timeout=5)


def test_each_hop_is_checked_again(server):
    with pytest.raises(ValueError, match="refusing URL scheme 'ftp'"):
        fetch_image(f"{server}/to-ftp", max_bytes=100, allow_private=True, timeout=5)
    port = int(server.rsplit(":", 1)[1])
    asked = []

    def resolve(host, p):
        asked.append((host, p))
        return ["127.0.0.1"]

    body = fetch_image(f"http://a.test:{port}/to-b", max_bytes=100, allow_private=True, timeout=5, resolve=resolve)
    assert asked == [("a.test", port), ("b.test", port)]
    assert body == f"b.test:{port}".encode()  # connected to the checked address, Host kept


def test_http_errors_raise_status_error(server):
    with pytest.raises(httpx.HTTPStatusError):
        fetch_image(f"{server}/missing", max_bytes=100, allow_private=True, timeout=5)


def test_bad_cap_refused():
    with pytest.raises(ValueError, match="max_bytes"):
        fetch_image("http://127.0.0.1/x", max_bytes=0, allow_private=True, timeout=5)


def test_total_time_is_capped(server):
    """A server that drips bytes under every per-read timeout still hits the total budget."""
    with pytest.raises(TimeoutError, match="ran out of time"):
        fetch_image(f"{server}/drip", max_bytes=100, allow_private=True, timeout=0.5)


@pytest.mark.parametrize(
    "address,reason,inner",
    [
        ("2002:7f00:1::1", "loopback", "127.0.0.1"),  # 6to4
        ("2002:a00:1::", "private", "10.0.0.1"),
        ("2002:c0a8:101::", "private", "192.168.1.1"),
        ("2002:a9fe:a9fe::", "link-local", "169.254.169.254"),
        ("64:ff9b::a00:1", "private", "10.0.0.1"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254"),
        ("::7f00:1", "loopback", "127.0.0.1"),  # IPv4-compatible
        ("::ffff:10.0.0.1", "private", "10.0.0.1"),  # IPv4-mapped
    ],
)
def test_ipv4_inside_ipv6_is_checked_as_ipv4(address, reason, inner):
    with pytest.raises(ValueError, match=f"refusing {reason} address {inner} \\(inside "):
        check_address(address)
    with pytest.raises(ValueError, match=f"refusing {reason} address {inner} .*cdn.example"):
        fetch_image("https://cdn.example/p.png", max_bytes=10, timeout=5, resolve=lambda h, p: [address])


@pytest.mark.parametrize("address", ["64:ff9b:1::a00:1", "64:ff9b:1::808:808"])
def test_local_use_nat64_is_refused(address):
    with pytest.raises(ValueError, match="refusing"):
        check_address(address)


def test_6to4_of_a_public_address_passes():
    check_address("2002:5db8:d822::1")  # 93.184.216.34


def _trickle_server(header_bytes: int, gap_s: float):
    """A raw socket server that answers each request with a status line and then sends its
    headers one byte every ``gap_s`` seconds (``header_bytes`` of them) and never a body."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(header_bytes):
                        if stop.is_set():
                            break
                        conn.sendall(b"X")
                        time.sleep(gap_s)
                except OSError:  # the client gave up: what the test wants
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, stop, thread


def test_deadline_holds_while_headers_trickle():
    """Each byte arrives well inside the read timeout, so httpx's per-read timeout never
    fired: the fetch waited as long as the server kept trickling (here 10 s)."""
    listener, stop, thread = _trickle_server(header_bytes=100, gap_s=0.1)
    try:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="ran out of time"):
            fetch_image(f"http://127.0.0.1:{port}/x.png", max_bytes=1000, allow_private=True, timeout=0.6)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert elapsed < 1.5, f"took {elapsed:.2f} s with a 0.6 s budget"


def test_gzip_bomb_stops_at_the_cap_without_inflating(server):
    """64 MiB of zeros in ~64 kB of gzip: httpx inflated each network read whole before the
    cap was looked at."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="over the 1048576-byte cap"):
            fetch_image(f"{server}/gzip-bomb", max_bytes=2**20, allow_private=True, timeout=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 1 MiB cap"


@pytest.mark.parametrize("path", ["/gzip-image", "/deflate-image"])
def test_compressed_bodies_are_decoded(server, path):
    assert fetch_image(f"{server}{path}", max_bytes=len(PAYLOAD), allow_private=True, timeout=5) == PAYLOAD


@pytest.mark.parametrize(
    "path,reason", [("/brotli", "content coding 'br'"), ("/gzip-truncated", "compressed body ends early")]
)
def test_other_or_broken_codings_are_refused(server, path, reason):
    with pytest.raises(ValueError, match=reason):
        fetch_image(f"{server}{path}", max_bytes=len(PAYLOAD), allow_private=True, timeout=5)


def _self_signed(tmp_path, host: str):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_tls_goes_through_the_deadline_backend_and_verifies_the_host(tmp_path):
    """The TLS handshake runs on the deadline-bounded socket with the URL's host as server
    name: a certificate no authority signed is refused."""
    import ssl

    cert_file, key_file = _self_signed(tmp_path, "cdn.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://cdn.test:{httpd.server_port}/image"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_image(url, max_bytes=len(PAYLOAD), allow_private=True, timeout=5, resolve=lambda h, p: ["127.0.0.1"])
    finally:
        httpd.shutdown()
        httpd.server_close()
