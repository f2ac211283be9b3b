"""HTTP(S) callback delivery of the durable outbox (issue 5, docs/notifications.md).

:class:`CallbackDelivery` sends the queued messages of every registration that has
an ``http://``/``https://`` destination, as a JSON POST of ``Message.document``
with the headers ``X-LB-Notification`` (the notification id) and
``X-LB-Notification-Seq`` (the message's seq). Rules:

* per registration, in seq order, one request in flight; a message is acknowledged
  in the store (deleted) only after a 2xx answer; acknowledgements are coalesced
  (``acknowledge(id, up_to_seq)``: every ``ack_every`` messages or ``ack_interval``
  seconds while a backlog is sent, at once when it is empty) and run beside the
  next request, so a crash between the answer and the acknowledgement re-delivers
  messages with the same seqs, which the receiver recognises;
* every request has a timeout; a failure (refused connection, timeout, non-2xx)
  backs off the whole destination (scheme, host and port) with exponential
  backoff and jitter, so a listener that is down costs one attempt per period;
* the registration is read again before each batch: a Bind moves the backlog to
  the new URL, a Drop or the expiry stops it; nothing is sent after expiry;
* work is found by a periodic scan (``store.pending_registrations``, in pages of
  callback registrations only, so pull backlogs cannot crowd them out) and by
  :meth:`wake` (after intake commits, after New/Bind/Refresh), coalesced.

Legacy ``host:port`` destinations and pull registrations (no destination) are left
alone. With several server processes on one PostgreSQL database, a registration is
delivered by the process that holds its advisory lock (:mod:`.locks`); receivers
drop duplicates by seq anyway.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, succeed
from twisted.logger import Logger

from lbtx.server.notify.locks import NoLocks

__all__ = ["CallbackDelivery", "Backoff", "is_callback_url", "HEADER_ID", "HEADER_SEQ"]

SECOND = 1.0
HEADER_ID = "X-LB-Notification"
HEADER_SEQ = "X-LB-Notification-Seq"
DEFAULT_REQUEST_TIMEOUT = 10 * SECOND
DEFAULT_SCAN_PERIOD = 2 * SECOND
DEFAULT_BATCH = 100
#: while a backlog is sent, an acknowledgement (a write transaction) starts once the
#: previous one ended and this many messages were answered or this long has passed
DEFAULT_ACK_EVERY = 50
DEFAULT_ACK_INTERVAL = 0.1 * SECOND
DEFAULT_SCAN_LIMIT = 1000  # callback registrations with queued messages per scan (a page)
_JSON = {b"Content-Type": [b"application/json"], b"User-Agent": [b"lbtx-notify/1"]}


def is_callback_url(destination: str | None) -> bool:
    return bool(destination) and destination.startswith(("http://", "https://"))


def destination_key(url: str) -> str:
    """What one backoff covers: scheme, host and port of the URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``first`` s doubled per failure up to
    ``maximum``, each delay a random fraction (0.5-1) of that."""

    first: float = 0.5 * SECOND
    maximum: float = 60 * SECOND

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.maximum, self.first * (2 ** max(0, failures - 1)))
        return base * rng.uniform(0.5, 1.0)


class _Destination:
    """The backoff state of one destination."""

    def __init__(self):
        self.failures = 0
        self.until = 0.0


class CallbackDelivery:
    """Delivers the outbox of URL registrations (see the module doc).

    :param store: provides the notification store methods.
    :param http: a ``treq.client.HTTPClient`` (or anything with its ``post``).
    :param clock: ``IReactorTime`` for timeouts, backoff and expiry.
    """

    log = Logger()

    def __init__(self, store, http, clock, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 batch: int = DEFAULT_BATCH, scan_limit: int = DEFAULT_SCAN_LIMIT,
                 backoff: Backoff = Backoff(), rng: random.Random | None = None,
                 locks=None, ack_every: int = DEFAULT_ACK_EVERY,
                 ack_interval: float = DEFAULT_ACK_INTERVAL):
        self.store = store
        self.http = http
        self.clock = clock
        self.request_timeout = request_timeout
        self.batch = batch
        self.scan_limit = scan_limit
        self.backoff = backoff
        self.ack_every = ack_every
        self.ack_interval = ack_interval
        self.rng = rng or random.Random()
        self.locks = locks if locks is not None else NoLocks()
        self._active: dict[str, Deferred] = {}   # notif id -> its delivery loop
        self._again: set[str] = set()            # woken while its loop was running
        self._destinations: dict[str, _Destination] = {}
        self._retry_calls: dict[str, object] = {}  # destination key -> DelayedCall
        self._scanning: Deferred | None = None
        self._cursor: str | None = None          # the scan goes on after this notif id
        self._scan_again = False
        self._wake_call = None
        self.running = False
        self.delivered = 0

    # --- control ------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.wake()

    def stop(self) -> Deferred:
        """Stop starting requests; fire when the loops in progress ended."""
        self.running = False
        for call in list(self._retry_calls.values()) + [self._wake_call]:
            if call is not None and call.active():
                call.cancel()
        self._retry_calls.clear()
        self._wake_call = None
        loops = list(self._active.values())
        return DeferredList(loops, consumeErrors=True) if loops else succeed(None)

    def wake(self, notif_id: str | None = None) -> None:
        """Look for work soon (coalesced): after intake committed, after a Bind."""
        if not self.running:
            return
        if notif_id is not None and notif_id in self._active:
            self._again.add(notif_id)
        if self._wake_call is None or not self._wake_call.active():
            self._wake_call = self.clock.callLater(0, self.scan)

    # --- the scan -----------------------------------------------------------------
    def scan(self) -> Deferred:
        """One look at ``pending_registrations``: start a loop for each due one."""
        if self._scanning is not None:
            self._scan_again = True
            return self._scanning
        self._scanning = d = self._scan()

        def done(result):
            self._scanning = None
            if self._scan_again and self.running:
                self._scan_again = False
                self.wake()
            return result
        d.addBoth(done)
        return d

    @inlineCallbacks
    def _scan(self):
        if not self.running:
            return 0
        now = self.clock.seconds()
        after = self._cursor
        try:
            rows = yield self.store.pending_registrations(int(now), self.scan_limit, after=after,
                                                          callbacks_only=True)
        except Exception:
            self.log.failure("scanning the notification outbox failed")
            return 0
        # a full page: the next scan goes on after it, at once; else the next one
        # (at the next wake or period) starts from the first registration again
        self._cursor = rows[-1][0] if rows and len(rows) >= self.scan_limit else None
        if self._cursor is not None:
            self._scan_again = True
        started = 0
        for notif_id, destination, expires, _first_seq in rows:
            if not is_callback_url(destination) or expires <= now:
                continue
            if notif_id in self._active:
                self._again.add(notif_id)
                continue
            if self._backing_off(destination, now):
                continue
            self._start(notif_id)
            started += 1
        return started

    def _backing_off(self, destination: str, now: float) -> bool:
        state = self._destinations.get(destination_key(destination))
        return state is not None and state.until > now

    def _start(self, notif_id: str) -> None:
        d = self._locked_loop(notif_id)
        self._active[notif_id] = d

        def ended(result):
            self._active.pop(notif_id, None)
            if notif_id in self._again and self.running:
                self._again.discard(notif_id)
                self.wake()
            return None
        d.addErrback(lambda f: self.log.failure("delivering {notif} failed", f, notif=notif_id))
        d.addBoth(ended)

    # --- one registration -----------------------------------------------------------
    @inlineCallbacks
    def _locked_loop(self, notif_id: str):
        """The loop, while this process holds the registration's delivery lock."""
        got = yield self.locks.acquire(notif_id)
        if not got:
            return  # another server process delivers it
        try:
            yield self._loop(notif_id)
        finally:
            yield self.locks.release(notif_id)

    @inlineCallbacks
    def _loop(self, notif_id: str):
        sent = 0          # highest seq answered 2xx in this loop
        acked = 0         # highest seq acknowledged (or being acknowledged)
        acked_at = self.clock.seconds()  # when the last acknowledgement started
        ack: Deferred | None = None
        try:
            while self.running:
                reg = yield self.store.registration(notif_id)
                now = self.clock.seconds()
                if reg is None or reg.expires <= now or not is_callback_url(reg.destination):
                    return
                if self._backing_off(reg.destination, now):
                    return
                messages = yield self.store.messages(notif_id, after_seq=sent,
                                                     limit=self.batch)
                if not messages:
                    self._again.discard(notif_id)
                    if acked < sent:
                        if ack is not None and not ack.called:
                            yield ack
                        ack = self._acknowledge(notif_id, sent)
                        acked = sent
                    if ack is None:
                        return
                    yield ack
                    ack = None
                    continue  # look once more: something may have arrived meanwhile
                for message in messages:
                    if not self.running or self.clock.seconds() >= reg.expires:
                        return
                    ok = yield self._post(reg.destination, message)
                    if not ok:
                        return
                    sent = message.seq
                    self.delivered += 1
                    if (ack is None or ack.called) and (
                            sent - acked >= self.ack_every
                            or self.clock.seconds() - acked_at >= self.ack_interval):
                        ack = self._acknowledge(notif_id, sent)
                        acked, acked_at = sent, self.clock.seconds()
                if ack is not None and acked < sent:
                    yield ack
                    ack = self._acknowledge(notif_id, sent)
                    acked = sent
        finally:
            if ack is not None and not ack.called:
                yield ack
            if acked < sent:
                yield self._acknowledge(notif_id, sent)

    def _acknowledge(self, notif_id: str, seq: int) -> Deferred:
        d = self.store.acknowledge(notif_id, seq)
        d.addErrback(lambda f: self.log.failure(
            "acknowledging {notif} up to {seq} failed (it will be sent again)", f,
            notif=notif_id, seq=seq))
        return d

    @inlineCallbacks
    def _post(self, url: str, message):
        """POST one message; True after a 2xx answer, else back off and False."""
        headers = dict(_JSON)
        headers[HEADER_ID.encode()] = [message.notif_id.encode("utf-8", "replace")]
        headers[HEADER_SEQ.encode()] = [str(message.seq).encode()]
        body = json.dumps(message.document).encode("ascii")
        key = destination_key(url)
        try:
            d = self.http.post(url, data=body, headers=headers, timeout=self.request_timeout)
            response = yield d
            code = response.code
            try:
                content = response.content()
                content.addTimeout(self.request_timeout, self.clock)
                yield content
            except Exception:
                pass  # the status is what counts
        except Exception as e:
            self._failed(key, url, f"{type(e).__name__}: {e}"[:200])
            return False
        if 200 <= code < 300:
            if key in self._destinations:
                del self._destinations[key]
                self.log.info("callback {url} answers again", url=url)
            return True
        self._failed(key, url, f"HTTP status {code}")
        return False

    def _failed(self, key: str, url: str, why: str) -> None:
        state = self._destinations.setdefault(key, _Destination())
        state.failures += 1
        delay = self.backoff.delay(state.failures, self.rng)
        state.until = self.clock.seconds() + delay
        self.log.warn("callback {url} failed ({why}); retrying its destination in {delay:.1f} s",
                      url=url, why=why, delay=delay)
        old = self._retry_calls.get(key)
        if old is not None and old.active():
            old.cancel()
        if self.running:
            self._retry_calls[key] = self.clock.callLater(delay, self._retry, key)

    def _retry(self, key: str) -> None:
        self._retry_calls.pop(key, None)
        self.wake()
