"""A fault-injecting HTTP proxy between a GCS client and gcp-storage-emulator, for tests.

The emulator is a real GCS JSON-API server but it never fails and it ignores generation
preconditions. This proxy forwards every request to it and, as programmed per test:

- answers a status (503, 429, ...) to the next N requests matching a method and a path pattern;
- cuts the connection mid-request (reads part of the body, then closes without a response) or
  mid-response (forwards, then sends the headers and part of the body and closes; a response
  without a body is dropped whole);
- flips one byte of a request body (before forwarding) or of a response body, or rewrites a
  response body with a function (e.g. to lie about a stored checksum);
- enforces `ifGenerationMatch` / `ifGenerationNotMatch` on object writes the way GCS does: it
  looks the object's generation up on the emulator and answers 412 when it does not hold (0 means
  "must not exist"). Check and forward happen under one lock, so racing writers are serialized
  as on GCS;
- answers a request to a finished resumable session with the object, as GCS does (the emulator
  drops the connection instead), and a request the emulator does not answer with 502;
- records every request (method, path, query, status, fault) for assertions.
"""

from __future__ import annotations

import email.parser
import http.client
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OBJECT_PATH = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_UPLOAD_PATH = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")

STATUS, CUT_REQUEST, CUT_RESPONSE, CORRUPT_REQUEST, CORRUPT_RESPONSE, REWRITE_RESPONSE = (
    "status", "cut_request", "cut_response", "corrupt_request", "corrupt_response", "rewrite_response")


@dataclass
class Fault:
    """One programmed fault: applies to `times` matching requests after letting `skip` through.

    `path` is a regular expression searched in the path plus query string; `when` an optional
    extra test on (method, path_and_query, headers).
    """

    kind: str
    method: str | None = None
    path: str = ""
    times: int = 1
    skip: int = 0
    status: int = 503
    at: float = 0.5  # where to cut or corrupt, as a fraction of the body
    when: Callable[[str, str, dict[str, str]], bool] | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    applied: int = 0

    def matches(self, method: str, target: str, headers: dict[str, str]) -> bool:
        return ((self.method is None or self.method == method) and re.search(self.path, target) is not None
                and (self.when is None or self.when(method, target, headers)))


@dataclass
class Recorded:
    method: str
    target: str  # path and query string, as requested
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int | None = None  # None: the connection was cut before a status was sent
    fault: str | None = None
    body_size: int = 0


@dataclass
class _State:
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    uploads: dict[str, tuple[str, str]] = field(default_factory=dict)  # upload_id -> (bucket, name)
    finished: dict[str, bytes] = field(default_factory=dict)  # upload_id -> final object resource
    enforce_preconditions: bool = True


