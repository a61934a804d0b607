"""Click commands; helpers raise, only this layer prints and exits (1 = error, 2 = usage)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click

from botify import settings
from botify.settings import Settings
from trainer.zoo import MODELS as ZOO_MODELS

VARIANT = click.Choice(["trm", "ave"])
# Where lists go live: the service's own settings (botify.settings: BOTIFY_* variables, the file
# named by BOTIFY_CONFIG), so a deploy writes the keys the replicas read.
REDIS_URL = settings.option("redis_url", "the service's Redis, e.g. redis://localhost:6379/0")
KEY_PREFIX = settings.option("key_prefix", "the service's Redis key prefix")
NAME = click.option("--name", default="core", show_default=True, help="list set name")
JOURNAL = settings.option(
    "journal",
    "deploy journal folder: the durable copy an emptied Redis is restored from",
    type=click.Path(file_okay=False, path_type=Path),
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="RecBole's own debug output too")
def cli(verbose: bool) -> None:
    """Exported logs -> liked chains -> CORE -> top-K lists -> Redis."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )


@cli.command("prepare")
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Parquet dataset written by `python -m script.export`",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="dataset directory")
@click.option("--min-time", default=0.8, show_default=True, help="a play is liked if time > this")
@click.option("--min-count", default=3, show_default=True, help="k of the user/track k-core")
def prepare_cmd(data: Path, out: Path, min_time: float, min_count: int) -> None:
    """Liked plays -> per-user chains -> k-core -> RecBole atomic dataset in OUT."""
    from trainer.prepare import prepare

    summary = _run(prepare, data, out, min_time=min_time, k=min_count)
    click.echo(summary.line())


@cli.command("train")
@click.option(
    "--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="model directory")
@click.option("--variant", type=VARIANT, default=None, help="default: RECIPE in trainer/train.py")
@click.option(
    "--epochs", type=click.IntRange(1), default=None, help="default: RECIPE in trainer/train.py"
)
@click.option("--seed", type=int, default=None, help="default: RECIPE in trainer/train.py")
@click.option("--max-len", type=click.IntRange(1), default=None, help="MAX_ITEM_LIST_LENGTH")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="train_batch_size")
@click.option(
    "--negatives",
    type=click.IntRange(0),
    default=None,
    help="sampled softmax over N uniform negatives per batch (0: the full softmax, RecBole's)",
)
@click.option("--no-progress", is_flag=True, help="no progress bars")
def train_cmd(dataset, out, variant, epochs, seed, max_len, batch_size, negatives,
              no_progress) -> None:  # fmt: skip
    """Train CORE on DATASET; write the model and metrics.json (CORE vs Pop) into OUT."""
    from trainer.train import comparison_table, train

    overrides = {}
    if max_len:
        overrides["MAX_ITEM_LIST_LENGTH"] = max_len
    if batch_size:
        overrides["train_batch_size"] = batch_size
    if negatives is not None:
        overrides["negatives"] = negatives
    metrics = _run(train, dataset, out, variant=variant, epochs=epochs, seed=seed,
                   overrides=overrides, show_progress=not no_progress)  # fmt: skip
    click.echo(comparison_table(metrics))
    click.echo(f"{metrics['seconds_per_epoch']} s/epoch; metrics: {out / 'metrics.json'}")


@cli.command("recommend")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="recs .jsonl")
@click.option("--k", type=click.IntRange(1), default=100, show_default=True)
@click.option("--exclude-seen", is_flag=True, help="leave out tracks the user already liked")
def recommend_cmd(model_dir: Path, out: Path, k: int, exclude_seen: bool) -> None:
    """Top-K per user from each user's full chain; also MODEL/item_embeddings.npz."""
    from trainer.model import write_recommendations

    started = time.perf_counter()
    users = _run(write_recommendations, model_dir, out, k=k, exclude_seen=exclude_seen)
    click.echo(f"{users} lists -> {out} in {time.perf_counter() - started:.1f} s")


@cli.command("zoo")
@click.argument("model", type=click.Choice(sorted(ZOO_MODELS)))
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Parquet dataset written by `python -m script.export`",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="list file to write")
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the world's tracks.json: artist and genre features (lightfm_i2i)",
)
@click.option("--epochs", type=click.IntRange(1), default=None, help="default: the course's")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def zoo_cmd(model: str, data: Path, out: Path, catalog: Path | None, epochs: int | None,
            no_progress: bool) -> None:  # fmt: skip
    """Train one of the course's recommenders (trainer/zoo) on DATA; write its lists to OUT."""
    from tqdm import tqdm

    from botify.catalog import Catalog
    from trainer.zoo import MODELS, train

    tracks = Catalog.from_tracks_json(catalog) if catalog else None
    total = epochs or MODELS[model].epochs
    with tqdm(total=total, desc=model, unit="epoch", disable=no_progress or total is None) as bar:
        metrics = _run(train, model, data, out, catalog=tracks, epochs=epochs, progress=bar.update)
    click.echo(json.dumps(metrics))
    click.echo(f"{metrics['lists']} {metrics['kind']} lists -> {out}", err=True)


