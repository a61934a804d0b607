"""Turn pulled event logs into one validated, de-duplicated Parquet dataset.

    python -m script.export SRC [SRC ...] --out DATASET

SRC are log folders or files. Folders are searched recursively for the service's log files
(`botify.logfiles`: `events-<pid>.jsonl` and its rotated parts `events-<pid>.jsonl.<k>`); a file
named on the command line is read whatever its name (for example the course's `data.json`).
One log's parts are read oldest first: `.1`, `.2`, ..., then the live file (the order
`botify.logfiles` defines and `botify.event_log.EventLog` writes).

DATASET is a directory holding ``events.parquet`` (what ``pandas.read_parquet(DATASET)`` reads),
``_quarantine/bad_lines.jsonl`` (every rejected line with its source, line number and reason) and
``_export.json`` (the last run's summary). Files whose names start with ``_`` are skipped by
pyarrow's dataset reader, so they never mix in.

Re-running is idempotent: the new lines are merged with the dataset already there, and a row
identical to one already present adds nothing (so one pull plus a later, bigger pull of the same
files gives each event once). Bad lines are never fatal; exit code 1 only when nothing at all
could be read (no log files, or no valid line and no existing dataset).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from botify import logfiles
from botify.event_schema import EXPERIMENT_PREFIX
from script.event_parser import BadLine, conform, empty_table, experiment_columns, parse_chunk

DATA_FILE = "events.parquet"
QUARANTINE = Path("_quarantine") / "bad_lines.jsonl"
SUMMARY_FILE = "_export.json"
CHUNK_BYTES = 32 << 20


class ExportError(Exception):
    """Nothing usable to export (reported by the CLI with exit code 1)."""


@dataclass
class ExportSummary:
    files: int = 0
    lines_valid: int = 0
    bad_lines: int = 0
    bad_reasons: dict[str, int] = field(default_factory=dict)
    slow_chunks: int = 0
    events_added: int = 0
    duplicates: int = 0
    events: int = 0
    users: int = 0
    sessions: int = 0
    arms: dict[str, dict[str, int]] = field(default_factory=dict)
    first_event: str | None = None
    last_event: str | None = None
    seconds: float = 0.0

    def render(self) -> str:
        lines = [
            f"files read      {self.files}",
            f"valid lines     {self.lines_valid:,} ({self.events_added:,} new, "
            f"{self.duplicates:,} duplicates skipped)",
            f"bad lines       {self.bad_lines:,}"
            + "".join(f"\n  {count:>8,}  {reason}" for reason, count in self.bad_reasons.items()),
            f"dataset events  {self.events:,}",
            f"users           {self.users:,}",
            f"sessions        {self.sessions:,} (completed: ended by a 'last' event)",
            f"time span       {self.first_event} .. {self.last_event}",
        ]
        for experiment, arms in self.arms.items():
            counts = ", ".join(f"{arm}={count:,}" for arm, count in arms.items())
            lines.append(f"events per arm  {experiment}: {counts}")
        lines.append(f"took            {self.seconds:.2f} s")
        return "\n".join(lines)


def find_log_files(sources: list[Path]) -> list[Path]:
    """The files to read, each log's parts oldest first (`botify.logfiles.order_key`).

    A folder contributes the log files under it (by the log naming); a file is taken as named.
    """
    found: set[Path] = set()
    for source in sources:
        if source.is_file():
            found.add(source)
        elif source.is_dir():
            found.update(
                p
                for p in source.rglob(logfiles.GLOB)
                if p.is_file() and logfiles.is_log_file(p.name)
            )
        else:
            raise ExportError(f"no such file or directory: {source}")
    return sorted(found, key=logfiles.order_key)


def iter_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES):
    """(bytes of whole lines, number of its first line); a last unterminated line comes too."""
    line = 1
    rest = b""
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            chunk, rest = block[:cut], block[cut:]
            yield chunk, line
            line += chunk.count(b"\n")
    if rest:
        yield rest, line


def read_logs(paths: list[Path], chunk_bytes: int = CHUNK_BYTES):
    """All valid events of the files, in file order, and every bad line."""
    tables: list[pa.Table] = []
    bad: list[BadLine] = []
    slow = 0
    for path in paths:
        for chunk, first_line in iter_chunks(path, chunk_bytes):
            parsed = parse_chunk(chunk, str(path), first_line)
            tables.append(parsed.table)
            bad.extend(parsed.bad)
            slow += not parsed.fast
    table = concat(tables) if tables else empty_table()
    return table, bad, slow


def concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate, filling experiment columns a table lacks with nulls."""
    names = sorted({name for t in tables for name in experiment_columns(t.schema)})
    filled = []
    for t in tables:
        for name in names:
            if name not in t.schema.names:
                t = t.append_column(name, pa.nulls(t.num_rows, pa.string()))
        filled.append(conform(t))
    return pa.concat_tables(filled)


