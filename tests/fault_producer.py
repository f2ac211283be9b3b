"""A producer process for the delivery fault-injection tests (run as a script).

``python tests/fault_producer.py CONFIG.json`` registers the jobs of the config
(straight to their server, then the logger's copy), then logs the standard WMS
sequence of scenario P01 for all of them, step by step (every job's first step,
then every job's second ...), each step by the component that logs it, passing
the sequence code on. It uses the blocking producer (:class:`lbtx.producer.Producer`)
the way a real component would, and retries an event that was not acknowledged
(cannot connect, connection lost, timeout, a full disk) with *the same bytes*
(same DATE and sequence code), so the duplicates a retry may create are
exercised; the sequence code is advanced once the event is acknowledged.

Every outcome goes to the JSON-lines file ``out``, flushed per line:

* ``{"phase": "registered", "t": ...}`` once every job is registered;
* ``{"ack": LINE, "t": SENT, "lat": SECONDS, "tries": N, "errors": [...]}`` per
  acknowledged record (``t`` wall-clock time of the first attempt, ``lat`` the
  time of the acknowledged attempt, ``errors`` the errors of the failed ones);
* ``{"refused": LINE, "code": ...}`` for a refusal (the tests expect none);
* ``{"phase": "done", "t": ...}`` at the end.

Config keys: ``scenario`` (the P01 file), ``logger`` (socket path), ``jobs`` (job
ids), ``out``, ``user``, ``timeout`` (per attempt, s), ``retry_sleep`` (s),
``rate`` (records per second in the event phase, 0 for as fast as acknowledged),
``give_up`` (s an event may stay unacknowledged before the process exits 3; the
test then fails).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lbtx.producer import Producer, RefusedError, UnavailableError  # noqa: E402
from lbtx.producer.address import server_address  # noqa: E402


def wms_steps(path: str):
    """(source, type, attributes) of each step of the scenario at ``path`` (P01)."""
    from pathlib import Path

    from scenario_support import load, scenario_event
    scenario = load(Path(path))
    out = []
    for step in scenario["steps"]:
        ev = scenario_event(scenario, step["event"])
        out.append((ev.source, ev.type_name, ev.attrs()))
    return out


class Worker:
    def __init__(self, config: dict):
        self.config = config
        self.out = open(config["out"], "a", encoding="utf-8")
        self.producers: dict = {}
        self.retry_sleep = config.get("retry_sleep", 0.05)
        self.give_up = config.get("give_up", 120.0)

    def producer(self, source) -> Producer:
        producer = self.producers.get(source)
        if producer is None:
            producer = self.producers[source] = Producer(
                self.config["logger"], source=source, user=self.config["user"],
                host="wms.example.org", timeout=self.config.get("timeout", 5.0))
        return producer

    def emit(self, **record) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def deliver(self, producer: Producer, address, line: bytes, *, record: bool) -> bool:
        """Send ``line`` to ``address`` until it is acknowledged; False if refused."""
        sent = time.time()
        errors: list[str] = []
        started = time.monotonic()
        while True:
            attempt = time.monotonic()
            try:
                producer._check(producer._send(address, [line]))
            except UnavailableError as e:
                errors.append(str(e)[:200])
                if time.monotonic() - started > self.give_up:
                    self.emit(gave_up=line.decode("utf-8", "surrogateescape"), errors=errors)
                    sys.exit(3)
                time.sleep(self.retry_sleep)
                continue
            except RefusedError as e:
                self.emit(refused=line.decode("utf-8", "surrogateescape"), code=e.code.value,
                          errors=errors)
                return False
            if record:
                self.emit(ack=line.decode("utf-8", "surrogateescape"), t=sent,
                          lat=time.monotonic() - attempt, tries=len(errors) + 1,
                          errors=errors[-3:])
            return True

    def run(self) -> None:
        steps = wms_steps(self.config["scenario"])
        jobs = self.config["jobs"]
        codes: dict[str, str] = {}
        source, _, attrs = steps[0]
        registrar = self.producer(source)
        for job in jobs:
            ctx, line, copy = registrar._registration(job, None, attrs, text=False,
                                                      exclusive=False)
            if self.deliver(registrar, server_address(ctx.job_id), line, record=False):
                self.deliver(registrar, registrar.logger, copy, record=True)
            ctx.sequence.advance()
            codes[job] = ctx.seqcode
        self.emit(phase="registered", t=time.time())
        rate = self.config.get("rate", 0)
        start = time.monotonic()
        n = 0
        for source, type_name, attrs in steps[1:]:
            producer = self.producer(source)
            for job in jobs:
                if rate:
                    delay = start + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                n += 1
                ctx = producer.context(job, codes[job])
                line = producer._record(ctx, type_name, attrs, text=False)
                self.deliver(producer, producer.logger, line, record=True)
                ctx.sequence.advance()
                codes[job] = ctx.seqcode
        for producer in self.producers.values():
            producer.close()
        self.emit(phase="done", t=time.time())
        self.out.close()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        Worker(json.load(f)).run()
