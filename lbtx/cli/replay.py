"""``lbtx replay [--json] [--trace] FILE...``: derive job states from event files.

Reads ULM files (``-`` is standard input) in order, feeds every event through the
server's acceptance rules and state machines, and prints the final status of
every job: a table, or with ``--json`` one JSON object per line. ``--trace``
prints every step instead (with ``--json``, one JSON object per event, generated
events flagged). Bad lines are reported on standard error with file and line and
skipped; the exit status is then 1.
"""

from __future__ import annotations

import json
import sys

from lbtx.acceptance import Delivery
from lbtx.replay import Replay, Step
from lbtx.status import to_json


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="derive job states from ULM event files",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--json", action="store_true", help="print JSON, one object per line")
    p.add_argument("--trace", action="store_true", help="print every step, not only final states")
    p.add_argument("files", nargs="+", metavar="FILE", help="ULM files, '-' for standard input")
    p.set_defaults(run=run)


def run(args) -> int:
    replay = Replay()
    out = sys.stdout
    steps = _steps(replay, args.files)
    if args.trace:
        for step in steps:
            if args.json:
                for line in trace_records(step):
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
            else:
                out.write(explain(step) + "\n")
    else:
        for _ in steps:
            pass
        if args.json:
            for rec in replay.jobs():
                out.write(json.dumps(to_json(rec.status), ensure_ascii=False) + "\n")
        else:
            out.write(table(replay))
    for bad in replay.bad:
        print(f"lbtx replay: {bad}", file=sys.stderr)
    if replay.bad:
        print(f"lbtx replay: {len(replay.bad)} bad line(s) skipped", file=sys.stderr)
        return 1
    return 0


def _steps(replay: Replay, files):
    for path in files:
        if path == "-":
            yield from replay.feed_stream(sys.stdin, "<stdin>")
        else:
            try:
                with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
                    yield from replay.feed_stream(f, path)
            except OSError as e:
                print(f"lbtx replay: cannot read {path}: {e.strerror}", file=sys.stderr)
                raise SystemExit(2)


def trace_records(step: Step) -> list[dict]:
    """The JSON lines of one step: the input event, then each generated event."""
    lines = []
    outcome = step.outcome
    applied = outcome.applied or []
    first = {
        "step": step.number,
        "jobid": str(step.event.job_id),
        "event": step.event.type_name,
        "delivery": outcome.delivery.value,
        "statuses": {},
    }
    if applied:
        first["statuses"] = {str(j): to_json(s) for j, s in applied[0].statuses.items()}
    lines.append(first)
    for a in applied[1:]:
        lines.append({
            "step": step.number,
            "jobid": str(a.event.job_id),
            "event": a.event.type_name,
            "delivery": "stored",
            "generated": True,
            "source": a.event.source.text,
            "seqcode": a.event.seqcode,
            "attrs": event_attrs_json(a.event),
            "statuses": {str(j): to_json(s) for j, s in a.statuses.items()},
        })
    return lines


def event_attrs_json(ev) -> dict:
    """An event's own attributes as JSON values (enumerations by name, ids as text)."""
    out = {}
    for spec in ev.attr_specs:
        v = getattr(ev, spec.py_name)
        if spec.type == "logsrc":
            v = v.text
        elif hasattr(v, "name") and hasattr(v, "text"):
            v = v.name
        elif hasattr(v, "to_iso"):
            v = v.to_iso() if v.sec or v.usec else None
        elif v is not None and not isinstance(v, (str, int, float, tuple)):
            v = str(v)
        elif isinstance(v, tuple):
            v = dict(v)
        out[spec.name] = v
    return out


def explain(step: Step) -> str:
    """A step in words: what arrived, what became of it, what it changed."""
    ev = step.event
    head = (f"step {step.number}: {ev.type_name} from {ev.source.text} "
            f"(seq {ev.seqcode or '-'}) for {ev.job_id}: {step.outcome.delivery.value}")
    if step.outcome.delivery is not Delivery.STORED:
        head += f", {step.outcome.reason}"
    parts = [head]
    for a in step.outcome.applied:
        prefix = f"  generated {a.event.type_name}: " if a.generated else "  "
        if not a.statuses:
            parts.append(prefix + "no status change (the event only edits the ACL)")
        for job_id, st in a.statuses.items():
            old = a.before.get(job_id)
            if old is None:
                parts.append(f"{prefix}{job_id} created in state {st.state.text}")
                continue
            changed = [n for n in st.public_changes(old) if n not in _TIME_FIELDS]
            if old.state != st.state:
                what = f"{job_id} {old.state.text} -> {st.state.text}"
            else:
                what = f"{job_id} stays {st.state.text}"
            if changed:
                what += "; changed " + ", ".join(changed)
            elif old.state == st.state:
                what += "; nothing changed (a late, ignored or invalid event for this job)"
            parts.append(prefix + what)
    return "\n".join(parts)


_TIME_FIELDS = frozenset({"state", "state_enter_time", "state_enter_times", "last_update_time"})


def table(replay: Replay) -> str:
    rows = [("JOBID", "TYPE", "STATE", "DONE", "LOCATION", "LAST UPDATE")]
    for rec in replay.jobs():
        st = rec.status
        rows.append((
            str(rec.job_id),
            st.jobtype.name if st.jobtype is not None else "-",
            st.state.text,
            st.done_code.name if st.done_code is not None else "-",
            st.location or "-",
            st.last_update_time.to_iso() if st.last_update_time.sec else "-",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    return "\n".join(lines) + "\n"



