from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from sim import world as world_cli
from sim.world import World, WorldShape, generate

SHAPE = WorldShape(tracks=600, users=50, dim=8)


def files(path):
    return {
        name: (path / name).read_bytes() for name in ("tracks.json", "tracks.npy", "users.json")
    }


def test_same_seed_same_bytes_other_seed_other_world(tmp_path):
    a = files(generate(3, SHAPE).save(tmp_path / "a"))
    b = files(generate(3, SHAPE).save(tmp_path / "b"))
    c = files(generate(4, SHAPE).save(tmp_path / "c"))
    assert a == b
    assert all(a[name] != c[name] for name in a)


def test_cli_writes_the_course_formats(tmp_path):
    done = CliRunner().invoke(world_cli.cli, ["--out", str(tmp_path), "--seed", "5",
                                              "--tracks", "300", "--users", "20", "--dim", "4"])  # fmt: skip
    assert done.exit_code == 0, done.output
    tracks = [json.loads(line) for line in (tmp_path / "tracks.json").read_text().splitlines()]
    users = [json.loads(line) for line in (tmp_path / "users.json").read_text().splitlines()]
    emb = np.load(tmp_path / "tracks.npy", allow_pickle=False)
    assert [t["track"] for t in tracks] == list(range(300))
    assert set(tracks[0]) == {"track", "artist", "title", "genre", "pop"}
    assert emb.dtype == np.float32 and emb.shape == (300, 4)
    assert [u["user"] for u in users] == list(range(20))
    assert set(users[0]) == {"user", "interests", "consume_bias", "consume_sharpness"}
    assert "300 tracks" in done.stderr


def test_round_trip(tmp_path):
    original = generate(3, SHAPE)
    loaded = World.load(original.save(tmp_path / "a"))
    np.testing.assert_array_equal(loaded.embeddings, original.embeddings)
    assert loaded.artist_names == original.artist_names
    assert loaded.users == original.users
    assert files(loaded.save(tmp_path / "b")) == files(tmp_path / "a")


def test_structure(small_world):
    w = small_world
    sizes = np.bincount(w.artist_ids())
    assert sizes.max() >= 10 * np.median(sizes)  # heavy-tailed tracks per artist
    assert len(set(w.genres)) > 5
    # one artist's tracks are closer to each other than to other tracks
    artist = w.artist_ids()
    big = np.flatnonzero(artist == np.argmax(sizes))
    others = np.flatnonzero(artist != np.argmax(sizes))[:500]
    e = w.embeddings.astype(np.float64)
    assert (e[big] @ e[big[0]]).mean() > (e[others] @ e[big[0]]).mean() + 1.0
    pop = np.sort(w.pop)[::-1]
    assert pop[0] / pop[99] > 20  # Zipf-like popularity
    bias = np.array([u["consume_bias"] for u in w.users])
    sharp = np.array([u["consume_sharpness"] for u in w.users])
    assert bias.min() >= 0 and bias.max() <= 10
    assert sharp.min() >= 0.5 and sharp.max() <= 2 and (sharp < 1).any() and (sharp > 1).any()
    assert all(len(set(u["interests"])) == 3 for u in w.users)
    # interests lean to popular tracks, weakly (weight pop ** 0.3), and spread: no track is the
    # interest of many users (the course's users share an interest track at most 8 times)
    interests = np.array([t for u in w.users for t in u["interests"]])
    assert np.median(w.pop[interests]) > 1.2 * np.median(w.pop)
    piled = generate(5, replace(w_shape(w), interest_pop_exponent=1.0))  # the old draw
    piled_interests = np.array([t for u in piled.users for t in u["interests"]])
    assert np.bincount(interests).max() * 3 < np.bincount(piled_interests).max()
    assert len(np.unique(interests)) > 1.5 * len(np.unique(piled_interests))


def test_equal_norms_leave_no_hubs():
    """norm_spread 0: every track's genre + artist + track part has one length, so no track is
    the nearest neighbour of many interests just for being long (the seed's 36,062 distinct
    liked tracks need first tracks spread over the catalog)."""
    from sim.user_model import NeighbourIndex

    def in_degree(shape):
        w = generate(5, shape)
        index = NeighbourIndex(w.embeddings, depth=10)
        near = np.concatenate([index.nearest(t, 10) for t in range(0, w.n_tracks, 4)])
        return np.bincount(near, minlength=w.n_tracks)

    even, spread = in_degree(SHAPE), in_degree(replace(SHAPE, norm_spread=1.0))
    assert (even > 0).sum() > 1.2 * (spread > 0).sum() and even.max() < spread.max()


def w_shape(w) -> WorldShape:
    return WorldShape(tracks=w.n_tracks, users=w.n_users, dim=w.embeddings.shape[1])


def test_a_knob_of_one_part_leaves_the_other_parts_draws():
    """Each part draws from its own stream: changing the artists' norm moves the embeddings
    only; users, popularity, artists and genres stay as they were."""
    a = generate(5, SHAPE)
    b = generate(5, replace(SHAPE, artist_norm=SHAPE.artist_norm * 2))
    assert a.users == b.users and a.artist_names == b.artist_names and a.genres == b.genres
    np.testing.assert_array_equal(a.pop, b.pop)
    assert not np.allclose(a.embeddings, b.embeddings)
    c = generate(5, replace(SHAPE, interest_pop_exponent=1.0))
    assert c.users != a.users and c.artist_names == a.artist_names
    np.testing.assert_array_equal(c.embeddings, a.embeddings)


def test_course_style_users_load_with_overrides(tmp_path):
    w = generate(3, SHAPE)
    w.users[0] = {"user": 0, "interests": [5, 6], "consume_bias": 9.8,
                  "consume_sharpness": 0.8, "session_budget": 3}  # fmt: skip
    loaded = World.load(w.save(tmp_path))
    assert loaded.users[0]["session_budget"] == 3


def test_rejects_inconsistent_files(tmp_path):
    generate(3, SHAPE).save(tmp_path)
    np.save(tmp_path / "tracks.npy", np.zeros((5, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="does not match"):
        World.load(tmp_path)
