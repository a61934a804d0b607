"""The course's 2026 arms: the listening history across sessions, item-keyed lists, `i2i`, the
2026 StickyArtist variants, the 2025 `contextual`, and user lists of the course's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from botify import recommenders
from botify.catalog import Catalog
from botify.deploy import DeployError, deploy, rollback
from botify.item_lists import (
    ItemListError,
    ItemLists,
    MemoryItemLists,
    items_key,
    list_file_kind,
    pack,
    read_item_list_file,
    unpack,
    write_item_list_file,
)
from botify.recommenders import Context
from botify.recommenders.i2i import pick
from botify.settings import Settings
from botify.step import Step
from botify.toplists import ListFileError
from botify.user_state import ClearSession, MemoryState, PushHistory, PushSession, RedisState
from tests.conftest import PREFIX

from .conftest import N_TRACKS, artist_of, log_dir, read_events


@pytest.fixture
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


@pytest.fixture(params=["memory", "redis"])
def state(request, redis_client):
    if request.param == "memory":
        return MemoryState(history_length=3)
    return RedisState(redis_client, Settings(history_length=3, history_ttl=60))


# -- the listening history ----------------------------------------------------------------------
def test_the_history_keeps_the_last_plays_across_sessions(state):
    for i in range(5):
        (held,) = state.run([PushHistory(7, 100 + i, i / 10)])
    assert held["track"].tolist() == [102, 103, 104]  # the newest 3, oldest first
    assert np.allclose(held["time"], [0.2, 0.3, 0.4])
    state.run([ClearSession(7)])  # the end of a session leaves the history alone
    (held,) = state.run([PushHistory(7, 105, 1.0)])
    assert held["track"].tolist() == [103, 104, 105]
    (session,) = state.run([PushSession(7, 1, 1.0)])  # and the live session is another record
    assert session["track"].tolist() == [1]
    (other,) = state.run([PushHistory(8, 1, 1.0)])
    assert other["track"].tolist() == [1]  # per user


def test_the_history_key_has_the_users_hash_tag_and_a_ttl(redis_client):
    RedisState(redis_client, Settings(history_ttl=60)).run([PushHistory(12345, 3, 0.5)])
    (key,) = redis_client.keys(f"{PREFIX}:history:*")
    assert key == f"{PREFIX}:history:{{12345}}".encode()
    assert 0 < redis_client.ttl(key) <= 60


# -- item lists -----------------------------------------------------------------------------------
def test_item_lists_round_trip_through_the_file_and_redis(tmp_path):
    lists = ItemLists.from_rows([(5, [1, 2, 3]), (2, [9]), (7, [])])
    path = tmp_path / "i2i.jsonl"
    assert write_item_list_file(path, lists.rows()) == 3
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"item_id": 2, "recommendations": [9]}  # the course's field names
    assert list_file_kind(path) == "items"
    again = read_item_list_file(path)
    assert again.get(5).tolist() == [1, 2, 3] and again.get(2).tolist() == [9]
    assert again.get(7).tolist() == [] and again.get(3) is None and again.get(10**6) is None
    fields = {k.encode(): v for k, v in pack(again).items()}
    assert list(unpack(fields, catalog_size=10).rows()) == list(again.rows())


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"item_id": 1, "recommendations": [2, "3"]}', "list of ints"),
        ('{"item_id": -1, "recommendations": [2]}', "int >= 0"),
        ('{"item_id": 1}', "item_id"),
        ("not json", "item_id"),
    ],
)
def test_a_bad_item_list_file_is_refused_with_its_line(tmp_path, line, error):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"item_id": 0, "recommendations": [1]}\n' + line + "\n")
    with pytest.raises(ItemListError, match=f":2: .*{error}"):
        read_item_list_file(path)


def test_an_item_listed_twice_is_refused(tmp_path):
    path = tmp_path / "twice.jsonl"
    path.write_text('{"item_id": 0, "recommendations": [1]}\n' * 2)
    with pytest.raises(ItemListError, match="listed twice"):
        read_item_list_file(path)


def test_the_file_kind_is_told_from_the_first_line(tmp_path):
    users, other = tmp_path / "users.json", tmp_path / "other.json"
    users.write_text('{"user": 1, "tracks": [2, 3]}\n')
    other.write_text('{"track": 1, "recommendations": [2]}\n')
    assert list_file_kind(users) == "users"
    with pytest.raises(ListFileError, match="neither"):
        list_file_kind(other)


def test_corrupt_or_foreign_item_lists_do_not_load():
    fields = {k.encode(): v for k, v in pack(ItemLists.from_rows([(1, [2, 300])])).items()}
    with pytest.raises(ItemListError, match="catalog has 200"):
        unpack(fields, catalog_size=200)
    fields[b"tracks"] = fields[b"tracks"][:-4] + b"\x01\x00\x00\x00"
    with pytest.raises(ItemListError, match="sha256"):
        unpack(fields, catalog_size=1000)


# -- i2i ----------------------------------------------------------------------------------------
def history(*plays: tuple[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """(tracks, times) newest first, as `pick` takes them, from plays given newest first."""
    return np.array([t for t, _ in plays]), np.array([x for _, x in plays])


LISTS = ItemLists.from_rows([(10, [11, 12, 13]), (20, [21, 10, 22]), (30, [10, 20, 30])])


def test_i2i_serves_the_anchors_first_unheard_neighbour():
    tracks, times = history((10, 1.0), (11, 0.5))  # 11 has no list: never an anchor that helps
    answers = {pick(tracks, times, LISTS, Step("next", 1, 10, 1.0, seed)) for seed in range(50)}
    assert answers == {12}  # 11 was heard


def test_i2i_drops_an_anchor_whose_neighbours_were_all_heard():
    tracks, times = history((30, 1.0), (10, 0.1), (20, 0.1))  # 30's list is all heard
    answers = {pick(tracks, times, LISTS, Step("next", 1, 30, 1.0, seed)) for seed in range(200)}
    assert answers == {11, 21}  # 10's first unheard neighbour, or 20's


def test_i2i_never_draws_an_anchor_heard_for_zero():
    tracks, times = history((20, 0.0), (10, 1.0))
    answers = {pick(tracks, times, LISTS, Step("next", 1, 20, 0.0, seed)) for seed in range(200)}
    assert answers == {11}
    assert pick(*history((10, 0.0), (20, 0.0)), LISTS, Step("next", 1, 10, 0.0, 1)) is None


def test_i2i_draws_anchors_in_proportion_to_their_summed_time():
    # 10 heard twice (0.5 + 0.25), 20 once (0.25): 10 is drawn three times as often
    tracks, times = history((10, 0.5), (20, 0.25), (10, 0.25))
    answers = [pick(tracks, times, LISTS, Step("next", 1, 10, 0.5, seed)) for seed in range(4000)]
    share = answers.count(11) / len(answers)
    assert set(answers) == {11, 21}
    assert abs(share - 0.75) < 0.03  # 4,000 draws: the standard error is 0.007


def test_i2i_falls_back_without_item_lists_or_an_unheard_neighbour(catalog):
    ctx = Context(catalog, item_lists=MemoryItemLists())
    rec = recommenders.build("i2i", ctx, lists="sasrec_i2i")
    state = MemoryState()
    step = Step("next", 3, 10, 1.0, 7)
    assert rec.recommend(step, state.run(list(rec.ops(step)))).fallback is True
    ctx.item_lists = MemoryItemLists({"sasrec_i2i": ItemLists.from_rows([(10, [10])])})
    step = Step("next", 3, 10, 1.0, 8)
    assert rec.recommend(step, state.run(list(rec.ops(step)))).fallback is True  # only 10 itself
    ctx.item_lists = MemoryItemLists({"sasrec_i2i": LISTS})
    step = Step("next", 3, 10, 1.0, 9)
    answer = rec.recommend(step, state.run(list(rec.ops(step))))
    assert (answer.track, answer.fallback) == (11, False)


# -- the 2026 StickyArtist variants ---------------------------------------------------------------
@pytest.fixture
def lonely_catalog() -> Catalog:
    """Artist 0 has tracks 0..2, artist 1 only track 3, artist 2 tracks 4..99."""
    artists = [0, 0, 0, 1] + [2] * 96
    return Catalog.from_records(
        {"track": t, "artist": f"a{a}", "title": "", "genre": "g"} for t, a in enumerate(artists)
    )


def answers(name, catalog, track, time, seeds=range(300)):
    rec = recommenders.build(name, Context(catalog))
    return [rec.recommend(Step("next", 1, track, time, seed)).track for seed in seeds]


def test_sticky_artist_2026_never_serves_the_track_just_heard(lonely_catalog):
    assert set(answers("sticky_artist_2026", lonely_catalog, 0, 1.0)) == {1, 2}
    assert set(answers("sticky_artist_2026", lonely_catalog, 3, 1.0)) == {3}  # the only one
    assert 0 in set(answers("sticky_artist", lonely_catalog, 0, 1.0))  # the 2025 one may


def test_sticky_artist_mixed_goes_random_after_a_short_play(lonely_catalog):
    assert set(answers("sticky_artist_mixed", lonely_catalog, 0, 0.3)) == {1, 2}  # 0.3 stays
    after_skip = answers("sticky_artist_mixed", lonely_catalog, 0, 0.29)
    assert len(set(after_skip)) > 50  # uniform over the 100 tracks, not the artist's two


# -- contextual ---------------------------------------------------------------------------------
def test_contextual_serves_from_the_previous_tracks_list(catalog):
    ctx = Context(catalog, item_lists=MemoryItemLists({"contextual": LISTS}))
    rec = recommenders.build("contextual", ctx)
    answers = [rec.recommend(Step("next", 1, 20, 0.1, seed)) for seed in range(100)]
    served = {(a.track, a.fallback) for a in answers}
    assert served == {(21, False), (10, False), (22, False)}
    assert rec.recommend(Step("next", 1, 11, 0.1, 1)).fallback is True  # 11 has no list


# -- through the service, on a real Redis ---------------------------------------------------------
@pytest.fixture
def experiments_2026(tmp_path):
    path = tmp_path / "experiments.yml"
    arms = [
        {"name": "C", "recommender": "i2i", "params": {"lists": "sasrec_i2i"}},
        {"name": "T1", "recommender": "contextual", "params": {"lists": "sasrec_i2i"}},
        {"name": "T2", "recommender": "indexed", "params": {"lists": "hstu", "fallback": "random"}},
    ]
    path.write_text(yaml.safe_dump({"route": "HW", "experiments": [{"name": "HW", "arms": arms}]}))
    return path


def arm_users(app, arm: str, count: int) -> list[int]:
    assign = app.extensions["botify"].experiments.assign
    return [u for u in range(2000) if assign(u)["HW"] == arm][:count]


def chain_lists(n: int = N_TRACKS) -> ItemLists:
    """Each track's neighbours: the next three tracks (wrapping)."""
    return ItemLists.from_rows((t, [(t + 1) % n, (t + 2) % n, (t + 3) % n]) for t in range(n))


