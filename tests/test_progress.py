"""Progress events: a whole job's progress and its ETA."""

from __future__ import annotations

import pytest

from ocikit.progress import JobProgress


@pytest.mark.parametrize("event,eta", [
    (JobProgress(0, 10, 0, 1000, 5.0), None),              # nothing done yet: no rate
    (JobProgress(2, 10, 250, 1000, 5.0), 15.0),            # bytes decide: 250 B in 5 s, 750 B left
    (JobProgress(5, 10, 0, 0, 4.0), 4.0),                  # nothing to move (all there): images decide
    (JobProgress(10, 10, 1000, 1000, 9.0), 0.0),
    (JobProgress(1, 10, 10, 1000, 0.0), None),             # no time elapsed
])
def test_job_progress_eta(event, eta):
    assert event.eta() == eta
