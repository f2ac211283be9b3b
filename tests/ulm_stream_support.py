"""Jobs from the real WMS event streams of ``shared/data/ulm`` (see its README), for
tests that need many realistic jobs.

Most recorded files carry no ``DG.JOBID``: as the original test driver did, every
copy of a template gets fresh job ids (a recorded parent and the subjob ids derived
from it map to a fresh parent and its derived subjobs), and events without a job
id belong to the template's job. Lines without ``DG.USER`` get :data:`USER`.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ULM_DATA
from lbtx.jobid import JobId

__all__ = ["USER", "Template", "TEMPLATES", "copies"]

USER = "/DC=org/DC=example/CN=Stream User"

#: (registration file, event file): the small and average recorded jobs (the
#: big-DAG streams are megabytes per event and add nothing here)
TEMPLATES = [
    ("perf_simple_avg_events.reg.log", "perf_simple_avg_events.log"),
    ("perf_simple_max_events.reg.log", "perf_simple_max_events.log"),
    ("perf_dag_avg_events.reg.log", "perf_dag_avg_events.log"),
    ("perf_dag_avg_subjobs.reg.log", "perf_dag_avg_subjobs.log"),
    ("perf_collection_avg_events.reg.log", "perf_collection_avg_events.log"),
]

_JOBID_RE = re.compile(r'(DG\.JOBID|DG\.REGJOB\.PARENT)="(https://[^"]*)"')
_SEED_RE = re.compile(r'DG\.REGJOB\.SEED="([^"]*)"')
_NSUB_RE = re.compile(r'DG\.REGJOB\.NSUBJOBS="(\d+)"')


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    return [ln + "\n" for ln in text.splitlines() if ln.strip()]


class Template:
    """One recorded job (with its subjobs), stamped with fresh ids by :meth:`stamp`."""

    def __init__(self, reg: str, events: str, directory: Path = ULM_DATA):
        self.name = events
        self.lines = _lines(directory / reg) + _lines(directory / events)
        self._ids = sorted({m.group(2) for ln in self.lines for m in _JOBID_RE.finditer(ln)
                            if m.group(1) == "DG.JOBID"})

    def stamp(self, server: str) -> list[str]:
        """The template's lines with fresh job ids on ``server`` (``host:port``)."""
        main = JobId.generate(server)
        mapping: dict[str, str] = {}
        for ln in self.lines:
            if 'DG.EVNT="RegJob"' in ln and 'DG.REGJOB.PARENT=""' in ln:
                m = _JOBID_RE.search(ln)
                if m and m.group(1) == "DG.JOBID":
                    old = JobId.parse(m.group(2))
                    mapping[str(old)] = str(main)
                    seed, nsub = _SEED_RE.search(ln), _NSUB_RE.search(ln)
                    n = int(nsub.group(1)) if nsub else 0
                    s = seed.group(1) if seed else None
                    for old_sub, new_sub in zip(old.subjobs(s, n), main.subjobs(s, n)):
                        mapping[str(old_sub)] = str(new_sub)
                break
        for old in self._ids:
            mapping.setdefault(old, str(JobId.generate(server)))
        out = []
        for ln in self.lines:
            ln = _JOBID_RE.sub(lambda m: f'{m.group(1)}="{mapping.get(m.group(2), m.group(2))}"',
                               ln)
            if "DG.JOBID=" not in ln:
                ln = ln.replace(" DG.EVNT=", f' DG.JOBID="{main}" DG.EVNT=', 1)
            if "DG.USER=" not in ln:
                ln = ln.replace(" DG.EVNT=", f' DG.USER="{USER}" DG.EVNT=', 1)
            out.append(ln)
        return out


def copies(server: str, count: int = 1) -> list[list[str]]:
    """``count`` stamped copies of every template: one list of lines per job family."""
    templates = [Template(reg, events) for reg, events in TEMPLATES]
    return [t.stamp(server) for _ in range(count) for t in templates]
