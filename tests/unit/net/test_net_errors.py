"""Connection failures in `flux mirror`'s words (docs/sync.md#error-texts): Go's `<Method> "<url>": <cause>`
with the cause as Go's `net` and `crypto/tls` packages word it, checked against real sockets.

Only what no loopback socket can stage on cue (a resolver's answer, a connect that never completes)
is checked on a constructed aiohttp exception.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from harness.background import listen
from harness.pki import PKI
from harness.scripted import RESET, Script, Serve, ServeRaw
from yarl import URL

from fluxmirror.http import session as session_module
from fluxmirror.http.errors import TLSError, TransportError
from fluxmirror.http.session import HttpSession, map_client_error
from fluxmirror.oci.client import USER_AGENT


async def _hello(request: web.Request) -> web.StreamResponse:
    return web.Response(text="never")


async def _failure(
    http: HttpSession, method: str, url: str, *, tls: ssl.SSLContext | None = None, time_limit: float | None = None
) -> TransportError:
    with pytest.raises(TransportError) as caught:
        async with http.request(method, url, tls=lambda _url: tls or True, time_limit=time_limit):
            pytest.fail("no response should be yielded")
    return caught.value


def _closed_port() -> int:
    """A loopback port that was free a moment ago and has no listener now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_names_the_address_dialled(http: HttpSession) -> None:
    port = _closed_port()
    error = await _failure(http, "HEAD", f"http://localhost:{port}/v2/app/manifests/1.0?token=s3cret")
    assert str(error) == (
        f'Head "http://localhost:{port}/v2/app/manifests/1.0?token=REDACTED": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    assert type(error) is TransportError and error.temporary


async def test_a_refused_proxy_is_a_proxyconnect_failure() -> None:
    port = _closed_port()
    async with HttpSession(user_agent=USER_AGENT, environ={"HTTP_PROXY": f"127.0.0.1:{port}"}) as http:
        error = await _failure(http, "GET", "http://registry.test/v2/")
    assert str(error) == (
        f'Get "http://registry.test/v2/": proxyconnect tcp: dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


async def test_an_untrusted_certificate_is_signed_by_an_unknown_authority(
    http: HttpSession, serve: Serve, server_tls: ssl.SSLContext
) -> None:
    server = serve(_hello, ssl_context=server_tls)
    error = await _failure(http, "GET", f"{server.url}/v2/")
    assert str(error) == (
        f'Get "{server.url}/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority'
    )
    assert isinstance(error, TLSError) and not error.temporary


async def test_a_certificate_for_another_address_is_not_valid_for_the_one_asked(
    http: HttpSession, serve: Serve, server_tls: ssl.SSLContext, client_trusting_test_ca: ssl.SSLContext
) -> None:
    """The certificate names 127.0.0.1 and localhost; the server answers on 127.0.0.2."""
    server = serve(_hello, ssl_context=server_tls, host="127.0.0.2")
    error = await _failure(http, "GET", f"{server.url}/v2/", tls=client_trusting_test_ca)
    assert str(error) == (
        f'Get "{server.url}/v2/": tls: failed to verify certificate: x509: certificate is not valid for 127.0.0.2'
    )
    assert isinstance(error, TLSError)


@pytest.fixture
def mutual_tls_server(pki: PKI) -> Iterator[str]:
    """The URL of a TLS server that requires a client certificate. It is Python's blocking `ssl`
    server, which (like Go's) sends its alert before hanging up; asyncio's may close first."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_path))
    context.load_cert_chain(pki.server_cert_path, pki.server_key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            # A second descriptor keeps the socket open after the TLS socket is gone, to read what the
            # client sent until it hangs up: closing with unread data would reset the connection,
            # and the reset can overtake the alert.
            with connection, connection.dup() as raw, contextlib.suppress(OSError):
                raw.settimeout(5)
                connection.settimeout(5)
                with contextlib.suppress(ssl.SSLError), context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1024)
                while raw.recv(4096):
                    pass

    thread = threading.Thread(target=serve, name="mutual-tls", daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


async def test_a_server_wanting_a_client_certificate_sends_an_alert(
    http: HttpSession, mutual_tls_server: str, client_trusting_test_ca: ssl.SSLContext
) -> None:
    """TLS 1.3 servers send the alert after the client's handshake is done, so it arrives as a failed
    read; it is still a TLS failure, which trying again cannot cure."""
    error = await _failure(http, "GET", f"{mutual_tls_server}/v2/", tls=client_trusting_test_ca)
    assert str(error) == f'Get "{mutual_tls_server}/v2/": remote error: tls: certificate required'
    assert isinstance(error, TLSError) and not error.temporary


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([RESET], id="before the answer"),
        pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part", 0.05, RESET], id="mid-body"),
    ],
)
async def test_a_reset_connection_is_reset_by_peer(http: HttpSession, serve_raw: ServeRaw, script: Script) -> None:
    server = serve_raw(script)
    with pytest.raises(TransportError) as caught:
        async with http.request("GET", f"{server.url}/v2/") as response:
            await response.read()
    assert str(caught.value) == f'Get "{server.url}/v2/": read: connection reset by peer'
    assert type(caught.value) is TransportError and caught.value.temporary


async def test_a_connection_closed_before_the_answer_is_eof(http: HttpSession, serve_raw: ServeRaw) -> None:
    server = serve_raw([])
    error = await _failure(http, "GET", f"{server.url}/v2/")
    assert str(error) == f'Get "{server.url}/v2/": EOF'
    assert error.temporary


async def test_a_silent_server_is_a_read_timeout(
    http: HttpSession, serve_raw: ServeRaw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing arrives for longer than a socket read may wait (300 s, here 0.2 s), well before the
    request's own deadline."""
    monkeypatch.setattr(session_module, "READ_TIMEOUT", 0.2)
    server = serve_raw([3.0])
    error = await _failure(http, "GET", f"{server.url}/v2/", time_limit=30.0)
    assert str(error) == f'Get "{server.url}/v2/": read: i/o timeout'
    assert error.temporary


def _key(host: str, port: int) -> ConnectionKey:
    return ConnectionKey(host, port, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        pytest.param(
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "dial tcp: lookup registry.invalid: no such host",
            id="no such host",
        ),
        pytest.param(
            socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
            "dial tcp: lookup registry.invalid: temporary failure in name resolution",
            id="resolver unreachable",
        ),
    ],
)
def test_a_failed_lookup_names_the_host(error: socket.gaierror, cause: str) -> None:
    url = URL("https://registry.invalid/v2/")
    mapped = map_client_error("GET", url, aiohttp.ClientConnectorDNSError(_key("registry.invalid", 443), error))
    assert str(mapped) == f'Get "https://registry.invalid/v2/": {cause}'
    assert type(mapped) is TransportError


def test_a_connect_that_never_completes_is_a_dial_timeout() -> None:
    url = URL("https://[2001:db8::1]:5000/v2/")
    mapped = map_client_error("GET", url, aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}"))
    assert str(mapped) == 'Get "https://[2001:db8::1]:5000/v2/": dial tcp [2001:db8::1]:5000: i/o timeout'
    assert mapped.temporary


@pytest.mark.parametrize(
    ("reason", "alert"),
    [
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "handshake failure"),
        ("TLSV1_ALERT_UNKNOWN_CA", "unknown certificate authority"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "expired certificate"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "protocol version not supported"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate required"),
    ],
)
def test_alerts_read_as_go_names_them(reason: str, alert: str) -> None:
    error = ssl.SSLError(1, f"[SSL: {reason}] ...")
    error.reason = reason
    mapped = map_client_error("GET", URL("https://r.example/v2/"), error)
    assert str(mapped) == f'Get "https://r.example/v2/": remote error: tls: {alert}'
    assert isinstance(mapped, TLSError)
