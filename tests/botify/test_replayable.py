"""X-Botify-Seed: a request that brings a seed gets the same answer from any replica, any run."""

from __future__ import annotations

import pytest

from tests.botify.conftest import artist_of, write_lists

BODY = {"track": 42, "time": 0.5}


def answers(client, user: int, seeds) -> list[int]:
    out = []
    for seed in seeds:
        response = client.post(f"/next/{user}", json=BODY, headers={"X-Botify-Seed": str(seed)})
        assert response.status_code == 200, response.json
        out.append(response.json["track"])
    return out


def test_same_seeds_same_answers_across_app_instances(make_app):
    # Two instances, each drawing its own seeds from the OS (as two gunicorn workers do): the
    # header decides.
    first = make_app().test_client()
    second = make_app().test_client()
    user = 3  # any user: C, and the list arms fall back to sticky_artist without lists
    seeds = range(100, 140)
    tracks = answers(first, user, seeds)
    assert tracks == answers(second, user, seeds)
    assert all(artist_of(t) == artist_of(BODY["track"]) for t in tracks)
    assert len(set(tracks)) > 1  # different seeds, different draws


def test_indexed_arm_is_replayable_too(make_app, redis_url):
    write_lists(redis_url, range(50))
    app = make_app()
    users = [u for u in range(50) if app.extensions["botify"].experiments.assign(u)["AB"] == "T3"]
    client = app.test_client()
    assert answers(client, users[0], [5, 6, 7]) == answers(client, users[0], [5, 6, 7])


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", str(2**64), "²", "1" * 30, ""])
def test_bad_seed_header_is_a_400(client, bad):
    response = client.post("/next/1", json=BODY, headers={"X-Botify-Seed": bad})
    assert response.status_code == 400
    assert "X-Botify-Seed" in response.json["message"]
