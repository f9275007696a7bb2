"""fetch_image against a real HTTP server on loopback (allow_private=True) and fake resolvers."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from imaging.fetch import check_address, fetch_image

PAYLOAD = bytes(range(256)) * 4  # 1 KiB


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
