"""``glite-lb-job_reg``: register a job (cli.md §3.1).

::

    glite-lb-job_reg [-m server[:port]] [-x | -X store_sock] [-j jobid] -s source
                     [-o owner] [-n num_subjobs [-S] [-C]] [-P] [-c] [-v]
                     [-l jdl_file] [-e seed] [-E]

``-m`` generates a fresh job id on that server, ``-j`` registers the given id
(and wins over ``-m``). The registration is synchronous: the RegJob goes straight
to the server's store port (the port of the job id plus one) and the command
returns once the server has committed it. ``-x``/``-X sock`` send it to the L&B
proxy store socket instead, with ``-o`` as the user. ``-n N`` makes a DAG (with
``-C`` a collection) of N subjobs, whose ids are derived from the job id and
``-e seed``; ``-S`` also registers each subjob (JDL ``JDL of subjob #k``).
``-P``/``-c``/``-v``: PBS, CREAM, virtual-machine job; ``-l`` reads the JDL from a
file; ``-E`` registers exclusively (fails if the id was ever registered).

stdout, parsed by scripts::

    new jobid: https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg     (only with -m)

    EDG_JOBID="https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg"
    EDG_WL_SEQUENCE="UI=000000:NS=0000000000:...:APP=000002:LBS=000000"
    EDG_WL_SUB_JOBID[0]="..."                                        (with -n)

``EDG_JOBID`` is ``EDG_WL_DAG_JOBID`` for a DAG and ``EDG_WL_COLLECTION_JOBID`` for
a collection. The registration carries the all-zero sequence code plus one in the
registering source's component; the printed code, the one to continue with, has
plus two (sources without a component leave it all zero).

Exit 0 on success. 1 on registration and argument errors: ``edg_wll_RegisterJobSync
(<jobid>): <strerror> (<desc>)`` on stderr (``RegisterJobExt`` with ``-E``,
``RegisterJobProxy`` with ``-x``/``-X``; ``edg_wll_RegisterSubjobs: ...`` when a
``-S`` step fails), ``<id>: <strerror>`` for an unparsable ``-j``, ``<file>:
<strerror>`` for an unreadable ``-l``; "either -m server or -j jobid" and "-s
required". 22 (``EINVAL``) for ``-S``/``-C`` without ``-n``, ``-h`` and unknown
options (usage, which names ``-E``, on stderr).
"""

from __future__ import annotations

import errno
import socket
from typing import TextIO

from lbtx import ulm
from lbtx.cli.client_error import ClientError, strerror
from lbtx.cli.environment import (Address, AddressError, Settings, parse_server,
                                  store_address)
from lbtx.cli.program import begin, run
from lbtx.cli.store_client import result_error, send_events
from lbtx.errors import LBFormatError
from lbtx.events import Event, make_event
from lbtx.jobid import JobId
from lbtx.schema import LogFlag, RegJobJobtype, Source
from lbtx.seqcode import GLITE_SLOTS, PBS_SLOTS, GliteSeqCode, PBSSeqCode
from lbtx.timeval import Timeval

__all__ = ["main", "DEFAULT_JDL", "DEFAULT_NS", "registration_codes"]

#: the JDL registered without -l, and the RegJob's ns field: fixed placeholders
DEFAULT_JDL = "blabla"
DEFAULT_NS = "NS"
_SLOTS = Source.spec.extra.get("slots", {})


def usage(prog: str, err: TextIO) -> None:
    err.write(f"usage: {prog} [-m server[:port]] [-x | -X store_sock] [-j jobid] -s source\n"
              f"       {' ' * len(prog)} [-o owner] [-n num_subjobs [-S] [-C]] [-P] [-c] [-v]\n"
              f"       {' ' * len(prog)} [-l jdl_file] [-e seed] [-E]\n"
              "  -m HOST:PORT  generate a new job id on this server\n"
              "  -j JOBID      register this job id (wins over -m)\n"
              "  -s SOURCE     source component (UserInterface, Application, ...)\n"
              "  -x, -X SOCK   register through the L&B proxy store socket\n"
              "  -o OWNER      the job owner's DN (with the proxy)\n"
              "  -n N          number of subjobs (a DAG; with -C a collection)\n"
              "  -S            register the subjobs as well\n"
              "  -C            a collection (needs -n)\n"
              "  -P, -c, -v    a PBS, CREAM, virtual-machine job\n"
              "  -l FILE       read the JDL from FILE\n"
              "  -e SEED       seed for the subjob ids\n"
              "  -E            exclusive: fail if the job id was ever registered\n")


def registration_codes(source: Source, pbs: bool = False) -> tuple[str, str]:
    """``(code of the RegJob, code printed afterwards)`` for a registration by
    ``source``: the all-zero code plus one and plus two in its component."""
    zero = PBSSeqCode() if pbs else GliteSeqCode()
    slots = PBS_SLOTS if pbs else GLITE_SLOTS
    slot = _SLOTS.get(source.name)
    if slot not in slots:
        return zero.format(), zero.format()
    return zero.increment(slot).format(), zero.increment(slot, 2).format()


def _regjob(job_id: JobId, source: Source, seqcode: str, *, jdl: str, jobtype: RegJobJobtype,
            nsubjobs: int, seed: str | None, parent: JobId | None, priority: int,
            user: str | None) -> Event:
    return make_event(
        "RegJob", timestamp=Timeval.now(), host=socket.gethostname(), priority=priority,
        source=source, src_instance="", job_id=job_id, seqcode=seqcode, user=user,
        jdl=jdl, ns=DEFAULT_NS, parent=parent, jobtype=jobtype, nsubjobs=nsubjobs,
        seed=seed)


