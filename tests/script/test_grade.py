"""The course's 2026 grading: ab_result.json in its schema and the reproducibility rule."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from script.ab.grade import COURSE_FIELDS, GradeError, ab_result, check, cli

# The Week-1 notebook's effects dict (2026, Week1SeminarABStickyMixed.ipynb) names effect, lower
# and upper; the grading's ab_result.json names them with a _pct suffix (issue 23).
NOTEBOOK_FIELDS = {"treatment", "metric", "control_mean", "treatment_mean", "effect", "lower",
                   "upper", "significant"}  # fmt: skip


def effect(arm: str, metric: str, pct: float, half: float = 2.0, status: str = "ok") -> dict:
    """An effect as script.ab's report.json writes it (the fields the grading reads, and more)."""
    return {"arm": arm, "metric": metric, "control_users": 100, "treatment_users": 100,
            "control_mean": 2.0, "treatment_mean": 2.0 * (1 + pct / 100), "diff": 0.02 * pct,
            "effect_pct": pct, "lower_pct": pct - half, "upper_pct": pct + half,
            "p_value": 0.01, "significant": True, "p_holm": 0.02, "significant_holm": True,
            "status": status, "message": ""}  # fmt: skip


def report(*effects: dict) -> dict:
    return {"experiment": "HW2026", "control": "C", "effects": list(effects)}


def result(*pairs: tuple[str, float]) -> dict:
    """ab_result of a run with these (treatment, effect on mean_time_per_session) pairs."""
    return ab_result(report(*(effect(arm, "mean_time_per_session", pct) for arm, pct in pairs)))


def test_ab_result_has_the_courses_schema_exactly():
    document = ab_result(report(effect("T1", "mean_time_per_session", 5.0, half=3.0),
                                effect("T1", "time", -1.0, half=3.0),
                                effect("T2", "sessions", 0.0, status="no-variance")))  # fmt: skip
    assert list(document) == ["all_effects"]
    rows = document["all_effects"]
    assert [set(row) for row in rows] == [set(COURSE_FIELDS)] * 2  # the failed one is left out
    renamed = {f.removesuffix("_pct") for f in COURSE_FIELDS}
    assert renamed == NOTEBOOK_FIELDS
    assert rows[0] == {"treatment": "T1", "metric": "mean_time_per_session", "control_mean": 2.0,
                       "treatment_mean": 2.1, "effect_pct": 5.0, "lower_pct": 2.0,
                       "upper_pct": 8.0, "significant": True}  # fmt: skip
    assert rows[1]["significant"] is False  # the interval [-4, +2] holds 0
    json.dumps(document)  # plain JSON types only


def test_two_runs_that_agree_are_accepted_and_the_bound_is_inclusive():
    (v,) = check([result(("T1", 12.0)), result(("T1", 2.0))])
    assert v.same_sign and v.max_diff_pp == pytest.approx(10.0) and v.accepted
    assert v.mean_pct == pytest.approx(7.0) and v.sd_pct == pytest.approx(7.0710678)


@pytest.mark.parametrize(
    ("first", "second", "same_sign", "within"),
    [
        (12.0, 1.9, True, False),  # 10.1 pp apart
        (3.0, -3.0, False, True),  # opposite signs, 6 pp apart
        (0.0, 1.0, False, True),  # no effect is a sign of its own
        (-20.0, 5.0, False, False),
    ],
)
def test_either_rule_failing_rejects(first, second, same_sign, within):
    (v,) = check([result(("T1", first)), result(("T1", second))])
    assert (v.same_sign, v.within_bound, v.accepted) == (same_sign, within, False)


def test_k_runs_compare_every_pair_and_report_the_spread():
    runs = [result(("T1", 4.0), ("T2", -1.0)), result(("T1", 9.0), ("T2", -2.0)),
            result(("T1", 15.0), ("T2", -1.5))]  # fmt: skip
    t1, t2 = check(runs)
    assert (t1.treatment, t1.effects_pct, t1.max_diff_pp) == ("T1", (4.0, 9.0, 15.0), 11.0)
    assert not t1.accepted and t2.accepted
    assert t1.mean_pct == pytest.approx(28 / 3)


