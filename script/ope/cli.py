"""`python -m script.ope`: the table of one candidate's off-policy estimates (see the package)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from botify.catalog import Catalog
from script.ope.evaluate import MIN_ESS, MIN_MATCHED, MIN_SUPPORT, evaluate
from script.ope.logged import OpeError
from script.ope.replay import Candidate

MS = click.IntRange(min=0)


def _list_files(ctx, param, values: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=FILE, got {value!r}")
        out[name] = Path(path)
    return out


def _day_window(run: Path | None, day: int) -> tuple[int, int]:
    """[from_ms, until_ms) of A/B day `day` from the demo run's manifest."""
    manifest = run / "manifest.json" if run is not None else None
    if manifest is None or not manifest.exists():
        raise click.UsageError("--day needs --run with a demo run's manifest.json")
    days = {d["day"]: d for d in json.loads(manifest.read_text()).get("ab_days", [])}
    if day not in days:
        raise click.UsageError(f"the run's manifest has A/B days {sorted(days)}, not {day}")
    return int(days[day]["from_ms"]), int(days[day]["until_ms"])


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    required=True,
    help="exported dataset (python -m script.export)",
)
@click.option(
    "--candidate",
    required=True,
    help="an arm of --config, or a registered recommender (default params)",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="experiments YAML whose arm --candidate names",
)
@click.option(
    "--run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="a trained run folder: the candidate's lists and model, and its world's catalog",
)
@click.option(
    "--lists",
    "lists",
    multiple=True,
    callback=_list_files,
    metavar="NAME=FILE",
    help="list set NAME from FILE (user or item lists); repeatable",
)
@click.option(
    "--world",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="world folder with tracks.json (default: RUN/world)",
)
@click.option("--experiment", default=None, help="the experiment whose arms --arm names")
@click.option("--arm", "arms", multiple=True, help="only the logs of this arm; repeatable")
@click.option("--since", type=MS, default=None, metavar="MS", help="only events at or after (ms)")
@click.option("--until", type=MS, default=None, metavar="MS", help="only events before (ms)")
@click.option(
    "--day",
    type=click.IntRange(min=2),
    default=None,
    help="only the events of this A/B day of the demo --run (its manifest's window)",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="seed of the candidate's draws"
)
@click.option("--min-matched", type=int, default=MIN_MATCHED, show_default=True)
@click.option("--min-ess", type=float, default=MIN_ESS, show_default=True)
@click.option(
    "--min-support",
    type=float,
    default=MIN_SUPPORT,
    show_default=True,
    help="refuse when the mean weight's interval lies below this",
)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--quiet", is_flag=True, help="no progress bar")
def main(data, candidate, config, run, lists, world, experiment, arms, since, until, day, seed,
         min_matched, min_ess, min_support, as_json, quiet) -> None:  # fmt: skip
    """Off-policy estimates (IPS, SNIPS, DM, DR) of CANDIDATE's mean listening time per step
    from the logs in DATA. Exit code 2 when the logs do not support an estimate."""
    world = world or (run / "world" if run is not None else None)
    if world is None or not (world / "tracks.json").exists():
        raise click.UsageError("the catalog: give --world DIR (with tracks.json) or --run")
    catalog = Catalog.from_tracks_json(world / "tracks.json")
    if day is not None:
        since, until = _day_window(run, day)
    try:
        chosen = Candidate.resolve(candidate, catalog, config=config, run=run, lists=lists)
        result = evaluate(
            data, chosen, catalog, experiment=experiment, arms=tuple(arms), since_ms=since,
            until_ms=until, seed=seed, progress=not quiet, min_matched=min_matched,
            min_ess=min_ess, min_support=min_support,
        )  # fmt: skip
    except OpeError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(json.dumps(result.to_dict(), indent=1) if as_json else result.render())
    if result.refusal is not None:
        sys.exit(2)
