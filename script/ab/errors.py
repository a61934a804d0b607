"""The one exception of the A/B report.

    ReportError   the input cannot make a report: no dataset, no events, unknown experiment or
                  control arm, an unreadable ceiling file or day report (the CLI exits 1)

Everything else that can go wrong with a single comparison (too few users, no variance, a
non-finite metric, a zero control mean) is not an exception: the comparison carries a status code
and a message, and the report is still written (see `script.ab.compare.Effect`).
"""

from __future__ import annotations


class ReportError(Exception):
    """The report cannot be made from this input (CLI exit code 1)."""