@cli.command("deploy")
@click.option("--recs", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@REDIS_URL
@KEY_PREFIX
@NAME
@click.option(
    "--keep",
    type=click.IntRange(2),
    default=3,
    show_default=True,
    help="versions kept in Redis (active included)",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="model directory: its item_embeddings.npz goes live with the lists (session arms)",
)
@JOURNAL
def deploy_cmd(recs, redis_url, key_prefix, name, keep, model_dir, journal) -> None:
    """Write RECS (and the model) as a new version, check the count, activate it; prints it.

    RECS holds user lists (`{"user", "tracks"}` lines, e.g. CORE's or the course's
    hstu_recommendations.json) or item-keyed lists (`{"item_id", "recommendations"}` lines,
    e.g. the course's sasrec_i2i.jsonl): the first line tells which."""
    from botify.item_lists import list_file_kind
    from trainer.deploy import deploy, read_items, read_model, read_recs

    config = _settings(redis_url=redis_url, key_prefix=key_prefix, journal=journal)
    kind = _run(list_file_kind, recs)
    lists = _run(read_recs, recs) if kind == "users" else []
    items = _run(read_items, recs) if kind == "items" else None
    model = _run(read_model, model_dir / "item_embeddings.npz") if model_dir else None
    switch = _with_redis(config, deploy, lists, name=name, prefix=config.key_prefix, keep=keep,
                         meta={"source": recs.name}, model=model, journal=config.journal,
                         items=items)  # fmt: skip
    what = f"{switch.users} lists" if kind == "users" else f"item lists of {switch.items} tracks"
    click.echo(
        f"{name}: {what}{' and a model' if switch.model else ''}; "
        f"active {switch.active} (previous {switch.previous})",
        err=True,
    )
    click.echo(switch.active)


@cli.command("rollback")
@REDIS_URL
@KEY_PREFIX
@NAME
@JOURNAL
def rollback_cmd(redis_url, key_prefix, name: str, journal) -> None:
    """Re-activate the version the active one replaced (undo the last switch); prints it."""
    from trainer.deploy import rollback

    config = _settings(redis_url=redis_url, key_prefix=key_prefix, journal=journal)
    switch = _with_redis(config, rollback, name=name, prefix=config.key_prefix,
                         journal=config.journal)  # fmt: skip
    click.echo(f"{name}: rolled back from {switch.previous}", err=True)
    click.echo(switch.active)


@cli.command("run")
@click.option("--data", type=click.Path(exists=True, path_type=Path), required=True)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    required=True,
    help="folder for dataset/, model/, recs.jsonl",
)
@REDIS_URL
@KEY_PREFIX
@NAME
@click.option("--variant", type=VARIANT, default=None, help="default: RECIPE in trainer/train.py")
@click.option("--epochs", type=click.IntRange(1), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--min-time", default=0.8, show_default=True)
@JOURNAL
@click.pass_context
def run_cmd(ctx, data, work, redis_url, key_prefix, name, variant, epochs, seed, min_time,
            journal) -> None:  # fmt: skip
    """prepare -> train -> recommend -> deploy, in WORK."""
    _settings(redis_url=redis_url, key_prefix=key_prefix, journal=journal)  # bad ones fail first
    ctx.invoke(prepare_cmd, data=data, out=work / "dataset", min_time=min_time)
    ctx.invoke(train_cmd, dataset=work / "dataset", out=work / "model", variant=variant,
               epochs=epochs, seed=seed, max_len=None, batch_size=None, negatives=None,
               no_progress=False)  # fmt: skip
    ctx.invoke(recommend_cmd, model_dir=work / "model", out=work / "recs.jsonl", k=100,
               exclude_seen=False)  # fmt: skip
    ctx.invoke(deploy_cmd, recs=work / "recs.jsonl", redis_url=redis_url, key_prefix=key_prefix,
               name=name, keep=3, model_dir=work / "model", journal=journal)  # fmt: skip


def _run(fn, *args, **kwargs):
    """Call a helper; its known failures become a one-line error and exit code 1."""
    from trainer.deploy import DeployError
    from trainer.model import CheckpointError

    try:
        return fn(*args, **kwargs)
    except (
        CheckpointError,
        DeployError,
        ValueError,
        FileNotFoundError,
    ) as exc:  # ListFileError too
        raise click.ClickException(str(exc)) from exc


def _settings(**given) -> Settings:
    """The service's settings with this command's options on top; a bad one is a usage error."""
    try:
        return settings.from_options(**given)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _with_redis(config: Settings, fn, *args, **kwargs):
    import redis

    from botify.redis_link import client_for

    client = client_for(config)
    try:
        return _run(fn, client, *args, **kwargs)
    except redis.RedisError as exc:
        raise click.ClickException(f"redis at {config.redis_url}: {exc}") from exc
    finally:
        client.close()
