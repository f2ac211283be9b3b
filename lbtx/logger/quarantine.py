"""The quarantine folder: spool lines taken out of delivery, kept with the reason.

Nothing leaves the spool silently. A torn tail cut at recovery, a line the
interlogger cannot send, events the server refused for good or whose job stayed
unknown: each lot is written durably to ``<spool>/quarantine/`` as

* ``<stem>.<UTC time>.<n>.ulm``: the lines, as they were in the spool;
* ``<stem>.<UTC time>.<n>.reason``: a JSON object with ``reason`` (a short
  phrase), ``detail``, ``jobid``, ``source`` (the spool file), ``offset`` (where
  the lines started in it), ``lines`` (their count) and ``time`` (epoch seconds),

before the caller moves on (cuts the file, advances the delivery position).
An operator can inspect the lines and feed them back by hand.

Blocking code: run it in a disk worker thread.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

from lbtx.logger.durable import fdatasync, fsync_directory, write_all
from lbtx.logger.layout import QUARANTINE_DIR

__all__ = ["quarantine_lines"]


def _create_exclusive(directory: str, base: str, suffix: str) -> tuple[str, int]:
    for n in range(1, 100000):
        path = os.path.join(directory, f"{base}.{n}{suffix}")
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
    raise OSError(17, f"no free quarantine name for {base}")


def _write(fd: int, data: bytes, sync: Callable[[int], None]) -> None:
    try:
        write_all(fd, data)
        sync(fd)
    finally:
        os.close(fd)


def quarantine_lines(spool_dir: str, stem: str, data: bytes, *, reason: str, detail: str = "",
                     jobid: str | None = None, source: str | None = None, offset: int | None = None,
                     now: float | None = None, sync: Callable[[int], None] = fdatasync) -> str:
    """Write ``data`` (whole lines, or a torn piece) and its reason to the quarantine
    folder of ``spool_dir``; return the path of the lines file once both are durable.

    :raises OSError: the folder cannot be written (the caller keeps the lines where
        they are and tries again later).
    """
    now = time.time() if now is None else now
    directory = os.path.join(spool_dir, QUARANTINE_DIR)
    os.makedirs(directory, exist_ok=True)
    base = f"{stem}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}"
    path, fd = _create_exclusive(directory, base, ".ulm")
    _write(fd, data, sync)
    note = {"reason": reason, "detail": detail, "jobid": jobid, "source": source,
            "offset": offset, "lines": data.count(b"\n"), "time": now}
    reason_path = path[: -len(".ulm")] + ".reason"
    fd = os.open(reason_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    _write(fd, (json.dumps(note, sort_keys=True) + "\n").encode("utf-8"), sync)
    fsync_directory(directory)
    return path