def test_i2i_through_the_service_reads_a_history_that_spans_sessions(
    make_app, experiments_2026, redis_client
):
    app = make_app(EXPERIMENTS=str(experiments_2026), POINTER_CACHE_SECONDS=0)
    client = app.test_client()
    user = arm_users(app, "C", 1)[0]
    ready = client.get("/ready").json
    assert ready["ready"] is False and "list set 'sasrec_i2i' has no active version" in str(ready)
    assert (
        deploy(redis_client, [], "sasrec_i2i", prefix=PREFIX, items=chain_lists()).items == N_TRACKS
    )
    deploy(redis_client, [(0, [1])], "hstu", prefix=PREFIX)
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["lists"]["sasrec_i2i"]["items"] == N_TRACKS
    assert ready.json["item_lists"]["sasrec_i2i"]["loaded"] is True
    # session 1: 50 heard fully, then 51 skipped; /last reports 60
    assert client.post(f"/next/{user}", json={"track": 50, "time": 1.0}).json["track"] == 51
    assert client.post(f"/next/{user}", json={"track": 51, "time": 0.0}).json["track"] == 52
    client.post(f"/last/{user}", json={"track": 60, "time": 1.0})
    key = f"{PREFIX}:history:{{{user}}}"
    assert redis_client.exists(key)  # /last pushed and did not clear
    # session 2 starts at 49: anchors 49, 60 and 50 (51 weighs 0): never a track heard before
    served = client.post(f"/next/{user}", json={"track": 49, "time": 1.0}).json["track"]
    assert served in {52, 61}  # 49 -> 50, 51 heard -> 52; 60 -> 61; 50 -> 52 (not 50: heard)
    heard = np.frombuffer(redis_client.get(key), dtype=[("track", "<u4"), ("time", "<f4")])
    assert heard["track"].tolist() == [50, 51, 60, 49]
    events = [e for e in read_events(log_dir(app)) if e["message"] == "next"]
    assert not any(e["fallback"] for e in events)


