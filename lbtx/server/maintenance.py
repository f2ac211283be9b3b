"""Purge, dump and load on the server (formats.md §6.8-6.10, §11.6).

:class:`Maintenance` carries out the three operations for the front ends, with
their rights: purge needs ``PURGE`` (or a super-user, or ``--noauth``); dump and
load need ``ADMIN_ACCESS`` (a super-user). Files live under the data directory:
``purge/purge_<uldate>`` and ``dump/dump_<uldate>`` (mode 0600, created
exclusively), one event per line as ``DG.ARRIVED=<uldate> <ULM line>`` with the
line as the server received it; a load rejects into ``load_<uldate>`` next to
the file it reads.

A purge of named jobs takes them (and their subjobs) whatever their age, if they
belong to this server; without names it takes the jobs old enough for the
per-state timeouts. ``target_runtime`` spreads the work over about that time
(pauses between transactions); ``background`` answers at once and goes on.
Purged ids become zombies: queries for them answer ``EIDRM``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from twisted.internet import defer, task
from twisted.logger import Logger

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.jobid import PREFIX
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.protocols.legacy_query.maintenance_xml import (DUMP_LAST_END, DUMP_LAST_START,
                                                         DUMP_NOW, DumpRequest, DumpResult,
                                                         LoadRequest, PurgeFlag, PurgeRequest,
                                                         PurgeResult)
from lbtx.server.authz import ReadPolicy, caller_of
from lbtx.server.policy import Action
from lbtx.server.store.maintenance_store import PURGE_CHUNK
from lbtx.timeval import Timeval

__all__ = ["Maintenance", "LOAD_BATCH", "MAX_LOAD_LINE"]

#: events stored per transaction when loading
LOAD_BATCH = 500
#: the longest line a load reads
MAX_LOAD_LINE = 16 * 1024 * 1024
_ARRIVED = "DG.ARRIVED="


@dataclass
class _Files:
    root: str

    def new(self, kind: str, now: float) -> tuple[str, int]:
        """An exclusively created 0600 file ``<root>/<kind>/<kind>_<uldate>``."""
        folder = os.path.join(self.root, kind)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        stamp = Timeval.from_float(now)
        while True:
            path = os.path.join(folder, f"{kind}_{stamp.to_ulm()}")
            try:
                return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                stamp = Timeval(stamp.sec, stamp.usec + 1) if stamp.usec < 999_999 \
                    else Timeval(stamp.sec + 1, 0)


def _write_lines(fd: int, lines) -> None:
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        for sec, usec, line in lines:
            f.write(f"{_ARRIVED}{Timeval(sec, usec).to_ulm()} {line.rstrip(chr(10))}\n")
        f.flush()
        os.fsync(f.fileno())


class Maintenance:
    """The operations over a started store with
    :class:`~lbtx.server.store.maintenance_store.MaintenanceStoreMixin`."""

    log = Logger()

    def __init__(self, store, policy: ReadPolicy, *, server: tuple[str, int], data_dir: str,
                 clock, identity: str | None = None):
        self._store = store
        self._policy = policy
        self._prefix = f"{PREFIX}{server[0]}:{server[1]}/"
        self._files = _Files(os.path.abspath(data_dir))
        self._clock = clock
        self._identity = identity
        self.background: list[defer.Deferred] = []

    # --- rights -----------------------------------------------------------------------
    def _require(self, caller, action: Action) -> None:
        p = self._policy
        if p.noauth or p.is_superuser(caller):
            return
        who = caller_of(caller)
        if who is not None and self._identity and str(who) == self._identity \
                and action == Action.PURGE:
            return  # the server's own identity always holds PURGE (§6.8)
        if action != Action.ADMIN_ACCESS and p.allows(action, caller):
            return
        raise LBError(ErrorCode.EPERM, f"{action.value} is required")

    # --- purge ----------------------------------------------------------------------------
    def purge(self, req: PurgeRequest, caller) -> defer.Deferred:
        """Fire with ``(PurgeResult, accepted)``; ``accepted`` True when the purge
        goes on in the background (answer 202)."""
        try:
            self._require(caller, Action.PURGE)
        except LBError:
            return defer.fail()
        if req.flags & PurgeFlag.BACKGROUND:
            d = self._purge(req)
            d.addErrback(lambda f: self.log.failure("background purge failed", f))
            self.background.append(d)
            d.addBoth(lambda r: (self.background.remove(d), r)[1])
            return defer.succeed((PurgeResult(), True))
        return self._purge(req).addCallback(lambda result: (result, False))

    @defer.inlineCallbacks
    def _purge(self, req: PurgeRequest):
        now = int(self._clock.seconds())
        if req.jobs:
            ids = [j for j in req.jobs if j.startswith(self._prefix)]
            foreign = len(req.jobs) - len(ids)
            if foreign:
                self.log.info("purge: {count} job id(s) of other servers left alone",
                              count=foreign)
        else:
            ids = yield self._store.purge_candidates(self._prefix, now, req.timeouts)
        really = bool(req.flags & PurgeFlag.REALLY_PURGE)
        dump = bool(req.flags & PurgeFlag.SERVER_DUMP)
        pause = 0.0
        chunks = max(1, -(-len(ids) // PURGE_CHUNK))
        if req.target_runtime and chunks > 1:
            pause = req.target_runtime / chunks
        purged, lines = [], []
        for i in range(0, len(ids), PURGE_CHUNK):
            got, chunk_lines = yield self._store.purge(ids[i:i + PURGE_CHUNK], now,
                                                       really=really, dump=dump)
            purged += got
            lines += chunk_lines
            if pause and i + PURGE_CHUNK < len(ids):
                yield task.deferLater(self._clock, pause, lambda: None)
        server_file = None
        if dump:
            server_file, fd = self._files.new("purge", self._clock.seconds())
            _write_lines(fd, sorted(lines, key=lambda x: (x[0], x[1])))
        self.log.info("purge: {count} job(s) {how}{file}", count=len(purged),
                      how="purged" if really else "would be purged (dry run)",
                      file=f", events in {server_file}" if server_file else "")
        listed = tuple(purged) if req.flags & PurgeFlag.LIST_JOBS else ()
        return PurgeResult(listed, server_file)

    # --- dump -------------------------------------------------------------------------------
    @defer.inlineCallbacks
    def _resolve(self, value: int, now: int):
        if value == DUMP_NOW:
            return now
        if value in (DUMP_LAST_START, DUMP_LAST_END):
            name = "dump_start" if value == DUMP_LAST_START else "dump_end"
            stored = yield self._store.server_state(name)
            return int(stored) if stored else 0
        return value

    @defer.inlineCallbacks
    def dump(self, req: DumpRequest, caller):
        """Fire with the :class:`DumpResult` (the file and the resolved interval)."""
        self._require(caller, Action.ADMIN_ACCESS)
        now = int(self._clock.seconds())
        start = yield self._resolve(req.from_, now)
        end = yield self._resolve(req.to, now)
        if start > end:
            raise LBError(ErrorCode.EINVAL, f"from ({start}) is after to ({end})")
        lines = yield self._store.dump_events(self._prefix, start, end)
        path, fd = self._files.new("dump", self._clock.seconds())
        _write_lines(fd, lines)
        yield self._store.set_server_state("dump_start", str(start))
        yield self._store.set_server_state("dump_end", str(end))
        self.log.info("dump: {count} event(s) arrived in ({start}, {end}] written to {path}",
                      count=len(lines), start=start, end=end, path=path)
        return DumpResult(path, start, end)

    # --- load -------------------------------------------------------------------------------
    @defer.inlineCallbacks
    def load(self, req: LoadRequest, caller):
        """Store the events of a dump file through the normal pipeline, with their
        arrival times; fire with the :class:`DumpResult` (reject file, interval)."""
        self._require(caller, Action.ADMIN_ACCESS)
        try:
            f = open(req.server_file, "rb")
        except OSError as e:
            raise LBError(ErrorCode.ENOENT if isinstance(e, FileNotFoundError)
                          else ErrorCode.EPERM, f"cannot read {req.server_file}: "
                          f"{e.strerror}") from None
        rejected, first, last = [], None, None
        stored = duplicates = 0
        with f:
            batch: list[tuple[bytes, object, str]] = []
            while True:
                raw = f.readline(MAX_LOAD_LINE + 1)
                if not raw:
                    break
                if not raw.endswith(b"\n"):
                    if len(raw) > MAX_LOAD_LINE:
                        rejected.append((raw[:200] + b"...", "longer than the limit"))
                        while raw and not raw.endswith(b"\n"):  # skip the rest of it
                            raw = f.readline(MAX_LOAD_LINE + 1)
                    continue  # a final line without LF is ignored (§6.10)
                text = raw.decode("utf-8", "surrogateescape").rstrip()
                if not text:
                    continue
                try:
                    ev, line = _parse_dump_line(text)
                except LBFormatError as e:
                    rejected.append((raw.rstrip(b"\n"), str(e)))
                    continue
                first = ev.arrived if first is None else min(first, ev.arrived)
                last = ev.arrived if last is None else max(last, ev.arrived)
                batch.append((raw.rstrip(b"\n"), ev, line))
                if len(batch) >= LOAD_BATCH:
                    s, dup = yield self._load_batch(batch, rejected)
                    stored, duplicates, batch = stored + s, duplicates + dup, []
            if batch:
                s, dup = yield self._load_batch(batch, rejected)
                stored, duplicates = stored + s, duplicates + dup
        reject_file = None
        if rejected:
            reject_file = os.path.join(os.path.dirname(os.path.abspath(req.server_file)),
                                       f"load_{Timeval.from_float(self._clock.seconds()).to_ulm()}")
            fd = os.open(reject_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for raw, _ in rejected:
                    out.write(raw + b"\n")
            for raw, why in rejected[:20]:
                self.log.warn("load: rejected {line!r}: {why}", line=raw[:120], why=why)
        self.log.info("load of {path}: {stored} stored, {dup} duplicate(s), {bad} rejected",
                      path=req.server_file, stored=stored, dup=duplicates, bad=len(rejected))
        return DumpResult(reject_file, first.sec if first else None, last.sec if last else None)

    @defer.inlineCallbacks
    def _load_batch(self, batch, rejected):
        outcomes = yield self._store.accept_events([ev for _, ev, _ in batch],
                                                   [line for _, _, line in batch])
        stored = duplicates = 0
        for (raw, _, _), outcome in zip(batch, outcomes):
            if outcome.delivery.value == "stored":
                stored += 1
            elif outcome.delivery.value == "duplicate":
                duplicates += 1
            else:
                rejected.append((raw, outcome.reason or outcome.delivery.value))
        return stored, duplicates


def _parse_dump_line(text: str):
    """``DG.ARRIVED=<uldate> <ULM line>`` -> (event with its arrival, the ULM line)."""
    if not text.startswith(_ARRIVED):
        raise LBFormatError("a dump line starts with DG.ARRIVED=")
    stamp, sep, line = text[len(_ARRIVED):].partition(" ")
    if not sep:
        raise LBFormatError("nothing after DG.ARRIVED")
    arrived = Timeval.from_ulm(stamp)
    ev = ulm.parse(line, require_user=True)
    ev.validate()
    ev.arrived = arrived
    return ev, line
