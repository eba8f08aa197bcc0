"""The HTTP/1.1 the agent speaks — POSTs to its gateway on one kept-alive connection, answers to probes — without
the standard library's `http` package: `http.client` imports `ssl` whether or not a connection uses TLS, and
OpenSSL's initialisation costs an agent that sends plain HTTP 4 MiB of RSS (docs/benchmarks.md). TLS, when the
endpoint is https, wraps the same socket (collector/transport.py builds its context).
"""

import contextlib
import io
import re
import select
import socket
import threading
import time
from dataclasses import dataclass

MAX_LINE = 65536  # as http.client: a longer status, header or chunk-size line is not HTTP we can use
MAX_HEADERS = 100
MAX_BODY = 2**24  # an answer to an export is a few bytes; reading a longer one would allocate its length at once
STATUS_LINE = re.compile(r"(HTTP/1\.[0-9]) ([0-9]{3})(?: .*)?")
# ASCII only: str.isdigit() and int() also take "²", and int() "-1", "+1", "0x1f", "1_0" and spaces
LENGTH_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9A-Fa-f]+")}


class ProtocolError(Exception):
    """The peer's bytes are not the HTTP/1.1 message they should be."""


class RemoteDisconnected(ConnectionResetError):
    """The peer closed the connection before a whole message (a kept-alive connection the gateway found idle)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    will_close: bool  # the server closes the connection after this answer: the next request needs a new one
    headers: dict[str, str]  # names in lower case


def read_head(reader) -> tuple[str, dict[str, str]]:
    """The start line and the header fields (names in lower case) of a message, from a binary file-like reader."""
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise RemoteDisconnected("Remote end closed connection without response")
    if len(line) > MAX_LINE:
        raise ProtocolError("start line too long")
    return line.decode("latin-1").rstrip("\r\n"), read_fields(reader)


def read_fields(reader) -> dict[str, str]:
    """Header fields up to the blank line that ends them (names in lower case)."""
    headers = {}
    while True:
        field = reader.readline(MAX_LINE + 1)
        if len(field) > MAX_LINE:
            raise ProtocolError("header line too long")
        if field in (b"\r\n", b"\n", b""):
            return headers
        if len(headers) == MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} header fields")
        name, colon, value = field.decode("latin-1").partition(":")
        if not colon:
            raise ProtocolError(f"header line without a colon: {field[:60]!r}")
        headers[name.strip().lower()] = value.strip()


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes for a buffered reader, each receive given only what is left until `deadline` (monotonic
    seconds; None: the socket's own timeout). The socket's timeout bounds one receive only: a gateway trickling
    its answer a byte at a time would keep a readline going for ever. Once `aborted` (Connection.close, maybe from
    another thread), every receive ends in ConnectionAbortedError: the end of stream the shutdown gives a read is
    not the peer's, and would end half an answer as if it were whole; the closed socket's EBADF (or the ValueError
    of its fd, -1 once closed) says nothing."""

    def __init__(self, sock: socket.socket):
        self.sock, self.deadline, self.timeout, self.aborted = sock, None, sock.gettimeout(), False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self.unless_aborted():
            if self.deadline is None:
                received = self.sock.recv_into(buffer)
            else:
                # Past the deadline, only what has arrived already (an end of stream that came in time is read as one).
                self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
                try:
                    received = self.sock.recv_into(buffer)
                finally:
                    self.sock.settimeout(self.timeout)
            if self.aborted:
                raise ConnectionAbortedError("the connection was closed")
            return received

    @contextlib.contextmanager
    def unless_aborted(self):
        """What the socket raises, as ConnectionAbortedError once close() has been called."""
        try:
            yield
        except (OSError, ValueError):
            if self.aborted:
                raise ConnectionAbortedError("the connection was closed") from None
            raise


