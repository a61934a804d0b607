"""The report's reference column: someone else's effect beside ours, with a verdict."""

from __future__ import annotations

import json

import pytest

from script.ab.compare import Effect
from script.ab.errors import ReportError
from script.ab.reference import Reference, against_reference, load_reference
from script.ab.render import reference_table


def effect(arm: str, pct: float, low: float, high: float) -> Effect:
    return Effect(arm, "mean_time_per_session", 100, 100, effect_pct=pct, lower_pct=low,
                  upper_pct=high)  # fmt: skip


def test_the_verdict_is_the_point_inside_our_interval_bounds_included():
    ours = [effect("T1", 30.0, 25.0, 40.6), effect("T2", 30.0, 25.0, 35.0)]
    rows = against_reference(Reference("seed", "mean_time_per_session", {
        "T1": 40.6, "T2": 42.7, "T3": 4.0}), ours)  # fmt: skip
    assert [(r.arm, r.inside) for r in rows] == [("T1", True), ("T2", False), ("T3", None)]
    table = reference_table(rows, "seed")
    assert table[0] == ["arm", "metric", "ours", "seed", "seed inside our interval"]
    assert table[1] == ["T1", "mean_time_per_session", "+30.0 % [+25.0, +40.6]", "+40.6 %", "yes"]
    assert table[2][-1] == "no" and table[3][2:] == ["n/a", "+4.0 %", "n/a"]


def test_a_bad_reference_file_is_a_report_error(tmp_path):
    good = tmp_path / "seed.json"
    good.write_text(json.dumps({"label": "seed", "metric": "m", "effects": {"T1": "40.6"}}))
    assert load_reference(good) == Reference("seed", "m", {"T1": 40.6})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"label": "seed", "effects": {"T1": 1}}))  # no metric
    with pytest.raises(ReportError, match="cannot read the reference file"):
        load_reference(bad)
