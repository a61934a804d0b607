"""More fuzzing than `make test` does: the same Schemathesis run against the real local stack
(tests/fuzz/test_fuzz.py: nginx, 2 replicas, Redis; through nginx and straight to a replica),
with more cases per operation and a fresh random seed, and the numbers it found.

    python bench/bench_fuzz.py [--cases 1000] [--seed N]

It runs the test module in a child pytest (the suite's fixtures and harness, unchanged) with
BOTIFY_FUZZ_CASES, BOTIFY_FUZZ_SEED and BOTIFY_FUZZ_REPORT, then prints one line per target:
requests, seconds, requests/s, server errors, answers breaking the document, other failures,
acknowledged steps, event lines, lost, unexpected and invalid lines; and, last, one JSON object
with both. Exit status 1 when anything was found (the failures are in pytest's output above).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="positive and negative, each")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="botify-fuzz-") as tmp:
        report = Path(tmp) / "report.jsonl"
        env = {
            **os.environ,
            "BOTIFY_FUZZ_CASES": str(args.cases),
            "BOTIFY_FUZZ_SEED": str(seed),
            "BOTIFY_FUZZ_REPORT": str(report),
        }
        print(f"fuzzing with {args.cases} + {args.cases} cases per operation, seed {seed}")
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/fuzz/test_fuzz.py", "-p", "no:cacheprovider",
             "-q", "-x"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        rows = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    for row in rows:
        rate = row["requests"] / max(row["seconds"], 1e-9)
        print(
            f"{row['target']:8} {row['requests']:6} requests in {row['seconds']:6.1f} s "
            f"({rate:5.0f}/s): server errors {row['server_errors']}, breaking the document "
            f"{row['breaking_the_document']}, other failures {row['other_failures']}; "
            f"{row['acknowledged_steps']} steps acknowledged, {row['event_lines']} lines logged, "
            f"lost {row['lost_lines']}, unexpected {row['unexpected_lines']}, invalid "
            f"{row['invalid_lines']}"
        )
    print(json.dumps({"seed": seed, "cases": args.cases, "targets": rows}))
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