class FaultProxy:
    """Threaded proxy on 127.0.0.1 (ephemeral port) in front of the emulator at `upstream`."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._state = _State()
        self._lock = threading.Lock()  # guards _state
        self._write_lock = threading.Lock()  # serializes writes: precondition check + forward
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, client_address: None  # cut sockets are expected
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcs-fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- programming ------------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._state.faults.append(fault)
        return fault

    def fail(self, method: str | None, path: str = "", times: int = 1, status: int = 503, skip: int = 0) -> Fault:
        """Answer `status` to the next `times` matching requests (after `skip` pass through)."""
        return self.add(Fault(STATUS, method, path, times, skip, status=status))

    def cut_request(self, method: str | None, path: str = "", times: int = 1, skip: int = 0, at: float = 0.5,
                    when: Callable[[str, str, dict[str, str]], bool] | None = None) -> Fault:
        """Read the fraction `at` of the request body, then close without answering."""
        return self.add(Fault(CUT_REQUEST, method, path, times, skip, at=at, when=when))

    def cut_response(self, method: str | None, path: str = "", times: int = 1, skip: int = 0, at: float = 0.5,
                     when: Callable[[str, str, dict[str, str]], bool] | None = None) -> Fault:
        """Forward the request, send the headers and the fraction `at` of the body, then close.

        A response without a body (a 308 to a chunk) is dropped whole: the server acted, the
        client never hears of it."""
        return self.add(Fault(CUT_RESPONSE, method, path, times, skip, at=at, when=when))

    def corrupt_request(self, method: str | None, path: str = "", times: int = 1, skip: int = 0, at: float = 0.5) -> Fault:
        """Flip one byte of the request body (at fraction `at`) before forwarding it."""
        return self.add(Fault(CORRUPT_REQUEST, method, path, times, skip, at=at))

    def corrupt_response(self, method: str | None, path: str = "", times: int = 1, skip: int = 0, at: float = 0.5) -> Fault:
        """Flip one byte of the response body (at fraction `at`)."""
        return self.add(Fault(CORRUPT_RESPONSE, method, path, times, skip, at=at))

    def rewrite_response(self, method: str | None, path: str, rewrite: Callable[[bytes], bytes], times: int = 1,
                         skip: int = 0) -> Fault:
        """Forward, then replace the response body with `rewrite(body)`."""
        return self.add(Fault(REWRITE_RESPONSE, method, path, times, skip, rewrite=rewrite))

    def enforce_preconditions(self, on: bool) -> None:
        with self._lock:
            self._state.enforce_preconditions = on

    def reset(self) -> None:
        """Forget faults and recorded requests (keeps upload-session bookkeeping)."""
        with self._lock:
            self._state.faults.clear()
            self._state.requests.clear()
            self._state.enforce_preconditions = True

    def requests(self, method: str | None = None, path: str = "") -> list[Recorded]:
        """Recorded requests, optionally filtered by method and a regular expression searched in
        the path plus query string."""
        with self._lock:
            return [r for r in self._state.requests
                    if (method is None or r.method == method) and re.search(path, r.target)]

    # -- used by the handler ----------------------------------------------------------------------

    def _take_fault(self, method: str, target: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self._state.faults:
                if fault.applied < fault.skip + fault.times and fault.matches(method, target, headers):
                    fault.applied += 1
                    if fault.applied > fault.skip:
                        return fault
                    return None  # let this one through, counted as skipped
            return None

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._state.requests.append(rec)

    def _upstream_request(self, method: str, target: str, headers: dict[str, str], body: bytes | None
                          ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def current_generation(self, bucket: str, name: str) -> int:
        """The object's live generation on the emulator, 0 when it does not exist."""
        path = f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}"
        status, _, _, body = self._upstream_request("GET", path, {}, None)
        if status == 404:
            return 0
        if status != 200:
            raise RuntimeError(f"emulator answered {status} to {path}")
        return int(json.loads(body)["generation"])


def _object_of(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes,
               uploads: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """(bucket, object name) a write request is about, when it names one."""
    m = _OBJECT_PATH.match(path)
    if m:
        return m["bucket"], urllib.parse.unquote(m["name"])
    m = _UPLOAD_PATH.match(path)
    if not m:
        return None
    if "upload_id" in query:
        return uploads.get(query["upload_id"][0])
    if "name" in query:
        return m["bucket"], query["name"][0]
    ctype = headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/"):
            msg = email.parser.BytesParser().parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            meta = json.loads(msg.get_payload()[0].get_payload())
        else:
            meta = json.loads(body or b"{}")
        return m["bucket"], meta["name"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _gcs_error(status: int, message: str, reason: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": message,
                                 "errors": [{"domain": "global", "reason": reason, "message": message}]}}).encode()