def test_contextual_keeps_serving_its_lists_while_redis_is_away(
    make_app, experiments_2026, redis_client, redis_server
):
    deploy(redis_client, [], "sasrec_i2i", prefix=PREFIX, items=chain_lists())
    app = make_app(EXPERIMENTS=str(experiments_2026))
    client = app.test_client()
    user = arm_users(app, "T1", 1)[0]
    assert client.post(f"/next/{user}", json={"track": 5, "time": 1.0}).json["track"] in {6, 7, 8}
    source = app.extensions["botify"].ctx.item_lists
    source.state.client.connection_pool.disconnect()
    source.state.client.connection_pool.connection_kwargs["port"] = 1  # nothing listens there
    source.state.lists["sasrec_i2i"].forget()
    for _ in range(3):
        answer = client.post(f"/next/{user}", json={"track": 5, "time": 1.0})
        assert answer.status_code == 200 and answer.json["track"] in {6, 7, 8}


def test_item_lists_that_do_not_fit_the_catalog_are_refused_on_ready(
    make_app, experiments_2026, redis_client
):
    deploy(
        redis_client,
        [],
        "sasrec_i2i",
        prefix=PREFIX,
        items=ItemLists.from_rows([(1, [N_TRACKS + 5])]),
    )
    deploy(redis_client, [(0, [1])], "hstu", prefix=PREFIX)
    app = make_app(EXPERIMENTS=str(experiments_2026))
    client = app.test_client()
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "catalog has 200 tracks" in ready.json["item_lists"]["sasrec_i2i"]["reason"]
    user = arm_users(app, "C", 1)[0]
    answer = client.post(f"/next/{user}", json={"track": 1, "time": 1.0}).json
    assert 0 <= answer["track"] < N_TRACKS  # the Random fallback answers


