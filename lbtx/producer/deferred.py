"""The Deferred producer API, for Twisted programs.

The same calls as :class:`~lbtx.producer.blocking.Producer`, returning Deferreds;
connections are :class:`~lbtx.protocols.box.client.BoxClient` s kept per address
(connect and handshake bounded by ``timeout``, every batch too), and a kept
connection that was lost is replaced on the next call.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from twisted.internet import defer
from twisted.internet.endpoints import clientFromString

from lbtx.producer.address import Address, server_address
from lbtx.producer.context import JobContext, ProducerBase
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.box.client import BoxRemoteError, connect_box

__all__ = ["DeferredProducer"]


class DeferredProducer(ProducerBase):
    """Logs events through the local logger with Deferreds.

    :param reactor: the reactor (connections and timeouts).
    """

    def __init__(self, reactor, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._reactor = reactor
        self._clients: dict[Address, defer.Deferred] = {}

    def log(self, ctx: JobContext, type_name: str, **attrs) -> defer.Deferred:
        """Fires with the new sequence code once the logger has the event on disk."""
        try:
            line = self._record(ctx, type_name, attrs, text=False)
        except Exception:
            return defer.fail()
        return self._log(ctx, line)

    def log_many(self, events: Iterable[tuple[JobContext, str, Mapping]]) -> defer.Deferred:
        """Like :meth:`Producer.log_many <lbtx.producer.Producer.log_many>`: fires
        with the new code after each event once all are on the logger's disk (one
        request per ``max_batch`` events, all on the wire at once)."""
        try:
            lines, codes = self._records(events)
        except Exception:
            return defer.fail()
        if not lines:
            return defer.succeed(codes)
        d = self._send(self.logger, lines)
        d.addCallback(self._check, len(lines))
        return d.addCallback(lambda _: codes)

    def log_text(self, ctx: JobContext, type_name: str, attrs: Mapping[str, str]) -> defer.Deferred:
        try:
            line = self._record(ctx, type_name, attrs, text=True)
        except Exception:
            return defer.fail()
        return self._log(ctx, line)

    @defer.inlineCallbacks
    def register(self, job_id, *, seqcode: str | None = None, jobtype="SIMPLE", jdl: str = "",
                 ns: str = "", nsubjobs: int = 0, seed: str | None = None,
                 exclusive: bool = False, **attrs):
        """Fires with the job's context once the server stored the RegJob and the
        logger has its copy."""
        attrs = dict(jobtype=jobtype, jdl=jdl, ns=ns, nsubjobs=nsubjobs, seed=seed, **attrs)
        ctx, line, copy = self._registration(job_id, seqcode, attrs, text=False,
                                             exclusive=exclusive)
        try:
            self._check((yield self._send(server_address(ctx.job_id), [line])))
            self._check((yield self._send(self.logger, [copy])))
        finally:
            ctx.sequence.advance()
        return ctx

    def flush(self, job=None, *, timeout: int | None = None) -> defer.Deferred:
        """Like :meth:`Producer.flush <lbtx.producer.Producer.flush>`: fires with
        None once the server has every event the logger held for ``job`` (every
        job if None)."""
        try:
            line = self._flush_line(job, timeout)
        except Exception:
            return defer.fail()
        return self._send(self.logger, [line]).addCallback(self._check)

    def send_records(self, lines) -> defer.Deferred:
        """Send ULM records as they are (bytes, without LF) to the logger; fires with
        its :class:`~lbtx.protocols.box.messages.Result` for each, whatever it says
        (failing with UnavailableError only when no answer came)."""
        return self._send(self.logger, list(lines))

    def close(self) -> None:
        """Close the open connections."""
        for d in self._clients.values():
            d.addCallback(lambda client: client.transport.loseConnection())
            d.addErrback(lambda _: None)
        self._clients.clear()

    def _log(self, ctx: JobContext, line: bytes) -> defer.Deferred:
        d = self._send(self.logger, [line])
        d.addCallback(self._check)

        def advanced(result):
            ctx.sequence.advance()
            return result
        d.addBoth(advanced)
        return d.addCallback(lambda _: ctx.seqcode)

    def _client(self, address: Address) -> defer.Deferred:
        d = self._clients.get(address)
        if d is None or (d.called and getattr(d.result, "transport", None) is None):
            endpoint = clientFromString(self._reactor, address.endpoint_description())
            d = connect_box(endpoint, clock=self._reactor, connect_timeout=self.timeout,
                            request_timeout=self.timeout)
            self._clients[address] = d
        result: defer.Deferred = defer.Deferred()

        def ready(client):
            result.callback(client)
            return client

        def failed(f):
            self._clients.pop(address, None)
            result.errback(f)
        d.addCallbacks(ready, failed)
        return result

    @defer.inlineCallbacks
    def _send(self, address: Address, lines):
        for attempt in (1, 2):
            try:
                client = yield self._client(address)
            except Exception as e:
                raise UnavailableError(f"cannot connect to {address}: {e}") from e
            try:
                step = max(1, client.max_batch)
                if len(lines) <= step:
                    return (yield client.send_batch(lines))
                try:  # pipelined: every request on the wire at once
                    acks = yield defer.gatherResults(
                        [client.send_batch(lines[i:i + step])
                         for i in range(0, len(lines), step)], consumeErrors=True)
                except defer.FirstError as e:
                    e.subFailure.raiseException()
                return [result for ack in acks for result in ack]
            except BoxRemoteError as e:
                raise UnavailableError(f"{address}: {e}", code=e.code) from e
            except Exception as e:
                self._clients.pop(address, None)
                if client.transport is not None:
                    client.transport.loseConnection()
                if attempt == 2:
                    raise UnavailableError(f"{address}: {e or type(e).__name__}") from e
