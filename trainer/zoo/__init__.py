"""The course's recommenders, trained from the lab's own logs: the 2025 seminars' user-based
CF, LightFM, "contextual" and GCF, and the 2026 edition's SasRec-I2I and LightFM-I2I lists.

    python -m trainer zoo NAME --data EVENTS --out FILE [--catalog tracks.json] [--epochs N]

Each model reads the exported events (`python -m script.export`), trains as the course's
notebook does (each module's docstring says how, and where ours differs) and writes a list file
the service serves: user lists (`{"user", "tracks"}`, for `indexed` with a Random fallback, as the
course served them) or item-keyed lists (`{"item_id", "recommendations"}`, for `contextual` and
`i2i`). The list set's name in the service is the model's name, so `trainer deploy --name NAME`
and the arms' `lists: NAME` meet (`config/experiments-zoo.yml`, `config/experiments-2026.yml`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class ZooModel:
    name: str
    kind: str  # "users" or "items": the list file it writes
    served_by: str  # the recommender that serves its lists
    course: str  # where the course trains it
    epochs: int | None  # the course's epoch budget (None: not an epoch-trained model)


MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("user_based", "users", "indexed", "2025 Week3Seminar.ipynb", None),
        ZooModel("lightfm", "users", "indexed", "2025 Week4Seminar.ipynb", 300),
        ZooModel("contextual", "items", "contextual", "2025 Week6Seminar.ipynb", 50),
        ZooModel("gcf", "users", "indexed", "2025 Week7Seminar.ipynb", 10),
        ZooModel("sasrec_i2i", "items", "i2i", "2026 NeuralCandgenSeminar.ipynb", 50),
        ZooModel("lightfm_i2i", "items", "i2i", "2026 NeuralCandgenSeminar.ipynb", 100),
    )
}


def fit(name: str, data, catalog=None, epochs: int | None = None, progress=None):
    """Train model `name` on the events `data`; (lists {key: [tracks]}, metrics)."""
    if name not in MODELS:
        raise ValueError(f"unknown zoo model {name!r}; known: {', '.join(MODELS)}")
    fitter: Callable
    if name == "user_based":
        from trainer.zoo import user_based

        return dict(user_based.recommend(data, progress=progress)), {}
    if name == "lightfm":
        from trainer.zoo import lightfm

        return lightfm.fit_2025(data, _epochs(epochs), progress)
    if name == "lightfm_i2i":
        from trainer.zoo import lightfm

        return lightfm.fit_2026(data, catalog, _epochs(epochs), progress)
    if name == "contextual":
        from trainer.zoo import contextual

        fitter = contextual.fit
    elif name == "gcf":
        from trainer.zoo import lightgcn

        fitter = lightgcn.fit
    else:
        from trainer.zoo import sasrec

        fitter = sasrec.fit
    return fitter(data, _epochs(epochs), progress)


def _epochs(epochs: int | None) -> dict | None:
    return None if epochs is None else {"epochs": int(epochs)}


def train(name: str, data, out: str | Path, catalog=None, epochs: int | None = None,
          progress=None) -> dict:  # fmt: skip
    """Train and write the list file `out` (and `<out>.json`, the metrics); returns the metrics."""
    from botify.item_lists import write_item_list_file
    from botify.toplists import write_list_file

    started = time.perf_counter()
    lists, metrics = fit(name, data, catalog=catalog, epochs=epochs, progress=progress)
    if not lists:
        raise ValueError(f"{name}: the model made no lists; collect more logs")
    out = Path(out)
    model = MODELS[name]
    write = write_list_file if model.kind == "users" else write_item_list_file
    written = write(out, sorted(lists.items()))
    metrics = {"model": name, "kind": model.kind, "served_by": model.served_by,
               "course": model.course, "lists": written, **metrics,
               "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    out.with_name(out.name + ".json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
