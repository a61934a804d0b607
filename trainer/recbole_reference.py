"""The reference: CORE trained through RecBole 1.2.1's own pipeline, and every workaround it needs.

`python -m trainer` does not use this module. The benchmark (bench/bench_trainer.py) runs it as
"today's recipe" beside the lean trainer in the same run, and the tests check the lean split,
network and metrics against RecBole's with it. It needs `recbole` (and numpy < 2).

Config -> seed -> `create_dataset` -> `data_preparation` -> CORE -> `fit` -> `evaluate` -> Pop,
as RecBole's `run_recbole`, with the time of each stage recorded. Workarounds (docs/trainer.md):
- `recbole.quick_start` imports ray (which needs the removed `pkg_resources`): never imported.
- `Config` parses `sys.argv` for `--key=value`: argv is hidden while a Config is built.
- RecBole writes `log/`, `log_tensorboard/` and `saved/` into the current directory: it runs in
  a throw-away working directory.
- importing RecBole's sequential models runs `sine.py`, which turns on autograd anomaly mode
  for the whole process (a NaN check of every gradient): switched off again after the import.
- torch >= 2.6 refuses RecBole's checkpoints (they pickle the whole Config): `fit(saved=False)`,
  the best validation state kept in memory, `evaluate(load_best_model=False)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trainer.data import read_chains
from trainer.model import ARCH_KEYS, save_model
from trainer.train import RECIPE, VALID_METRIC

# RecBole settings that are plumbing, not recipe: the atomic file's fields, no second k-core,
# CE over all items (no negative sampling), leave-one-out by time with full ranking.
PLUMBING = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "loss_type": "CE",
    "train_neg_sample_args": None,
    "eval_args": {
        "split": {"LS": "valid_and_test"},
        "order": "TO",
        "group_by": "user",
        "mode": "full",
    },
    "metrics": ["Recall", "NDCG", "MRR"],
    "valid_metric": "NDCG@10",  # = VALID_METRIC
    "stopping_step": 10,
    "eval_step": 1,
    "reproducibility": True,
    "show_progress": False,
}


@contextlib.contextmanager
def quiet_recbole() -> Iterator[None]:
    """Silence the warnings RecBole's own code triggers on current pandas/torch, and nothing else."""
    with warnings.catch_warnings():
        for module in (r"recbole(\..*)?", r"torch\.utils\.tensorboard(\..*)?"):
            warnings.filterwarnings("ignore", category=FutureWarning, module=module)
            warnings.filterwarnings("ignore", category=UserWarning, module=module)
        yield


@contextlib.contextmanager
def scratch_cwd() -> Iterator[Path]:
    """Run RecBole in a temporary working directory, so its stray files vanish afterwards."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="botify-recbole-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def import_models() -> None:
    """Import RecBole's sequential models, then undo the anomaly mode their import turns on."""
    import recbole.model.sequential_recommender  # noqa: F401  (runs sine.py's module code)
    import torch

    torch.autograd.set_detect_anomaly(False)


def make_config(dataset_dir: Path, settings: dict, model: str = "CORE"):
    """RecBole Config for the atomic dataset in `dataset_dir`: plumbing + recipe, argv hidden."""
    from recbole.config import Config

    dataset_dir = Path(dataset_dir).resolve()
    config_dict = {
        **PLUMBING,
        **RECIPE,
        "data_path": str(dataset_dir.parent),
        "dataset": dataset_dir.name,
        **settings,
    }
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return Config(model=model, config_dict=config_dict)
    finally:
        sys.argv = argv