class Connection:
    """One kept-alive connection to host:port (TLS when given a context), opened at the first request and again
    after a close. One request at a time: `request`, then `getresponse` (after `answer_arrived`, if the caller
    waits with a timeout of its own). `close` may come from another thread, while a request waits: whatever the
    request was doing then (connecting, sending, waiting, reading) ends in ConnectionAbortedError."""

    def __init__(self, host: str, port: int | None, timeout: float, tls=None):
        implied = 443 if tls else 80
        # an ASCII host name as bytes: a str would go through the idna codec, whose import costs 0.4 MiB of RSS
        self.address = (host.encode() if host.isascii() else host, port or implied)
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port in (None, implied) else f"{name}:{port}"  # the port when not implied
        self.timeout, self.tls, self.server_hostname = timeout, tls, host
        # The open connection: its reader, over its socket (reader.raw.sock). One attribute, so that another thread
        # sees a whole connection or none; set and taken under `_publishing`, never held across I/O.
        self._reader: io.BufferedReader | None = None
        self._publishing = threading.Lock()
        self._closes = 0  # close() calls: one during a connect aborts the connection it opens

    @property
    def sock(self) -> socket.socket | None:
        reader = self._reader
        return None if reader is None else reader.raw.sock

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                deadline: float | None = None) -> None:
        """Send the request, on a new connection if none is open. By `deadline` (monotonic seconds), connected (TLS
        handshake included) and the request written, else TimeoutError; None: each step within the timeout. Name
        resolution is the system resolver's and its own timeouts' (getaddrinfo cannot be given one)."""
        if self._reader is None:
            self._connect(deadline)
        sock, reader = self._open()
        fields = {"Host": self.host_header, **headers, "Content-Length": str(len(body))}
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        with reader.raw.unless_aborted():
            self._send(sock, head.encode("latin-1") + b"\r\n" + body, deadline)

    def _connect(self, deadline: float | None) -> None:
        closes = self._closes
        sock = self._dial(deadline)
        try:
            if self.tls:  # the handshake as a whole within the socket's timeout (CPython counts it from its start)
                sock.settimeout(self._left(deadline))
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_hostname)
                sock.settimeout(self.timeout)
            reader = io.BufferedReader(_DeadlineReader(sock))
            with self._publishing:
                if self._closes != closes:  # closed from another thread meanwhile: not a connection to use
                    raise ConnectionAbortedError("the connection was closed")
                self._reader = reader
        except BaseException:
            sock.close()
            raise

    def _dial(self, deadline: float | None) -> socket.socket:
        """socket.create_connection, each address tried only in what is left until the deadline."""
        failed = None
        for family, kind, protocol, _, address in socket.getaddrinfo(*self.address, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self._left(deadline))
                sock.connect(address)
                sock.settimeout(self.timeout)
                return sock
            except OSError as error:
                sock.close()
                failed = error
                if isinstance(error, TimeoutError):
                    break
        raise failed or OSError(f"no address for {self.server_hostname}")

    def _send(self, sock, data: bytes, deadline: float | None) -> None:
        if deadline is None:
            sock.sendall(data)
            return
        # not sendall: an SSLSocket's gives each of its writes the whole timeout
        view = memoryview(data)
        try:
            while view:
                sock.settimeout(self._left(deadline))
                view = view[sock.send(view):]
        finally:
            sock.settimeout(self.timeout)

    def _left(self, deadline: float | None) -> float:
        """The timeout of the next step: what is left until the deadline, at most the connection's timeout."""
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return min(left, self.timeout)

    def answer_arrived(self, timeout: float) -> bool:
        """Whether the answer (or the end of the connection) comes within `timeout` seconds."""
        sock, reader = self._open()
        deadline = time.monotonic() + timeout
        poller = select.poll()
        with reader.raw.unless_aborted():
            poller.register(sock, select.POLLIN)
            while poller.poll(max(deadline - time.monotonic(), 0) * 1000):
                if reader.raw.aborted:
                    raise ConnectionAbortedError("the connection was closed")
                if not self.tls or self._tls_data_arrived(sock, reader):
                    return True
        return False

    def _tls_data_arrived(self, sock, reader) -> bool:
        """A readable TLS socket may hold records without application data (TLS 1.3 session tickets come after
        the handshake): read what it holds into the reader's buffer, without blocking, to know."""
        import ssl  # loaded already: the context came from it

        sock.setblocking(False)
        try:
            reader.peek(1)
        except ssl.SSLWantReadError:
            return False
        finally:
            sock.settimeout(self.timeout)
        return True

    def getresponse(self, within: float | None = None) -> Response:
        """The answer, all of it (status line, headers, body) within `within` seconds from now, else TimeoutError;
        None: each receive within the timeout. Called once `answer_arrived`: from the answer's first byte."""
        _, reader = self._open()
        reader.raw.deadline = None if within is None else time.monotonic() + within
        try:
            return self._read_response(reader)
        except TimeoutError:
            if within is None:
                raise
            raise TimeoutError(f"no whole answer within {within:g}s of its first byte") from None
        finally:
            reader.raw.deadline = None

    def _open(self):
        """The socket and the reader of the open connection, read at once; what they do once closed from another
        thread ends in ConnectionAbortedError (reader.raw.unless_aborted)."""
        reader = self._reader
        if reader is None:
            raise ConnectionAbortedError("the connection was closed")
        return reader.raw.sock, reader

    def _read_response(self, reader) -> Response:
        while True:
            status_line, headers = read_head(reader)
            if not (parsed := STATUS_LINE.fullmatch(status_line)):  # e.g. cut short by a close: "HTTP/1.1 20"
                raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
            version, status = parsed[1], int(parsed[2])
            if not 100 <= status < 200:  # an interim answer (100 Continue) is skipped, as http.client does
                break
        tokens = headers.get("connection", "").lower()
        will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _chunked(reader)
        elif "content-length" in headers:
            body = _exactly(reader, _length(headers["content-length"], "Content-Length"))
        elif status in (204, 304):
            body = b""
        else:  # the body ends where the connection does
            body, will_close = reader.read(MAX_BODY + 1), True
            _bounded(len(body), "a body ended by the close")
        return Response(status, body, will_close, headers)

    def close(self) -> None:
        with self._publishing:
            reader, self._reader = self._reader, None
            self._closes += 1
        if reader is not None:
            # Shut down first: a read blocked in another thread ends (ConnectionAbortedError, as the reader is told
            # first) instead of holding the close up for ever. The reader is not closed: it owns nothing but the
            # socket, and closing it would wait for its lock, which that read holds.
            reader.raw.aborted = True
            with contextlib.suppress(OSError):
                reader.raw.sock.shutdown(socket.SHUT_RDWR)
            reader.raw.sock.close()