def read_dataset(out: Path) -> pa.Table:
    path = out / DATA_FILE
    return conform(pq.read_table(path)) if path.exists() else empty_table()


def drop_duplicates(table: pa.Table) -> pa.Table:
    """Keep the first of identical rows; rows keep their order."""
    if table.num_rows == 0:
        return table
    indexed = table.append_column("__row", pa.array(np.arange(table.num_rows)))
    keys = list(table.schema.names)
    first = indexed.group_by(keys).aggregate([("__row", "min")])
    keep = np.sort(first["__row_min"].to_numpy())
    return table.take(pa.array(keep))


def order_by_time(table: pa.Table) -> pa.Table:
    """Stable sort by timestamp: ties keep file order (a worker writes its lines in order)."""
    order = np.argsort(table["timestamp"].to_numpy(), kind="stable")
    return table.take(pa.array(order))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def summarize(table: pa.Table, summary: ExportSummary) -> None:
    summary.events = table.num_rows
    if table.num_rows == 0:
        return
    summary.users = len(np.unique(table["user"].to_numpy()))
    summary.sessions = int(
        np.count_nonzero(table["message"].to_numpy(zero_copy_only=False) == "last")
    )
    timestamps = table["timestamp"].to_numpy()
    summary.first_event, summary.last_event = _iso(timestamps.min()), _iso(timestamps.max())
    for name in experiment_columns(table.schema):
        counts = table[name].value_counts()
        arms = {
            str(arm) if arm is not None else "(not logged)": int(count)
            for arm, count in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            )
        }
        summary.arms[name.removeprefix(EXPERIMENT_PREFIX)] = dict(sorted(arms.items()))


def _write_quarantine(out: Path, bad: list[BadLine]) -> None:
    """Append the bad lines not already quarantined (keyed by text and reason)."""
    path = out / QUARANTINE
    seen: set[tuple[str, str]] = set()
    if path.exists():
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                seen.add((record["raw"], record["reason"]))
    fresh = []
    for item in bad:
        if (item.raw, item.reason) not in seen:
            seen.add((item.raw, item.reason))
            fresh.append(item)
    if fresh:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(item.to_json() + "\n" for item in fresh)


def export(sources: list[Path], out: Path, chunk_bytes: int = CHUNK_BYTES) -> ExportSummary:
    """Merge the logs under ``sources`` into the dataset at ``out``; return what happened."""
    started = time.perf_counter()
    paths = find_log_files(sources)
    if not paths:
        raise ExportError(
            f"no event logs ({logfiles.GLOB}) under " + ", ".join(str(s) for s in sources)
        )
    summary = ExportSummary(files=len(paths))
    new, bad, summary.slow_chunks = read_logs(paths, chunk_bytes)
    summary.lines_valid = new.num_rows
    summary.bad_lines = len(bad)
    summary.bad_reasons = dict(Counter(item.reason for item in bad).most_common())
    out.mkdir(parents=True, exist_ok=True)
    _write_quarantine(out, bad)

    existing = read_dataset(out)
    merged = drop_duplicates(concat([existing, new]))
    summary.events_added = merged.num_rows - existing.num_rows
    summary.duplicates = new.num_rows - summary.events_added
    if merged.num_rows == 0:
        raise ExportError(f"no valid event in {len(paths)} log file(s); see {out / QUARANTINE}")
    if summary.events_added:
        merged = order_by_time(merged)
        tmp = out / f".{DATA_FILE}.tmp"
        pq.write_table(merged, tmp, compression="zstd")
        os.replace(tmp, out / DATA_FILE)  # readers never see a half-written dataset
    summarize(merged, summary)
    summary.seconds = time.perf_counter() - started
    (out / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sources", nargs=-1, required=True, metavar="SRC...",
                type=click.Path(path_type=Path))  # fmt: skip
@click.option("--out", required=True, metavar="DATASET", type=click.Path(path_type=Path),
              help="dataset directory")  # fmt: skip
def cli(sources: tuple[Path, ...], out: Path) -> None:
    """Turn pulled event logs into one validated, de-duplicated Parquet dataset.

    SRC: log folders or files; a folder is searched for the service's log files
    (events-<pid>.jsonl and its rotated parts), a file is read whatever its name.
    """
    try:
        summary = export(list(sources), out)
    except ExportError as error:
        raise click.ClickException(str(error)) from error
    click.echo(summary.render())
    if summary.bad_lines:
        click.echo(f"export: {summary.bad_lines} bad line(s) set aside in {out / QUARANTINE}",
                   err=True)  # fmt: skip


if __name__ == "__main__":
    cli(prog_name="python -m script.export")
