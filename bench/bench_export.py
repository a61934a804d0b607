"""Export and A/B report at the seed's scale (2.9 M events), each next to its notebook-style peer.

    .venv/bin/python bench/bench_export.py [--events 2923898] [--users 10000] [--work data/bench]

Generates synthetic logs once (cached under --work), then times:
  export      python -m script.export on all files into a fresh dataset
  re-export   the same again into that dataset (idempotent: adds nothing)
  report      python -m script.ab on the dataset (all outputs written)
and, as peers measured on a slice (their full-size run would take minutes): reading lines with
``pandas.read_json(lines=True)`` as the course notebook did, our per-line slow path alone, and
the notebook's row-by-row sessionize. Rates are events per second.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from anywhere

from script import ab, export  # noqa: E402
from script.ab.notebook import notebook_user_metrics  # noqa: E402
from script.event_parser import _parse_slowly  # noqa: E402
from script.fake_logs import FakeLogSpec, fake_events, write_logs  # noqa: E402


def timed(label: str, func, events: int) -> float:
    started = time.perf_counter()
    func()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:8.2f} s  {events / seconds:>12,.0f} events/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_923_898)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--slice", type=int, default=200_000, help="events for the peers")
    parser.add_argument("--work", type=Path, default=Path("data/bench"))
    args = parser.parse_args()

    logs = args.work / f"logs-{args.events}"
    if not logs.exists():
        started = time.perf_counter()
        spec = FakeLogSpec(
            users=args.users,
            arms=("C", "T1", "T2", "T3"),
            effects={"T1": 1.4, "T2": 1.4, "T3": 1.04},
            sessions_mean=args.events / args.users / 8.0,
            seed=1,
        )
        events = fake_events(spec)
        write_logs(events, logs, "AB", lines_per_file=200_000)
        print(f"generated {len(events):,} events in {time.perf_counter() - started:.1f} s")
        del events
    files = export.find_log_files([logs])
    size = sum(p.stat().st_size for p in files)
    n_lines = sum(p.read_bytes().count(b"\n") for p in files)
    print(f"{n_lines:,} lines, {len(files)} files, {size / 2**20:,.0f} MiB")

    dataset, report_dir = args.work / "dataset", args.work / "report"
    shutil.rmtree(dataset, ignore_errors=True)
    t_export = timed("export (fresh dataset)", lambda: export.export([logs], dataset), n_lines)
    timed("re-export (idempotent, adds nothing)", lambda: export.export([logs], dataset), n_lines)
    t_report = timed(
        "A/B report (load, sessions, stats, files)",
        lambda: ab.write_report(ab.build_report(dataset, "AB"), report_dir),
        n_lines,
    )

    head = files[0]
    with open(head, "rb") as handle:
        lines = list(itertools.islice(handle, args.slice))
    n = len(lines)
    chunk = b"".join(lines)
    print(f"\npeers on a slice of {n:,} lines ({head.name}):")
    t_ours = timed("  ours, fast path (pyarrow + checks)", lambda: export.parse_chunk(chunk), n)
    timed("  ours, per-line path only (json.loads)", lambda: _parse_slowly(lines, "x", 1), n)
    t_pandas = timed("  pandas.read_json(lines=True) (notebook)", lambda: _read_json(head, n), n)
    print(f"  fast path vs pandas.read_json: {t_pandas / t_ours:.1f}x faster")

    frame = pd.read_parquet(dataset)
    small = frame[frame["user"] < frame["user"].min() + max(1, args.users // 100)]
    small = small.rename(columns={"exp_AB": "arm"})
    m = len(small)
    t_nb = timed(
        "  notebook sessionize (iterrows), 1% users", lambda: notebook_user_metrics(small), m
    )
    t_vec = timed("  ours, user_metrics, same users", lambda: ab.user_metrics(small), m)
    print(f"  vectorized sessions vs notebook: {t_nb / t_vec:.0f}x faster")
    print(f"\nSUMMARY export {t_export:.2f} s, report {t_report:.2f} s for {n_lines:,} events")


def _read_json(path: Path, n: int) -> None:
    with open(path, "rb") as handle:
        pd.read_json(handle, lines=True, nrows=n)


if __name__ == "__main__":
    main()