def _deliver(address: Address, events: list[Event], timeout: float) -> None:
    """Send ``events`` as one batch; ClientError for the first one refused."""
    lines = []
    for ev in events:
        try:
            ev.validate(require_user=False)
        except LBFormatError as e:
            raise ClientError(errno.EINVAL, e.reason) from None
        lines.append(ulm.format_bytes(ev, newline=False))
    for result in send_events(address, lines, timeout=timeout):
        error = result_error(result)
        if error is not None:
            raise error


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "m:xX:j:s:o:n:SCPcvl:e:Eh", usage=usage,
                  status=errno.EINVAL)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    o = {}
    for opt, value in opts:
        if opt == "-h":
            usage(prog, err)
            return errno.EINVAL
        o[opt] = value
    if rest:
        err.write(f"{prog}: unexpected argument {rest[0]!r}\n")
        usage(prog, err)
        return errno.EINVAL
    if "-m" not in o and "-j" not in o:
        err.write(f"{prog}: either -m server or -j jobid has to be specified\n")
        return 1
    if "-s" not in o:
        err.write(f"{prog}: -s source required\n")
        return 1
    nsubjobs = 0
    if "-n" in o:
        try:
            nsubjobs = int(o["-n"])
        except ValueError:
            nsubjobs = -1
        if nsubjobs < 1:
            err.write(f"{prog}: -n needs a positive number of subjobs, not {o['-n']!r}\n")
            return errno.EINVAL
    if ("-S" in o or "-C" in o) and not nsubjobs:
        err.write(f"{prog}: -S and -C need -n\n")
        return errno.EINVAL

    generated = "-j" not in o
    if generated:
        try:
            server = parse_server(o["-m"])
            job_id = JobId.generate(str(server))
        except (AddressError, LBFormatError):
            err.write(f"{o['-m']}: {strerror(errno.EINVAL)}\n")
            return 1
    else:
        try:
            job_id = JobId.parse(o["-j"])
        except LBFormatError:
            err.write(f"{o['-j']}: {strerror(errno.EINVAL)}\n")
            return 1
    jdl = DEFAULT_JDL
    if "-l" in o:
        try:
            with open(o["-l"], encoding="utf-8", errors="surrogateescape") as f:
                jdl = f.read()
        except OSError as e:
            err.write(f"{o['-l']}: {e.strerror}\n")
            return 1

    if "-P" in o:
        jobtype = RegJobJobtype.PBS
    elif "-c" in o:
        jobtype = RegJobJobtype.CREAM
    elif "-v" in o:
        jobtype = RegJobJobtype.VIRTUAL_MACHINE
    elif nsubjobs and "-C" in o:
        jobtype = RegJobJobtype.COLLECTION
    elif nsubjobs:
        jobtype = RegJobJobtype.DAG
    else:
        jobtype = RegJobJobtype.SIMPLE
    proxy = "-x" in o or "-X" in o
    exclusive = "-E" in o
    where = ("edg_wll_RegisterJobProxy" if proxy else
             "edg_wll_RegisterJobExt" if exclusive else "edg_wll_RegisterJobSync")
    seed = o.get("-e") or None

    if generated:
        out.write(f"new jobid: {job_id}\n")
        out.flush()
    source = Source.from_text(o["-s"])
    if source is None or source == Source.NONE:
        err.write(f"{where}({job_id}): {strerror(errno.EINVAL)} "
                  f"(unknown source {o['-s']!r})\n")
        return 1
    logged, printed = registration_codes(source, pbs=jobtype is RegJobJobtype.PBS)
    priority = int(LogFlag.PROXY if proxy else LogFlag.DIRECT) | (int(LogFlag.EXCL)
                                                                  if exclusive else 0)
    user = o.get("-o") if proxy else None
    if proxy:
        address = Address.unix(o.get("-X") or settings.proxy_store_sock)
    else:
        address = store_address(job_id)
    reg = _regjob(job_id, source, logged, jdl=jdl, jobtype=jobtype, nsubjobs=nsubjobs,
                  seed=seed, parent=None, priority=priority, user=user)
    try:
        _deliver(address, [reg], settings.sync_timeout)
    except ClientError as e:
        err.write(f"{where}({job_id}): {e.text()}\n")
        return 1

    name = {RegJobJobtype.DAG: "EDG_WL_DAG_JOBID",
            RegJobJobtype.COLLECTION: "EDG_WL_COLLECTION_JOBID"}.get(jobtype, "EDG_JOBID")
    subjobs = job_id.subjobs(seed, nsubjobs) if nsubjobs else []
    out.write("\n")
    out.write(f'{name}="{job_id}"\n')
    out.write(f'EDG_WL_SEQUENCE="{printed}"\n')
    for i, sub in enumerate(subjobs):
        out.write(f'EDG_WL_SUB_JOBID[{i}]="{sub}"\n')
    out.flush()
    if "-S" in o:
        regs = [_regjob(sub, source, logged, jdl=f"JDL of subjob #{k}\n",
                        jobtype=RegJobJobtype.SIMPLE, nsubjobs=0, seed=None, parent=job_id,
                        priority=priority & ~int(LogFlag.EXCL), user=user)
                for k, sub in enumerate(subjobs, 1)]
        try:
            _deliver(address, regs, settings.sync_timeout)
        except ClientError as e:
            err.write(f"edg_wll_RegisterSubjobs: {e.text()}\n")
            return 1
    return 0


def console() -> None:
    """The ``glite-lb-job_reg`` console script."""
    run(main)


if __name__ == "__main__":
    console()