def test_user_lists_of_the_courses_shape_are_served_by_indexed_with_a_random_fallback(
    make_app, experiments_2026, redis_client, tmp_path
):
    # hstu_recommendations.json: a line per user for some of the users, 200 tracks each
    path = tmp_path / "hstu_recommendations.json"
    rng = np.random.default_rng(1)
    app = make_app(EXPERIMENTS=str(experiments_2026))
    with_list, without = arm_users(app, "T2", 40)[:20], arm_users(app, "T2", 40)[20:]
    rows = {u: rng.choice(N_TRACKS, 200, replace=False).tolist() for u in with_list}
    path.write_text("".join(json.dumps({"user": u, "tracks": t}) + "\n" for u, t in rows.items()))
    assert list_file_kind(path) == "users"
    from botify.deploy import read_lists

    deploy(redis_client, read_lists(path), "hstu", prefix=PREFIX)
    deploy(redis_client, [], "sasrec_i2i", prefix=PREFIX, items=chain_lists())
    client = app.test_client()
    for user in with_list:
        answer = client.post(f"/next/{user}", json={"track": 3, "time": 1.0}).json
        assert answer["track"] in rows[user]
    artists = set()
    for user in without:
        artists.add(
            artist_of(client.post(f"/next/{user}", json={"track": 3, "time": 1.0}).json["track"])
        )
    assert len(artists) > 5  # Random, not StickyArtist (which would stay on artist 0)
    events = [e for e in read_events(log_dir(app)) if e["message"] == "next"]
    assert [e["fallback"] for e in events] == [False] * 20 + [True] * 20


def test_item_lists_go_live_roll_back_and_come_back_from_the_journal(redis_client, tmp_path):
    from ops.journal import Journal
    from ops.keeper import Keeper

    journal = Journal(tmp_path / "journal")
    first = deploy(
        redis_client, [], "lightfm_i2i", prefix=PREFIX, items=chain_lists(), journal=journal
    )
    second = deploy(redis_client, [], "lightfm_i2i", prefix=PREFIX, items=ItemLists.from_rows([(1, [2])]),
                    journal=journal)  # fmt: skip
    assert (
        rollback(redis_client, "lightfm_i2i", prefix=PREFIX, journal=journal).active == first.active
    )
    keeper = Keeper(
        redis_client, tmp_path / "journal", None, PREFIX
    )  # every list set of the journal
    assert keeper.check() == []
    redis_client.flushall()
    assert keeper.check() == [f"lightfm_i2i/{first.active}"]
    fields = redis_client.hgetall(items_key(PREFIX, "lightfm_i2i", first.active))
    assert len(unpack(fields, N_TRACKS)) == N_TRACKS
    assert second.active != first.active
    with pytest.raises(DeployError, match="nothing to deploy"):
        deploy(redis_client, [], "lightfm_i2i", prefix=PREFIX)
