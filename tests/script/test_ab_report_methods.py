"""The report end to end with CUPED, the sequential view, guardrails and weights; `plan`.

The dataset: two days of synthetic logs through the service's contract and the exporter. Each
user listens at a level of their own (the same on both days), so day 1 predicts day 2, as the
pre-period does in the demo; on day 2 T1's per-track time is x1.3 (true effect +30 %).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from script import ab, export
from script.ab.plan import pilot_from_data, plan
from script.fake_logs import START_MS, FakeLogSpec, fake_events, write_logs

DAY_MS = 2 * 86_400_000  # day 2 starts here after START_MS (fake days last about a day)
CONFIG = "config/experiments.yml"


def two_days(users: int = 1500) -> pd.DataFrame:
    arms = ("C", "T1", "T2", "T3", "T4")
    level = np.random.default_rng(1).uniform(0.05, 0.55, users)  # each user's own level
    days = []
    for day, effects in ((0, {}), (1, {"T1": 1.3})):
        events = fake_events(FakeLogSpec(users=users, arms=arms, seed=10 + day))
        noise = np.random.default_rng(20 + day).normal(0, 0.08, len(events))
        factor = events["arm"].map(effects).fillna(1.0).to_numpy()
        events["time"] = np.round(np.clip(level[events["user"]] + noise, 0, 0.7) * factor, 4)
        events["timestamp"] += day * DAY_MS
        days.append(events)
    return pd.concat(days, ignore_index=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-days")
    write_logs(two_days(), root / "logs", "AB")
    export.export([root / "logs"], root / "ds")
    return root / "ds"


def report(dataset, out, *extra) -> dict:
    args = ["--data", str(dataset), "--experiment", "AB", "--out", str(out)]
    assert ab.main([*args, "--since", str(START_MS + DAY_MS), *extra]) == 0
    return json.loads((out / "report.json").read_text())


def effect_of(data: dict, arm: str, metric: str = "mean_time_per_session") -> dict:
    return next(e for e in data["effects"] if e["arm"] == arm and e["metric"] == metric)


def test_cuped_by_default_where_a_pre_period_exists(dataset, tmp_path, capsys):
    data = report(dataset, tmp_path, "--experiments", CONFIG)
    cuped = data["cuped"]
    assert cuped["enabled"] and cuped["pre_until_ms"] == START_MS + DAY_MS
    assert sum(cuped["users_without_pre"].values()) == 0  # every user listened on day 1
    assert cuped["users_with_pre"] == data["users_with_sessions"]
    t1 = effect_of(data, "T1")
    assert t1["method"] == "cuped" and t1["theta"] > 0.5
    assert t1["lower_pct"] < 30 < t1["upper_pct"]  # the true effect
    assert t1["raw_lower_pct"] < 30 < t1["raw_upper_pct"]
    assert t1["ci_narrower_pct"] > 30  # seen: 39
    assert t1["significant_holm"]
    markdown = (tmp_path / "report.md").read_text()
    assert "- CUPED: on, by default where a pre-period exists" in markdown
    assert "## CUPED" in markdown and "| T1 | mean_time_per_session |" in markdown
    assert "- sequential view: off" in markdown
    assert "CUPED: on" in capsys.readouterr().out
    # summaries for others to recompute from: CUPED's sums per arm and metric
    c = data["cuped_summaries"]["C"]["mean_time_per_session"]
    assert set(c) == {"post", "pre", "sum_products", "without_pre", "n"}


def test_guardrails_and_weights_come_from_the_config(dataset, tmp_path):
    data = report(dataset, tmp_path, "--experiments", CONFIG)
    assert data["config"] == CONFIG and data["decision"] == "mean_time_per_session"
    assert data["weights"] == {arm: 0.2 for arm in ("C", "T1", "T2", "T3", "T4")}
    rails = {g["arm"]: g for g in data["guardrails"]}
    assert set(rails) == {"T1", "T2", "T3", "T4"}
    for g in rails.values():  # fake latencies do not depend on the arm
        assert g["metric"] == "mean_request_latency" and g["margin_pct"] == 20
        assert g["verdict"] == "pass" and g["upper_pct"] < 20
    assert "## Guardrails" in (tmp_path / "report.md").read_text()


def test_cuped_off_and_no_pre_period(dataset, tmp_path):
    off = report(dataset, tmp_path / "off", "--cuped", "off")
    assert not off["cuped"]["enabled"] and effect_of(off, "T1")["method"] == "welch"
    assert off["cuped_summaries"] is None
    args = ["--data", str(dataset), "--experiment", "AB", "--out", str(tmp_path / "none")]
    assert ab.main(args) == 0  # no --since: no pre-period, so no CUPED
    data = json.loads((tmp_path / "none" / "report.json").read_text())
    assert not data["cuped"]["enabled"] and "no pre-period" in data["cuped"]["reason"]
    assert ab.main([*args, "--cuped", "on"]) == 1  # asked for, impossible: a data error


def test_the_sequential_view_says_where_each_arm_would_have_stopped(dataset, tmp_path):
    data = report(dataset, tmp_path, "--sequential", "--looks", "12")
    info = data["sequential"]
    assert len(info["looks"]) == 12 and info["tuning"] == 5000
    assert all(e["sequential"] for e in data["effects"])
    stop = info["stops"]["T1"]
    assert stop is not None and stop["direction"] == "up" and stop["look"] > 1  # seen: 3
    assert effect_of(data, "T1")["stop_look"] == stop["look"]
    for arm in ("T2", "T3", "T4"):  # no effect: never stopped
        assert info["stops"][arm] is None and effect_of(data, arm)["stop_look"] is None
    # the stop is the first look whose always-valid interval excludes 0: the report of the
    # window up to that look says significant, the look before (if any) does not
    looks = {look["look"]: look for look in info["looks"]}
    assert looks[stop["look"]]["effects"]["T1"]["significant"]
    assert not looks[stop["look"] - 1]["effects"]["T1"]["significant"]
    until = looks[stop["look"]]["until_ms"]
    again = report(dataset, tmp_path / "again", "--sequential", "--until", str(until))
    assert effect_of(again, "T1")["significant"]
    assert effect_of(again, "T1")["lower_pct"] == pytest.approx(
        looks[stop["look"]]["effects"]["T1"]["lower_pct"]
    )
    # always-valid intervals are wider than the fixed ones on the same data
    fixed = report(dataset, tmp_path / "fixed")
    for arm in ("T1", "T2"):
        width = effect_of(data, arm)["upper_pct"] - effect_of(data, arm)["lower_pct"]
        assert width > effect_of(fixed, arm)["upper_pct"] - effect_of(fixed, arm)["lower_pct"]
    assert (tmp_path / "sequential.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "fixed" / "sequential.png").exists()
    assert "## Sequential view" in (tmp_path / "report.md").read_text()


def test_a_weighted_split_passes_the_sample_ratio_check_only_with_its_weights(tmp_path):
    events = fake_events(
        FakeLogSpec(users=3000, arms=("C", "T1"), weights=(0.9, 0.1), tracks_mean=2, seed=3)
    )
    write_logs(events, tmp_path / "logs", "AB")
    export.export([tmp_path / "logs"], tmp_path / "ds")
    config = tmp_path / "weighted.yml"
    config.write_text(
        "experiments:\n  - name: AB\n    arms:\n"
        "      - {name: C, recommender: sticky_artist, weight: 9}\n"
        "      - {name: T1, recommender: random, weight: 1}\n"
    )
    args = ["--data", str(tmp_path / "ds"), "--experiment", "AB"]
    assert ab.main([*args, "--out", str(tmp_path / "w"), "--experiments", str(config)]) == 0
    assert ab.main([*args, "--out", str(tmp_path / "e")]) == 0
    weighted = json.loads((tmp_path / "w" / "report.json").read_text())
    equal = json.loads((tmp_path / "e" / "report.json").read_text())
    assert not weighted["srm"]["mismatch"] and equal["srm"]["mismatch"]
    assert weighted["weights"] == {"C": 0.9, "T1": 0.1}


def test_plan_from_a_logged_pilot(dataset, capsys):
    pilot = pilot_from_data(dataset, "mean_time_per_session", "AB", "C", START_MS + DAY_MS,
                            cuped=True)  # fmt: skip
    assert pilot.users > 250 and pilot.correlation > 0.7 and pilot.users_with_pre == pilot.users
    fixed = plan(pilot, mde=0.05)
    cuped = plan(pilot, mde=0.05, cuped=True)
    assert cuped.users_per_arm < fixed.users_per_arm / 2  # corr 0.8: 1 - 0.8**2 of the users
    assert plan(pilot, users_per_arm=fixed.users_per_arm).mde == pytest.approx(0.05, rel=2e-3)
    args = ["plan", "--metric", "mean_time_per_session", "--mde", "5", "--data", str(dataset),
            "--experiment", "AB", "--since", str(START_MS + DAY_MS)]  # fmt: skip
    assert ab.main(args) == 0
    out = capsys.readouterr().out
    assert f"users per arm: {fixed.users_per_arm:,}" in out
    assert ab.main([*args, "--cuped", "--arms", "5"]) == 0
    assert f"users in all 5 arms: {5 * plan(pilot, mde=0.05, cuped=True, arms=5).users_per_arm:,}" \
        in capsys.readouterr().out  # fmt: skip
    # a pilot A/B: T1's variance too (its users' time is x1.3, so its spread is larger)
    ab_pilot = pilot_from_data(dataset, "mean_time_per_session", "AB", "C", START_MS + DAY_MS,
                               treatment="T1")  # fmt: skip
    ratio = ab_pilot.variance_ratio()
    assert ratio == pytest.approx((ab_pilot.treatment.sd / ab_pilot.sd) ** 2) and ratio > 1.2
    assert plan(ab_pilot, mde=0.05).users_per_arm > fixed.users_per_arm
    assert ab.main([*args, "--treatment", "T1"]) == 0
    out = capsys.readouterr().out
    assert f"users per arm: {plan(ab_pilot, mde=0.05).users_per_arm:,}" in out
    assert f"variance {ratio:.2f} x the control's (pilot A/B)" in out


def test_plan_usage_errors(dataset, capsys):
    with pytest.raises(SystemExit) as no_pilot:
        ab.main(["plan", "--mde", "5"])
    assert no_pilot.value.code == 2 and "--data DATASET or --world DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as both:
        ab.main(["plan", "--mde", "5", "--users", "100", "--data", str(dataset)])
    assert both.value.code == 2
    bad_metric = ["plan", "--metric", "nope", "--mde", "5", "--data", str(dataset)]
    assert ab.main(bad_metric) == 1 and "unknown metric 'nope'" in capsys.readouterr().err