def _flip(body: bytes, at: float) -> bytes:
    if not body:
        return body
    i = min(len(body) - 1, int(len(body) * at))
    return body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.0"  # one request per connection: a cut affects only that request

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _read_body(self, limit: int | None = None) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            n = int(length) if limit is None else min(int(length), limit)
            return self.rfile.read(n)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _cut(self) -> None:
        """Drop the connection abruptly (RST when unread data remains)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, cut_at: int | None = None
              ) -> None:
        if cut_at is not None and not body:  # nothing to cut short: drop the response entirely
            self._cut()
            return
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in _HOP_BY_HOP and k.lower() not in ("server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if cut_at is None:
            self.wfile.write(body)
        else:
            self.wfile.write(body[:cut_at])
            self.wfile.flush()
            self._cut()

    def _handle(self) -> None:
        owner = self.owner
        target = self.path
        parsed = urllib.parse.urlparse(target)
        query = urllib.parse.parse_qs(parsed.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(self.command, target, parsed.path, query, headers)
        owner._record(rec)
        fault = owner._take_fault(self.command, target, headers)
        rec.fault = fault.kind if fault else None

        if fault and fault.kind == CUT_REQUEST:
            total = int(headers.get("content-length", "0") or 0)
            rec.body_size = len(self._read_body(limit=int(total * fault.at)))
            self._cut()
            return
        body = self._read_body()
        rec.body_size = len(body)
        if fault and fault.kind == STATUS:
            rec.status = fault.status
            reason = "rateLimitExceeded" if fault.status == 429 else "backendError"
            self._send(fault.status, http.HTTPStatus(fault.status).phrase, [("Content-Type", "application/json")],
                       _gcs_error(fault.status, f"injected {fault.status}", reason))
            return
        if fault and fault.kind == CORRUPT_REQUEST:
            body = _flip(body, fault.at)

        forward_headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if self.command in _WRITE_METHODS:
            with owner._write_lock:
                refused = self._precondition_refusal(parsed.path, query, headers, body)
                if refused is not None:
                    rec.status = 412
                    self._send(412, "Precondition Failed", [("Content-Type", "application/json")], refused)
                    return
                upload_id = query.get("upload_id", [""])[0]
                with owner._lock:
                    finished = owner._state.finished.get(upload_id)
                if finished is not None:  # GCS: a finished session answers with its object
                    status, reason, resp_headers, resp_body = 200, "OK", [("Content-Type", "application/json")], finished
                else:
                    status, reason, resp_headers, resp_body = self._forward(
                        target, forward_headers, body if body or "content-length" in headers else None)
                    self._remember_upload(parsed.path, query, headers, body, resp_headers)
                    if upload_id and status == 200:
                        with owner._lock:
                            owner._state.finished[upload_id] = resp_body
        else:
            status, reason, resp_headers, resp_body = self._forward(target, forward_headers, None)
        rec.status = status
        if fault and fault.kind == CORRUPT_RESPONSE:
            resp_body = _flip(resp_body, fault.at)
        if fault and fault.kind == REWRITE_RESPONSE and fault.rewrite is not None:
            resp_body = fault.rewrite(resp_body)
        cut_at = int(len(resp_body) * fault.at) if fault and fault.kind == CUT_RESPONSE else None
        self._send(status, reason, resp_headers, resp_body, cut_at)

    def _forward(self, target: str, headers: dict[str, str], body: bytes | None
                 ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        try:
            return self.owner._upstream_request(self.command, target, headers, body)
        except (OSError, http.client.HTTPException) as exc:  # the emulator dropped the request
            return 502, "Bad Gateway", [("Content-Type", "application/json")], _gcs_error(
                502, f"upstream gave no response ({type(exc).__name__})", "backendError")

    def _precondition_refusal(self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
                              ) -> bytes | None:
        owner = self.owner
        with owner._lock:
            enforce = owner._state.enforce_preconditions
            uploads = dict(owner._state.uploads)
        match, not_match = query.get("ifGenerationMatch"), query.get("ifGenerationNotMatch")
        if not enforce or (match is None and not_match is None):
            return None
        obj = _object_of(self.command, path, query, headers, body, uploads)
        if obj is None:
            return None
        current = owner.current_generation(*obj)
        ok = (match is None or int(match[0]) == current) and (not_match is None or int(not_match[0]) != current)
        if ok:
            return None
        return _gcs_error(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet")

    def _remember_upload(self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes,
                         resp_headers: list[tuple[str, str]]) -> None:
        """Map a new resumable session to its object, so later chunk PUTs can be checked too."""
        if query.get("uploadType") != ["resumable"] or "upload_id" in query:
            return
        location = next((v for k, v in resp_headers if k.lower() == "location"), None)
        obj = _object_of("POST", path, query, headers, body, {})
        if location and obj:
            upload_id = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("upload_id", [None])[0]
            if upload_id:
                with self.owner._lock:
                    self.owner._state.uploads[upload_id] = obj