def test_the_rule_needs_the_same_treatments_in_every_run():
    with pytest.raises(GradeError, match="T2 / mean_time_per_session: in 1 of 2 runs"):
        check([result(("T1", 1.0), ("T2", 1.0)), result(("T1", 1.0))])
    with pytest.raises(GradeError, match="at least two"):
        check([result(("T1", 1.0))])


def test_only_the_graded_metric_counts_unless_asked():
    runs = [ab_result(report(effect("T1", "mean_time_per_session", 1.0), effect("T1", "time", 1.0))),
            ab_result(report(effect("T1", "mean_time_per_session", 2.0), effect("T1", "time", -9.0)))]  # fmt: skip
    assert [v.metric for v in check(runs)] == ["mean_time_per_session"]
    both = check(runs, metrics=("mean_time_per_session", "time"))
    assert [v.accepted for v in both] == [True, False]


def write_report(folder, *effects: dict):
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report(*effects)))
    return folder


def test_the_commands_write_the_files_and_exit_by_the_verdict(tmp_path):
    a = write_report(tmp_path / "a", effect("T1", "mean_time_per_session", 6.0))
    b = write_report(tmp_path / "b", effect("T1", "mean_time_per_session", 8.0))
    c = write_report(tmp_path / "c", effect("T1", "mean_time_per_session", -8.0))
    runner = CliRunner()
    done = runner.invoke(cli, ["result", "--report", str(a)])
    assert done.exit_code == 0, done.output
    assert json.loads((a / "ab_result.json").read_text()) == ab_result(report(
        effect("T1", "mean_time_per_session", 6.0)))  # fmt: skip
    accepted = runner.invoke(cli, ["check", "--report", str(a), "--report", str(b), "--out",
                                   str(tmp_path / "ok")])  # fmt: skip
    assert accepted.exit_code == 0 and "ACCEPTED" in accepted.output
    saved = json.loads((tmp_path / "ok" / "reproducibility.json").read_text())
    assert saved["accepted"] is True and saved["verdicts"][0]["effects_pct"] == [6.0, 8.0]
    assert json.loads((tmp_path / "ok" / "ab_result.json").read_text())["all_effects"][0][
        "effect_pct"] == 6.0  # fmt: skip
    rejected = runner.invoke(cli, ["check", "--report", str(a), "--report", str(c), "--out",
                                   str(tmp_path / "no")])  # fmt: skip
    assert rejected.exit_code == 1 and "NOT ACCEPTED" in rejected.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.json").write_text("{")
    failed = runner.invoke(cli, ["result", "--report", str(broken)])
    assert failed.exit_code == 1 and "not a readable report.json" in failed.output


def test_a_real_reports_effects_become_the_courses_rows(tmp_path):
    """From logs through script.export and script.ab's report to ab_result.json: every computed
    comparison appears once, with the report's numbers under the course's names."""
    from script import ab, export
    from script.fake_logs import FakeLogSpec, fake_events, write_logs

    events = fake_events(FakeLogSpec(users=600, arms=("C", "T1"), effects={"T1": 1.3}, seed=3))
    write_logs(events, tmp_path / "logs", "AB")
    export.export([tmp_path / "logs"], tmp_path / "ds")
    out = tmp_path / "report"
    assert ab.main(["--data", str(tmp_path / "ds"), "--experiment", "AB", "--out", str(out)]) == 0
    assert CliRunner().invoke(cli, ["result", "--report", str(out)]).exit_code == 0
    rows = json.loads((out / "ab_result.json").read_text())["all_effects"]
    effects = json.loads((out / "report.json").read_text())["effects"]
    assert len(rows) == len(effects) == len(ab.METRICS)
    for row, e in zip(rows, effects, strict=True):
        assert (row["treatment"], row["metric"]) == (e["arm"], e["metric"])
        assert row["effect_pct"] == e["effect_pct"] and row["lower_pct"] == e["lower_pct"]
        assert row["significant"] == e["significant"]  # the interval and the test agree
    time = next(r for r in rows if r["metric"] == "mean_time_per_session")
    assert time["lower_pct"] < 30.0 < time["upper_pct"]  # the injected +30 % per track
