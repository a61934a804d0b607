"""Every workaround for RecBole 1.2.1 on today's packages lives here (see docs/trainer.md).

- `recbole.quick_start` imports ray (which needs the removed `pkg_resources`): never imported;
  the pieces it calls are imported one by one instead.
- `Config` parses `sys.argv` for `--key=value`: our own CLI flags would leak into it, so argv is
  hidden while a Config is built.
- RecBole writes `log/`, `log_tensorboard/` and `saved/` into the current directory: it runs
  inside a throw-away working directory (`scratch_cwd`).
- importing any RecBole sequential model imports `sine.py`, which calls
  `torch.autograd.set_detect_anomaly(True)` at module level: every backward pass then NaN-checks
  every gradient (about a third of CORE-trm's step time here). `import_models` switches it off.
- torch >= 2.6 refuses RecBole's checkpoints (they pickle the whole Config): the trainer never
  asks RecBole to save or load one (`saved=False`, `load_best_model=False`) and keeps the best
  state itself (see trainer.train).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

CONFIG_FILE = Path(__file__).with_name("core.yaml")


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


def make_config(dataset_dir: Path, overrides: dict, model: str = "CORE"):
    """RecBole Config for the atomic dataset in `dataset_dir`, argv hidden, files explicit."""
    from recbole.config import Config

    dataset_dir = Path(dataset_dir).resolve()
    config_dict = {
        "data_path": str(dataset_dir.parent),
        "dataset": dataset_dir.name,
        **overrides,
    }
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model=model, config_file_list=[str(CONFIG_FILE)], config_dict=config_dict)
    finally:
        sys.argv = argv
    # RecBole's Config installs nothing on the root logger here (init_logger is not called);
    # its modules log through logging.getLogger(), which the CLI routes to stderr.
    return config
