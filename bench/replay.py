"""Throughput of the event core on one core: ULM parsing, and parsing + acceptance + state machines.

The input is the real WMS event streams of ``shared/data/ulm`` (see its README),
replayed as many distinct jobs: every copy of a template gets fresh job ids (and,
for collections, the subjob ids derived from the fresh parent id), so the job
table grows as it would on a server. Lines without ``DG.USER`` get a fixed user.
Events of a template without job ids all belong to that template's job.

Usage: ``.venv/bin/python bench/replay.py [--events N] [--shared DIR] [--profile]``

Prints events/s and jobs/s for both measurements, with the mix used.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lbtx import ulm  # noqa: E402
from lbtx.acceptance import Delivery, MemoryJobTable, accept  # noqa: E402
from lbtx.jobid import JobId  # noqa: E402

DEFAULT_USER = "/DC=org/DC=example/CN=Bench User"
SERVER = "lb.example.org:9000"

#: (registration file, event file, copies per round): the big-DAG streams are
#: megabytes per event, so they are included once rather than every round.
TEMPLATES = [
    ("perf_simple_avg_events.reg.log", "perf_simple_avg_events.log", 1),
    ("perf_simple_max_events.reg.log", "perf_simple_max_events.log", 1),
    ("perf_dag_avg_events.reg.log", "perf_dag_avg_events.log", 1),
    ("perf_dag_avg_subjobs.reg.log", "perf_dag_avg_subjobs.log", 1),
    ("perf_collection_avg_events.reg.log", "perf_collection_avg_events.log", 1),
    ("perf_dag_max_subjobs.reg.log", "perf_dag_max_subjobs.log", 0),
    ("perf_dag_max_events.reg.log", None, 0),
]

_JOBID_RE = re.compile(r'(DG\.JOBID|DG\.REGJOB\.PARENT)="(https://[^"]*)"')
_SEED_RE = re.compile(r'DG\.REGJOB\.SEED="([^"]*)"')
_NSUB_RE = re.compile(r'DG\.REGJOB\.NSUBJOBS="(\d+)"')


class Template:
    """One recorded job (with its subjobs), ready to be stamped with fresh ids."""

    def __init__(self, directory: Path, reg: str, events: str | None):
        lines = []
        for name in (reg, events):
            if name:
                text = (directory / name).read_text(encoding="utf-8", errors="surrogateescape")
                lines += [ln if ln.endswith("\n") else ln + "\n" for ln in text.splitlines()
                          if ln.strip()]
        # Registrations of a template: keep the first RegJob without a parent (the
        # job itself) and the subjob registrations; repeated identical ones are kept
        # as the recording has them (they are processed as ordinary events).
        self.name = events or reg
        self.lines = lines
        self.original_ids = sorted({m.group(2) for ln in lines for m in _JOBID_RE.finditer(ln)
                                    if m.group(1) == "DG.JOBID"})

    def stamp(self) -> list[str]:
        """The template's lines with fresh job ids and a user where missing."""
        mapping: dict[str, str] = {}
        main = JobId.generate(SERVER)
        # A recorded parent and its derived subjob ids map to the fresh parent's.
        for ln in self.lines:
            if 'DG.EVNT="RegJob"' in ln and 'DG.REGJOB.PARENT=""' in ln:
                m = _JOBID_RE.search(ln)
                seed = _SEED_RE.search(ln)
                nsub = _NSUB_RE.search(ln)
                if m and m.group(1) == "DG.JOBID" and m.group(2) not in mapping:
                    old = JobId.parse(m.group(2))
                    mapping[str(old)] = str(main)
                    n = int(nsub.group(1)) if nsub else 0
                    s = seed.group(1) if seed else None
                    for old_sub, new_sub in zip(old.subjobs(s, n), main.subjobs(s, n)):
                        mapping[str(old_sub)] = str(new_sub)
                break
        for old in self.original_ids:
            mapping.setdefault(old, str(JobId.generate(SERVER)))
        out = []
        for ln in self.lines:
            ln = _JOBID_RE.sub(lambda m: f'{m.group(1)}="{mapping.get(m.group(2), m.group(2))}"', ln)
            if "DG.JOBID=" not in ln:
                ln = ln.replace(" DG.EVNT=", f' DG.JOBID="{main}" DG.EVNT=', 1)
            if "DG.USER=" not in ln:
                ln = ln.replace(" DG.EVNT=", f' DG.USER="{DEFAULT_USER}" DG.EVNT=', 1)
            out.append(ln)
        return out


def build_mix(directory: Path, target: int) -> tuple[list[str], dict[str, int]]:
    templates = [(Template(directory, r, e), c) for r, e, c in TEMPLATES]
    lines: list[str] = []
    used: dict[str, int] = {}
    for t, copies in templates:
        if copies == 0:
            lines += t.stamp()
            used[t.name] = 1
    while len(lines) < target:
        for t, copies in templates:
            for _ in range(copies):
                lines += t.stamp()
                used[t.name] = used.get(t.name, 0) + 1
    return lines, used


def measure_parse(lines: list[str]) -> float:
    parse = ulm.parse
    gc.collect()
    t0 = time.process_time()
    for ln in lines:
        parse(ln, require_user=True)
    return time.process_time() - t0


def measure_states(lines: list[str]) -> tuple[float, MemoryJobTable, dict]:
    parse = ulm.parse
    table = MemoryJobTable(keep_events=False)
    deliveries: dict[Delivery, int] = {}
    gc.collect()
    t0 = time.process_time()
    for ln in lines:
        outcome = accept(table, parse(ln, require_user=True))
        deliveries[outcome.delivery] = deliveries.get(outcome.delivery, 0) + 1
    return time.process_time() - t0, table, deliveries


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="events in the mix (minimum)")
    p.add_argument("--shared", default=os.environ.get("LBTX_SHARED", str(here.parent / "shared")))
    p.add_argument("--profile", action="store_true", help="profile the stateful run")
    args = p.parse_args(argv)
    directory = Path(args.shared) / "data" / "ulm"
    lines, used = build_mix(directory, args.events)
    size = sum(len(ln) for ln in lines)
    print(f"mix: {len(lines)} events, {size / 1e6:.1f} MB of ULM; template copies: "
          + ", ".join(f"{k}={v}" for k, v in used.items()))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    t_parse = measure_parse(lines)
    print(f"parse only:           {len(lines) / t_parse:10.0f} events/s "
          f"({size / t_parse / 1e6:.1f} MB/s, {t_parse:.2f} s CPU)")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
    t_state, table, deliveries = measure_states(lines)
    if args.profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    jobs = len(table.jobs)
    print(f"parse + states:       {len(lines) / t_state:10.0f} events/s, {jobs / t_state:8.0f} jobs/s "
          f"({jobs} jobs, {t_state:.2f} s CPU)")
    print("deliveries: " + ", ".join(f"{d.value}={n}" for d, n in deliveries.items()))
    print(f"that is {len(lines) / t_state * 86400 / 1e6:.0f} million events/day on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
