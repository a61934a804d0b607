"""What the loop measures, defined once: the course's user-level metrics of sessions
(`measure.metrics`), the statistics they are compared with (`measure.stats`: summaries, Welch,
Holm, sample ratio) and the ceiling file (`measure.ceiling`).

The bottom layer beside `botify` (docs/architecture.md): it imports nothing of the project, and
the simulator (calibration, the ceiling) and the A/B report (`script.ab`) both import it, so they
measure alike without the simulator depending on the report.
"""
