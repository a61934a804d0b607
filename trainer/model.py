"""The trained model as plain files, and top-K lists from it.

A model directory (written by `trainer.train`, read here):
    model.pt          CORE's state_dict: tensors only, loaded with torch.load(weights_only=True)
    model.json        format tag, sha256 of model.pt, architecture, internal id -> track id
    sequences.npz     every user's full liked chain (track ids), allow_pickle=False
    metrics.json      held-out metrics of CORE and the popularity baseline
    item_embeddings.npz   written by `recommend`: track ids + CORE's item embedding table

Scoring follows RecBole's `CORE.full_sort_predict`: the session vector (normalised) against the
normalised item embeddings, divided by the temperature. Nothing here unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer.core_net import CORE

FORMAT = "botify-core/1"
ARCH_KEYS = (
    "dnn_type",
    "embedding_size",
    "n_layers",
    "n_heads",
    "inner_size",
    "hidden_dropout_prob",
    "attn_dropout_prob",
    "hidden_act",
    "layer_norm_eps",
    "initializer_range",
    "temperature",
    "MAX_ITEM_LIST_LENGTH",
    "sess_dropout",  # training only; absent from older model.json files (then 0)
    "item_dropout",
)


class CheckpointError(ValueError):
    """A model directory that is missing, corrupt or not written by this trainer."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class SavedModel:
    scorer: CORE
    tracks: np.ndarray  # internal id i+1 -> tracks[i]
    users: np.ndarray  # user ids with a chain
    offsets: np.ndarray  # users[j]'s chain is chain_tracks[offsets[j]:offsets[j+1]]
    chain_tracks: np.ndarray
    meta: dict


def save_model(
    out_dir: Path, state: dict, arch: dict, tracks: np.ndarray, chains: dict, extra: dict
) -> None:
    """Write model.pt (tensors only), its sha256 and architecture, and the users' chains."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / "model.pt"
    torch.save({k: v.detach().cpu() for k, v in state.items()}, weights)
    np.savez(out_dir / "sequences.npz", **chains)
    meta = {
        "format": FORMAT,
        "sha256": sha256_of(weights),
        "arch": arch,
        "n_items": len(tracks) + 1,
        "tracks": [int(t) for t in tracks],
        **extra,
    }
    (out_dir / "model.json").write_text(json.dumps(meta) + "\n")


def load_model(model_dir: str | Path, device: str = "cpu") -> SavedModel:
    """Load a model directory written by this trainer; refuse anything else with a clear message."""
    model_dir = Path(model_dir)
    weights, meta_path = model_dir / "model.pt", model_dir / "model.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{meta_path}: not readable as this trainer's model description ({exc}); "
            "train one with `python -m trainer train`"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a {FORMAT} model (foreign or older file)")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    if sha256_of(weights) != meta.get("sha256"):
        raise CheckpointError(
            f"{weights}: sha256 differs from the one recorded at training time: the file is "
            "corrupt or was not written by this trainer; refusing to load it"
        )
    try:
        # weights_only=True: even a file with the right hash is never unpickled as code.
        state = torch.load(weights, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise CheckpointError(
            f"{weights}: refused by the safe loader ({type(exc).__name__})"
        ) from exc
    try:
        scorer = CORE(int(meta["n_items"]), meta["arch"])
        scorer.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights}: weights do not match the recorded architecture") from exc
    try:
        with np.load(model_dir / "sequences.npz", allow_pickle=False) as npz:
            users, offsets, chain = npz["users"], npz["offsets"], npz["tracks"]
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{model_dir / 'sequences.npz'}: unreadable ({exc})") from exc
    tracks = np.asarray(meta["tracks"], dtype=np.int64)
    consistent = (
        len(offsets) == len(users) + 1
        and offsets[0] == 0
        and offsets[-1] == len(chain)
        and bool(np.all(np.diff(offsets) > 0))
        and bool(np.isin(chain, tracks).all())
    )
    if not consistent:
        raise CheckpointError(
            f"{model_dir / 'sequences.npz'}: chains do not fit the model's tracks"
        )
    scorer.to(device).eval()
    return SavedModel(scorer, tracks, users, offsets, chain, meta)


def padded_sequences(model: SavedModel) -> np.ndarray:
    """Each user's last `max_len` liked tracks as internal ids, left-aligned, 0-padded."""
    ids = internal_ids(model.tracks)(model.chain_tracks)
    n, max_len = len(model.users), model.scorer.max_len
    starts = np.maximum(model.offsets[:-1], model.offsets[1:] - max_len)
    lengths = model.offsets[1:] - starts
    seq = np.zeros((n, max_len), dtype=np.int64)
    cols = np.arange(max_len)
    take = cols[None, :] < lengths[:, None]
    seq[take] = ids[(starts[:, None] + cols[None, :])[take]]
    return seq


@torch.no_grad()
def top_k(
    model: SavedModel, k: int = 100, exclude_seen: bool = False, batch: int = 1024
) -> Iterator[tuple[int, list[int]]]:
    """(user, best-first track ids) for every user, from the user's full chain."""
    seq = padded_sequences(model)
    to_internal = internal_ids(model.tracks)
    weight = model.scorer.item_embedding.weight
    items_t = model.scorer.normalised_items()
    k = min(k, len(model.tracks))
    for lo in range(0, len(seq), batch):
        chunk = torch.from_numpy(seq[lo : lo + batch]).to(weight.device)
        scores = model.scorer.scores(chunk, items_t)
        scores[:, 0] = -torch.inf  # padding id
        if exclude_seen:  # the full chain, not only its last max_len tracks
            for row, j in enumerate(range(lo, lo + len(chunk))):
                seen = model.chain_tracks[model.offsets[j] : model.offsets[j + 1]]
                scores[row, torch.from_numpy(to_internal(seen))] = -torch.inf
        top = torch.topk(scores, k, dim=1)
        best, usable = top.indices.cpu().numpy(), torch.isfinite(top.values).cpu().numpy()
        for row, user in enumerate(model.users[lo : lo + batch]):
            # a user who liked nearly everything gets a shorter list, never a masked track
            yield int(user), model.tracks[best[row][usable[row]] - 1].tolist()


def write_recommendations(
    model_dir: Path, out: Path, k: int = 100, exclude_seen: bool = False
) -> int:
    """`recommend`: top-K lists as JSON lines into `out` (atomically) and item_embeddings.npz."""
    model = load_model(model_dir, device="cuda" if torch.cuda.is_available() else "cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    with tmp.open("w") as f:
        for user, tracks in top_k(model, k=k, exclude_seen=exclude_seen):
            f.write(json.dumps({"user": user, "tracks": tracks}) + "\n")
            n += 1
    tmp.replace(out)
    np.savez(Path(model_dir) / "item_embeddings.npz", **item_embeddings(model))
    return n


def internal_ids(catalogue: np.ndarray):
    """Track id -> RecBole's internal id (position in `catalogue` + 1; 0 is padding)."""
    order = np.argsort(catalogue)

    def lookup(tracks: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(catalogue, tracks, sorter=order)] + 1

    return lookup


def item_embeddings(model: SavedModel) -> dict[str, np.ndarray]:
    """Arrays for online use: rank by cos(session, embedding) / temperature, as CORE does."""
    weight = model.scorer.item_embedding.weight.detach().cpu().numpy()[1:]
    return {
        "tracks": model.tracks.copy(),
        "embeddings": weight.astype(np.float32),
        "temperature": np.array(model.scorer.temperature, dtype=np.float32),
    }
