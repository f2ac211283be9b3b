"""Golden scenarios P01–P09 (single WMS jobs) run directly through the gLite machine.

Each scenario event is built as an event object and applied with
``MACHINE.apply`` (:func:`machine_support.replay`), without the acceptance layer:
the single-job scenarios need none of it, except that ChangeACL is handled by
the ACL store (the machine gives it no status effect) and that the first RegJob's
sender becomes the owner. P10/P11 need acceptance (subjobs, histograms) and run in
``test_scenarios.py`` only.
"""

from __future__ import annotations

import pytest

from conftest import SCENARIOS
from machine_support import replay
from lbtx.machines.glite import MACHINE

SINGLE_JOB = sorted(p for p in SCENARIOS.glob("P0*.json"))


def test_single_job_scenarios_present():
    assert [p.name[:3] for p in SINGLE_JOB] == [f"P0{i}" for i in range(1, 10)]


@pytest.mark.parametrize("path", SINGLE_JOB, ids=lambda p: p.stem)
def test_scenario_through_the_machine(path):
    assert replay(path, MACHINE) == []
