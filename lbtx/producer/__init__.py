"""The producer library: log events about jobs through the local logger.

* :class:`Producer` — blocking, plain sockets, no reactor (:mod:`.blocking`);
* :class:`DeferredProducer` — the same calls returning Deferreds (:mod:`.deferred`).

Both build any event type of the schema and validate it before it leaves the
process (:mod:`.records`), keep sequence codes as formats.md §3.2 says
(:mod:`.sequence`), register jobs synchronously with their server and then the
logger, reuse connections and bound every wait by a timeout. Failures are
:class:`LoggingError` s (:mod:`.errors`).
"""

from lbtx.producer.blocking import Producer
from lbtx.producer.context import JobContext
from lbtx.producer.deferred import DeferredProducer
from lbtx.producer.errors import LoggingError, RefusedError, UnavailableError

__all__ = ["DeferredProducer", "JobContext", "LoggingError", "Producer", "RefusedError",
           "UnavailableError"]
