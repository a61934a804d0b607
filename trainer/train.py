"""Train CORE through RecBole's own API, read top to bottom like RecBole's `run_recbole`.

config -> seed -> dataset -> split -> model -> fit (best state kept in memory) -> evaluate ->
popularity baseline (RecBole's Pop, same split and evaluator) -> save plain files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.model import ARCH_KEYS, save_model
from trainer.recbole_edge import import_models, make_config, quiet_recbole, scratch_cwd

log = logging.getLogger("trainer")


def train(
    dataset_dir: str | Path,
    out_dir: str | Path,
    variant: str = "trm",
    epochs: int | None = None,
    seed: int | None = None,
    overrides: dict | None = None,
    show_progress: bool = True,
) -> dict:
    """Train on a dataset written by `prepare`; write the model directory; return the metrics."""
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import Pop
    from recbole.trainer import Trainer
    from recbole.utils import get_model, get_trainer, init_seed

    import_models()
    dataset_dir, out_dir = Path(dataset_dir).resolve(), Path(out_dir).resolve()
    settings = {"dnn_type": variant, "show_progress": show_progress, **(overrides or {})}
    if epochs is not None:
        settings["epochs"] = epochs
    if seed is not None:
        settings["seed"] = seed

    with quiet_recbole(), scratch_cwd() as scratch:
        settings["checkpoint_dir"] = str(scratch / "saved")  # never written: saved=False below
        config = make_config(dataset_dir, settings)
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        # RecBole's evaluator crashes when K exceeds the catalogue (small demo logs): clamp K
        config["topk"] = sorted({min(k, dataset.item_num - 1) for k in config["topk"]})
        train_data, valid_data, test_data = data_preparation(config, dataset)
        log.info(
            "%d users, %d tracks; %d training samples per epoch; device %s",
            dataset.user_num - 1, dataset.item_num - 1,
            len(train_data._dataset), config["device"],
        )  # fmt: skip

        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

        # RecBole would pickle its Config into a checkpoint that torch>=2.6 refuses to load:
        # keep the best validation state here instead.
        best: dict = {}

        def keep_best(epoch: int, valid_score: float) -> None:
            if trainer.cur_step == 0:  # early_stopping reset its counter: a new best
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best.update(epoch=epoch, score=float(valid_score), state=state)

        started = time.perf_counter()
        trainer.fit(
            train_data, valid_data, saved=False, show_progress=show_progress, callback_fn=keep_best
        )
        fit_seconds = time.perf_counter() - started
        epochs_run = len(trainer.train_loss_dict)
        if not best:  # validation never produced a comparable score (NaN): keep the last state
            best.update(epoch=epochs_run - 1, score=float("nan"), state=model.state_dict())
        model.load_state_dict(best["state"])
        core_test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)

        config["epochs"] = 1  # Pop only counts items; one pass over the same training samples
        pop = Pop(config, train_data._dataset).to(config["device"])
        pop_trainer = Trainer(config, pop)
        pop_trainer.fit(train_data, None, verbose=False, saved=False, show_progress=False)
        pop_test = pop_trainer.evaluate(test_data, load_best_model=False, show_progress=False)

        arch = {key: config[key] for key in ARCH_KEYS}
        tracks = dataset.field2id_token["item_id"][1:].astype(np.int64)
        n_train = len(train_data._dataset)
        device = str(config["device"])

    metrics = {
        "model": f"CORE-{arch['dnn_type']}",
        "test": {"CORE": _floats(core_test), "Pop": _floats(pop_test)},
        "valid_best": {"epoch": best["epoch"], config["valid_metric"]: best["score"]},
        "epochs_run": epochs_run,
        "train_samples_per_epoch": n_train,
        "fit_seconds": round(fit_seconds, 2),
        "seconds_per_epoch": round(fit_seconds / max(epochs_run, 1), 2),
        "device": device,
        "settings": arch | {"train_batch_size": config["train_batch_size"], "seed": config["seed"]},
    }
    save_model(out_dir, best["state"], arch, tracks, read_chains(dataset_dir), {"metrics": metrics})
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_chains(dataset_dir: Path) -> dict[str, np.ndarray]:
    """Every user's full chain (track ids, in time order) from the atomic file, as flat arrays."""
    inter = pd.read_csv(dataset_dir / f"{dataset_dir.name}.inter", sep="\t")
    inter.columns = ["user", "track", "t"]
    inter = inter.sort_values(["user", "t"], kind="stable")
    users, counts = np.unique(inter["user"].to_numpy(np.int64), return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return {"users": users, "offsets": offsets, "tracks": inter["track"].to_numpy(np.int64)}


def _floats(result: dict) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in result.items()}


def comparison_table(metrics: dict) -> str:
    """A small text table: CORE vs Pop on the held-out last liked track."""
    core, pop = metrics["test"]["CORE"], metrics["test"]["Pop"]
    lines = [f"{'metric':<12}{metrics['model']:>12}{'Pop':>10}"]
    lines += [f"{key:<12}{core[key]:>12.4f}{pop[key]:>10.4f}" for key in core]
    return "\n".join(lines)