def _exactly(reader, length: int) -> bytes:
    data = reader.read(length)
    if len(data) < length:
        # not RemoteDisconnected: the gateway had the request and began to answer, it is not sent again at once
        raise ProtocolError(f"the connection was closed {len(data)} bytes into a body of {length}")
    return data


def _chunked(reader) -> bytes:
    chunks, size = [], 0
    while True:
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise ProtocolError("the connection was closed inside a chunked body")
        length = _length(line.split(b";", 1)[0].decode("latin-1").strip(" \t\r\n"), "chunk size", base=16)
        if length == 0:
            read_fields(reader)  # the trailer, unused
            return b"".join(chunks)
        size = _bounded(size + length, "a chunked body")
        chunks.append(_exactly(reader, length))
        _exactly(reader, 2)  # the CRLF after the chunk


def _length(text: str, name: str, base: int = 10) -> int:
    if not LENGTH_DIGITS[base].fullmatch(text):
        raise ProtocolError(f"bad {name} {text[:20]!r}")
    if len(text.lstrip("0")) > len(f"{MAX_BODY:x}" if base == 16 else str(MAX_BODY)):
        raise ProtocolError(f"{name} {text[:40]} is more than the {MAX_BODY} bytes an answer may have")
    return _bounded(int(text, base), f"{name} {text[:40]}")


def _bounded(size: int, what: str) -> int:
    if size > MAX_BODY:
        raise ProtocolError(f"{what} is more than the {MAX_BODY} bytes an answer may have")
    return size
