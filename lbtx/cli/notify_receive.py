"""The receiving loop of ``glite-lb-notify receive`` and ``lbtx watch``.

:class:`Receiver` binds each notification id (to no destination - pull - or to
a callback URL), reports the validity on stderr, then prints one line per message
until a deadline, refreshing at half validity with ``refresh``. Messages are
taken in seq order and printed once: a seq at or below the last one printed is a
re-delivery and is skipped.

Pull: long polls of ``/api/notifications/<id>/messages``, asking with ``after``
= the last seq printed, which acknowledges it. Callback (``-a URL``): a small
HTTP listener on the URL's port (any interface) takes the server's POSTs and
answers 200 once the message is queued for printing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from lbtx.cli.client_error import ClientError
from lbtx.cli.notify_lines import utc_text
from lbtx.protocols.legacy_query.errors import ErrorCode

__all__ = ["Receiver", "CallbackServer", "MAX_BODY"]

MAX_BODY = 16 * 1024 * 1024   # bytes of one POSTed message
POLL_WAIT = 30                # seconds of one long poll with one id
SHARED_WAIT = 1               # ... when several ids share the loop


class _Handler(BaseHTTPRequestHandler):
    server_version = "lbtx-notify-receive/1"

    def do_POST(self):  # noqa: N802 - http.server's name
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            return
        body = self.rfile.read(length)
        try:
            doc = json.loads(body.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            self.send_error(400)
            return
        self.server.inbox.put(doc)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass


class CallbackServer:
    """An HTTP listener on the port of ``url`` whose POSTs land in :attr:`inbox`."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme != "http":
            raise ClientError(ErrorCode.EINVAL, "receive -a listens for http:// URLs only")
        self.httpd = ThreadingHTTPServer(("", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.inbox = queue.Queue()
        self.inbox = self.httpd.inbox
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Receiver:
    """See the module doc. ``client_of(notif_id)`` gives the NotifyClient of an id;
    ``line(document, fields)`` formats a message; ``on_message(document)``, when
    given, is called after printing and returns True to stop."""

    def __init__(self, ids, *, client_of, out, err, fields, destination=None, bind=True,
                 validity: int = 3600, refresh: bool = False, line, on_message=None,
                 report_validity: bool = True):
        self.ids = [str(i) for i in ids]
        self.clients = {str(i): client_of(i) for i in ids}
        self.out, self.err = out, err
        self.fields = fields
        self.destination = destination
        self.bind = bind
        self.validity = validity
        self.refresh = refresh
        self.line = line
        self.on_message = on_message
        self.report_validity = report_validity
        self.after = {i: 0 for i in self.ids}
        self.next_refresh: dict[str, float] = {}
        self.stopped = False

    def _bound(self, notif_id: str, reg: dict) -> None:
        expires = int(reg["expires"])
        if self.report_validity:
            self.err.write(f"notification is valid until: {utc_text(expires)} ({expires})\n")
        if self.refresh:
            when = time.time() + max(1, (expires - time.time()) / 2)
            self.next_refresh[notif_id] = when
            self.err.write(f"next refresh {utc_text(when)} ({int(when)})\n")
        self.err.flush()

    def _refresh_due(self) -> None:
        for notif_id, when in list(self.next_refresh.items()):
            if time.time() >= when:
                reg = self.clients[notif_id].refresh(notif_id, validity=self.validity)
                self._bound(notif_id, reg)

    def _take(self, notif_id: str, doc: dict) -> None:
        seq = doc.get("seq")
        if not isinstance(seq, int) or seq <= self.after.get(notif_id, 0):
            return  # a re-delivery
        self.after[notif_id] = seq
        self.out.write(self.line(doc, self.fields) + "\n")
        self.out.flush()
        if self.on_message is not None and self.on_message(doc):
            self.stopped = True

    def run(self, deadline: float) -> None:
        """Bind, then print messages until ``deadline`` (monotonic) or a stop."""
        server = None
        if self.destination is not None:
            server = CallbackServer(self.destination)
        try:
            for notif_id in self.ids:
                if self.bind:
                    reg = self.clients[notif_id].bind(notif_id, destination=self.destination,
                                                      validity=self.validity)
                    self._bound(notif_id, reg)
            while not self.stopped and time.monotonic() < deadline:
                self._refresh_due()
                left = deadline - time.monotonic()
                if server is not None:
                    self._from_server(server, left)
                else:
                    self._poll(left)
        finally:
            if server is not None:
                server.close()

    def _from_server(self, server: CallbackServer, left: float) -> None:
        try:
            doc = server.inbox.get(timeout=max(0.0, min(left, 1.0)))
        except queue.Empty:
            return
        notif_id = str(doc.get("notification", ""))
        if notif_id in self.after:
            self._take(notif_id, doc)

    def _poll(self, left: float) -> None:
        wait = POLL_WAIT if len(self.ids) == 1 else SHARED_WAIT
        wait = int(max(0, min(wait, left)))
        for notif_id in self.ids:
            docs = self.clients[notif_id].messages(notif_id, after=self.after[notif_id],
                                                   wait=wait)
            for doc in sorted(docs, key=lambda d: d.get("seq", 0)):
                self._take(notif_id, doc)
                if self.stopped:
                    return
        if wait == 0 and left > 0:
            time.sleep(min(left, 0.2))

    def acknowledge(self) -> None:
        """Tell the server the last printed messages were received (pull)."""
        for notif_id in self.ids:
            if self.after[notif_id]:
                self.clients[notif_id].messages(notif_id, after=self.after[notif_id], wait=0)