def train_reference(
    dataset_dir: str | Path, out_dir: str | Path, settings: dict | None = None
) -> dict:
    """Today's recipe through RecBole; writes the same model directory as `trainer.train`.

    The returned metrics have the lean trainer's keys plus `seconds`: config, create_dataset,
    data_preparation, batches (one pass over the training dataloader without the model), the
    training and validation time of each epoch, test (CORE and Pop).
    """
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import Pop
    from recbole.trainer import Trainer
    from recbole.utils import get_model, get_trainer, init_seed

    import_models()
    dataset_dir, out_dir = Path(dataset_dir).resolve(), Path(out_dir).resolve()
    seconds: dict = {"train": [], "valid": []}

    def timed(name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        elapsed = time.perf_counter() - started
        if isinstance(seconds.get(name), list):
            seconds[name].append(elapsed)
        else:
            seconds[name] = elapsed
        return result

    with quiet_recbole(), scratch_cwd() as scratch:
        config = timed("config", make_config, dataset_dir,
                       {**(settings or {}), "checkpoint_dir": str(scratch / "saved")})  # fmt: skip
        init_seed(config["seed"], config["reproducibility"])
        dataset = timed("create_dataset", create_dataset, config)
        config["topk"] = sorted({min(k, dataset.item_num - 1) for k in config["topk"]})
        train_data, valid_data, test_data = timed("data_preparation", data_preparation, config,
                                                  dataset)  # fmt: skip

        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch
        trainer._train_epoch = lambda *a, **kw: timed("train", train_epoch, *a, **kw)
        trainer._valid_epoch = lambda *a, **kw: timed("valid", valid_epoch, *a, **kw)
        best: dict = {}

        def keep_best(epoch: int, valid_score: float) -> None:
            if trainer.cur_step == 0:  # early_stopping reset its counter: a new best
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best.update(epoch=epoch, score=float(valid_score), state=state)

        trainer.fit(train_data, valid_data, saved=False, show_progress=False,
                    callback_fn=keep_best)  # fmt: skip
        epochs_run = len(trainer.train_loss_dict)
        if not best:
            best.update(epoch=epochs_run - 1, score=float("nan"), state=model.state_dict())
        model.load_state_dict(best["state"])
        started = time.perf_counter()
        core_test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        config["epochs"] = 1  # Pop only counts items; one pass over the same training samples
        pop = Pop(config, train_data._dataset).to(config["device"])
        pop_trainer = Trainer(config, pop)
        pop_trainer.fit(train_data, None, verbose=False, saved=False, show_progress=False)
        pop_test = pop_trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        seconds["test"] = time.perf_counter() - started
        # after training: the pass draws a shuffle from the generator the epochs use
        timed("batches", lambda: sum(1 for _ in train_data))

        arch = {key: config[key] for key in ARCH_KEYS}
        tracks = dataset.field2id_token["item_id"][1:].astype(np.int64)
        n_train = len(train_data._dataset)
        device = str(config["device"])
        batch_size, learning_rate = config["train_batch_size"], config["learning_rate"]

    fit = sum(seconds["train"]) + sum(seconds["valid"])
    rounded = {k: round(float(v), 4) for k, v in core_test.items()}
    metrics = {
        "model": f"CORE-{arch['dnn_type']}",
        "test": {"CORE": rounded, "Pop": {k: round(float(v), 4) for k, v in pop_test.items()}},
        "valid_best": {"epoch": best["epoch"], VALID_METRIC: best["score"]},
        "epochs_run": epochs_run,
        "train_samples_per_epoch": n_train,
        "fit_seconds": round(fit, 2),
        "seconds_per_epoch": round(fit / max(epochs_run, 1), 2),
        "seconds": {
            k: [round(x, 2) for x in v] if isinstance(v, list) else round(v, 2)
            for k, v in seconds.items()
        },  # fmt: skip
        "device": device,
        "settings": arch
        | {
            "train_batch_size": batch_size,
            "learning_rate": learning_rate,
            "epochs": epochs_run,
            "seed": config["seed"],
        },  # fmt: skip
        "engine": "recbole",
    }
    save_model(out_dir, best["state"], arch, tracks, read_chains(dataset_dir).as_arrays(),
               {"metrics": metrics})  # fmt: skip
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
