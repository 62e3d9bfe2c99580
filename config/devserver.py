"""The development server (`manage.py runserver`, which scripts/run.sh runs): Django's,
reading a request body sent chunked as granian and gunicorn read one. Django's server
hands the application an empty body for it (no Content-Length, so nothing to read) and
leaves the chunks on the connection, where the next request would begin. Here the
application reads the chunks' data up to the last chunk, told by
`wsgi.input_terminated` that the body ends there (config.middleware.SizedBodies reads
it); chunks framed wrong are a 400, and a body not read to its end closes the
connection rather than being read through. And each request's line (the logger
django.server) carries the request's id, which the application made
(config.request_log), as the application's own records do."""

import io
import sys

from django.core.servers import basehttp

from common import logs
from config.request_log import HEADER, SERVER_LOGS_REQUESTS

# A chunk's size line or a trailer line longer than this is refused.
MAX_LINE = 4096


class MalformedChunks(ValueError):
    """The body's chunks are not framed as RFC 9112 (7.1) says."""


class ChunkedBody(io.RawIOBase):
    """A chunked body's data, read from the connection as it is asked for: the
    chunks without their framing, ending after the last chunk and its trailer."""

    def __init__(self, connection):
        super().__init__()
        self._connection = connection
        self._left = 0  # bytes of the current chunk not read yet
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.ended and self._left == 0:
            self._start_chunk()
        if self.ended:
            return 0
        data = self._connection.read(min(len(buffer), self._left))
        if not data:
            raise MalformedChunks("the connection ended inside a chunk")
        buffer[: len(data)] = data
        self._left -= len(data)
        if self._left == 0 and self._line() != b"":
            raise MalformedChunks("a chunk's data is longer than its size says")
        return len(data)

    def _line(self) -> bytes:
        """The next line without its CRLF."""
        line = self._connection.readline(MAX_LINE + 1)
        if not line.endswith(b"\r\n"):
            raise MalformedChunks("a chunk's line is too long or does not end in CRLF")
        return line[:-2]

    def _start_chunk(self) -> None:
        size = self._line().split(b";", 1)[0].strip()
        if not size or size.strip(b"0123456789abcdefABCDEF") or len(size) > 16:
            raise MalformedChunks(f"a chunk's size is not a hexadecimal number: {size[:20]!r}")
        self._left = int(size, 16)
        if self._left == 0:
            while self._line() != b"":  # the trailer's fields, ignored
                pass
            self.ended = True


def _chunked(environ) -> bool:
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


class ServerHandler(basehttp.ServerHandler):
    """Django's, with a chunked body as wsgi.input."""

    def __init__(self, stdin, stdout, stderr, environ, **kwargs):
        # This server logs each request itself (the application does not, then).
        environ[SERVER_LOGS_REQUESTS] = True
        super().__init__(stdin, stdout, stderr, environ, **kwargs)
        self.chunks = None
        if _chunked(environ):
            # The chunks' framing tells where the body ends; a Content-Length beside
            # it is ignored (RFC 9112, 6.3).
            environ.pop("CONTENT_LENGTH", None)
            environ["wsgi.input_terminated"] = True
            self.chunks = ChunkedBody(stdin)
            self.stdin = io.BufferedReader(self.chunks)

    def close(self):
        # Read by the request's line, which the close below writes.
        if self.headers is not None:
            self.request_handler.request_id = self.headers.get(HEADER)
        if self.chunks is None:
            super().close()  # Django's: reads what is left of a body with a length
            return
        if not self.chunks.ended:
            # What is left could be any length: the connection closes instead.
            self.request_handler.close_connection = True
        super(basehttp.ServerHandler, self).close()

    def error_output(self, environ, start_response):
        """A 400 for chunks framed wrong (the connection closes: where the next
        request starts is unknown); Django's 500 for anything else."""
        if not isinstance(sys.exc_info()[1], MalformedChunks):
            return super().error_output(environ, start_response)
        self.request_handler.close_connection = True
        body = f"Bad Request: {sys.exc_info()[1]}".encode()
        start_response(
            "400 Bad Request",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            sys.exc_info(),
        )
        return [body]


class WSGIRequestHandler(basehttp.WSGIRequestHandler):
    request_id = None  # the id of the request whose line is written next

    def log_message(self, format, *args):
        token = logs.request_id.set(self.request_id)
        try:
            super().log_message(format, *args)
        finally:
            logs.request_id.reset(token)
            self.request_id = None

    def handle_one_request(self):
        """Django's, with this module's ServerHandler."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return

        if not self.parse_request():  # An error code has been sent, just exit
            return

        handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ())
        handler.request_handler = self  # backpointer for logging & connection closing
        handler.run(self.server.get_app())


class WSGIServer(basehttp.WSGIServer):
    """Django's development server, with the request handler above (runserver's
    `run` names Django's own)."""

    def __init__(self, server_address, handler_class, *args, **kwargs):
        if handler_class is basehttp.WSGIRequestHandler:
            handler_class = WSGIRequestHandler
        super().__init__(server_address, handler_class, *args, **kwargs)
