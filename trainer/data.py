"""Liked chains as flat arrays, RecBole's leave-one-out split, and batches of item sequences.

What RecBole's `SequentialDataset` + `data_preparation` build for CORE (`eval_args`: split
`{LS: valid_and_test}`, order `TO`, `group_by: user`, and `MAX_ITEM_LIST_LENGTH` L), as index
arithmetic over one flat array instead of per-sample Python objects:

- every position p >= 1 of a user's chain is a sample: the target is the item at p, the history
  the up to L items before it, left-aligned and 0-padded on the right;
- per user, the last sample (target = last liked track) is the test row, the one before it the
  validation row, all earlier ones are training samples.
tests/trainer/test_data.py checks this against RecBole's own split on a tiny dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch


@dataclass
class Chains:
    """Every user's liked chain, in time order: users[j]'s tracks are tracks[offsets[j]:offsets[j+1]]."""

    users: np.ndarray  # int64 user ids, ascending
    offsets: np.ndarray  # int64, len(users) + 1
    tracks: np.ndarray  # int64 track ids

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"users": self.users, "offsets": self.offsets, "tracks": self.tracks}


def read_chains(dataset_dir: str | Path) -> Chains:
    """The chains in the atomic file written by `trainer.prepare` (ordered by the position column)."""
    dataset_dir = Path(dataset_dir)
    inter = pd.read_csv(
        dataset_dir / f"{dataset_dir.name}.inter",
        sep="\t",
        header=0,
        names=["user", "track", "t"],
        dtype={"user": np.int64, "track": np.int64, "t": np.float64},
        engine="c",
    )
    inter = inter.sort_values(["user", "t"], kind="stable")
    users, counts = np.unique(inter["user"].to_numpy(np.int64), return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Chains(users, offsets, inter["track"].to_numpy(np.int64))


@dataclass
class Split:
    """Items as internal ids (position in `catalogue` + 1; 0 is padding) and sample positions."""

    catalogue: np.ndarray  # track ids, ascending: internal id i + 1 is catalogue[i]
    items: torch.Tensor  # int64, every chain's items, flat (same layout as Chains.tracks)
    starts: torch.Tensor  # int64, per flat position: where its user's chain starts
    train: torch.Tensor  # positions of training targets
    valid: torch.Tensor  # per user with >= 4 items: the second-to-last position
    test: torch.Tensor  # per user with >= 3 items: the last position

    @property
    def n_items(self) -> int:
        """Embedding rows: every track plus the padding id 0."""
        return len(self.catalogue) + 1

    def to(self, device: torch.device | str) -> Split:
        moved = {
            k: getattr(self, k).to(device) for k in ("items", "starts", "train", "valid", "test")
        }
        return Split(catalogue=self.catalogue, **moved)


def leave_one_out(chains: Chains) -> Split:
    """RecBole's `LS: valid_and_test` split of every chain (see the module docstring)."""
    catalogue = np.unique(chains.tracks)
    items = np.searchsorted(catalogue, chains.tracks) + 1
    lengths = np.diff(chains.offsets)
    starts = np.repeat(chains.offsets[:-1], lengths)
    from_end = np.repeat(chains.offsets[1:], lengths) - np.arange(len(items))  # 1 = last item
    length = np.repeat(lengths, lengths)
    # RecBole's `_split_index_by_leave_one_out`: a user with n = length - 1 samples gives the
    # last one to test if n >= 2 and the one before to validation if n >= 3; the rest train.
    samples = np.arange(len(items)) > starts
    test = samples & (from_end == 1) & (length >= 3)
    valid = samples & (from_end == 2) & (length >= 4)
    train = samples & ~test & ~valid
    position = np.arange(len(items))
    as_tensor = torch.from_numpy
    return Split(
        catalogue=catalogue,
        items=as_tensor(items.astype(np.int64)),
        starts=as_tensor(starts.astype(np.int64)),
        train=as_tensor(position[train]),
        valid=as_tensor(position[valid]),
        test=as_tensor(position[test]),
    )


def histories(split: Split, positions: torch.Tensor, max_len: int) -> torch.Tensor:
    """(len(positions), max_len): the up to `max_len` items before each position, left-aligned."""
    start = torch.maximum(split.starts[positions], positions - max_len)
    length = positions - start
    cols = torch.arange(max_len, device=positions.device)
    index = start[:, None] + cols
    present = cols < length[:, None]
    return torch.where(present, split.items[index.clamp(max=len(split.items) - 1)], 0)
