"""deploy/rollback against a real Redis, read back through the service's reader (TopLists.get)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from botify.toplists import TopLists
from tests.conftest import PREFIX
from trainer.cli import cli
from trainer.deploy import DeployError, deploy, read_recs, rollback


def write_recs(path, lists: dict[int, list[int]]):
    path.write_text("".join(json.dumps({"user": u, "tracks": t}) + "\n" for u, t in lists.items()))
    return path


def test_deploy_switches_versions_and_rollback_restores_the_previous(redis_client):
    reader = TopLists(redis_client, "core", PREFIX)
    first = deploy(redis_client, [(1, [5, 6, 7]), (2, [8])], prefix=PREFIX)
    assert first.previous is None and first.users == 2
    assert reader.get(1).tolist() == [5, 6, 7] and reader.get(2).tolist() == [8]

    second = deploy(redis_client, [(1, [9, 10]), (3, [11])], prefix=PREFIX)
    assert (second.previous, reader.active_version()) == (first.active, second.active)
    assert reader.get(1).tolist() == [9, 10] and reader.get(2) is None
    assert reader.get(2, version=first.active).tolist() == [8]  # previous version kept

    back = rollback(redis_client, prefix=PREFIX)
    assert (back.active, back.previous) == (first.active, second.active)
    assert reader.get(1).tolist() == [5, 6, 7] and reader.get(3) is None
    with pytest.raises(DeployError, match="replaced nothing"):
        rollback(redis_client, prefix=PREFIX)


def test_old_versions_are_pruned_but_active_and_previous_survive(redis_client):
    made = [deploy(redis_client, [(1, [i])], prefix=PREFIX, keep=3).active for i in range(4)]
    reader = TopLists(redis_client, "core", PREFIX)
    assert list(reader.versions()) == made[1:]
    assert reader.count(made[0]) == 0
    assert rollback(redis_client, prefix=PREFIX).active == made[2]
    assert rollback(redis_client, prefix=PREFIX).active == made[1]
    with pytest.raises(DeployError, match="was pruned"):
        rollback(redis_client, prefix=PREFIX)  # made[1] replaced made[0], pruned by keep=3
    after = deploy(redis_client, [(1, [99])], prefix=PREFIX, keep=2)
    assert after.previous == made[1]
    assert set(reader.versions()) == {made[1], made[3], after.active}  # previous survives
    assert rollback(redis_client, prefix=PREFIX).active == made[1]  # undo returns to what was live


def test_a_count_mismatch_is_not_activated(redis_client, monkeypatch):
    deploy(redis_client, [(1, [1])], prefix=PREFIX)
    reader = TopLists(redis_client, "core", PREFIX)
    before = reader.active_version()
    monkeypatch.setattr(TopLists, "count", lambda self, version: 0)  # keys lost under the writer
    with pytest.raises(DeployError, match="0 lists in Redis, expected 2; not activated"):
        deploy(redis_client, [(1, [2]), (2, [3])], prefix=PREFIX)
    assert reader.active_version() == before and list(reader.versions()) == [before]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no lists"),
        ('{"user": 1}\n', "not a {'user', 'tracks'} JSON object"),
        ('{"user": 1, "tracks": [1, "2"]}\n', "tracks a list of ints"),
        ('{"user": -1, "tracks": [1]}\n', "user must be an int >= 0"),
        ('{"user": 1, "tracks": [1]}\n{"user": 1, "tracks": [2]}\n', "user 1 listed twice"),
    ],
)
def test_bad_list_files_are_refused_before_writing(tmp_path, content, message):
    (tmp_path / "r.jsonl").write_text(content)
    with pytest.raises(DeployError, match=message.replace("{", r"\{").replace("[", r"\[")):
        read_recs(tmp_path / "r.jsonl")


def test_cli_deploy_prints_the_version_and_rollback_restores(redis_url, redis_client, tmp_path):
    runner = CliRunner()
    args = ["--redis-url", redis_url, "--name", "core"]
    v1 = runner.invoke(
        cli, ["deploy", "--recs", str(write_recs(tmp_path / "a.jsonl", {7: [1, 2]})), *args]
    )
    v2 = runner.invoke(
        cli, ["deploy", "--recs", str(write_recs(tmp_path / "b.jsonl", {7: [3]})), *args]
    )
    assert v1.exit_code == v2.exit_code == 0, v1.output + v2.output
    reader = TopLists(redis_client, "core", PREFIX)
    assert reader.active_version() == v2.stdout.strip() and reader.get(7).tolist() == [3]
    back = runner.invoke(cli, ["rollback", *args])
    assert back.exit_code == 0 and back.stdout.strip() == v1.stdout.strip()
    assert reader.get(7).tolist() == [1, 2]
    unreachable = runner.invoke(cli, ["rollback", "--redis-url", "redis://127.0.0.1:1/0"])
    assert unreachable.exit_code == 1 and "redis at redis://127.0.0.1:1/0" in unreachable.output


def test_cli_deploys_where_the_service_reads_under_a_key_prefix(
    redis_url, redis_client, tmp_path, monkeypatch
):
    """BOTIFY_KEY_PREFIX set once: the trainer's deploy and rollback write the keys the service
    reads (they used to write under the default prefix whatever it said)."""
    from botify.app import create_app
    from tests.botify.conftest import EXPERIMENTS

    tracks_json = tmp_path / "tracks.json"
    tracks_json.write_text("".join(
        json.dumps({"track": t, "artist": f"a{t // 10}", "title": "", "genre": "", "pop": 1.0}) + "\n"
        for t in range(200)
    ))  # fmt: skip

    monkeypatch.setenv("BOTIFY_KEY_PREFIX", "lab")
    monkeypatch.setenv("BOTIFY_REDIS_URL", redis_url)
    runner = CliRunner()
    first = write_recs(tmp_path / "a.jsonl", {u: [u % 100 + 1, u % 100 + 2] for u in range(300)})
    second = write_recs(tmp_path / "b.jsonl", {u: [u % 100 + 3] for u in range(300)})
    v1 = runner.invoke(cli, ["deploy", "--recs", str(first)])
    v2 = runner.invoke(cli, ["deploy", "--recs", str(second)])
    assert v1.exit_code == v2.exit_code == 0, v1.output + v2.output
    assert not redis_client.keys(f"{PREFIX}:*")
    app = create_app({"CATALOG": str(tracks_json), "EXPERIMENTS": str(EXPERIMENTS),
                      "LOG_DIR": str(tmp_path / "log"), "POINTER_CACHE_SECONDS": 0})  # fmt: skip
    service = app.extensions["botify"]
    assert service.settings.key_prefix == "lab"
    client = app.test_client()
    ready = client.get("/ready").json["lists"]["core"]
    assert ready == {"active": v2.stdout.strip(), "users": 300, "items": 0}
    user = next(u for u in range(300) if service.experiments.assign(u)["AB"] == "T1")
    assert (
        client.post(f"/next/{user}", json={"track": 0, "time": 1.0}).json["track"] == user % 100 + 3
    )
    back = runner.invoke(cli, ["rollback"])
    assert back.exit_code == 0 and back.stdout.strip() == v1.stdout.strip()
    assert (
        client.post(f"/next/{user}", json={"track": 0, "time": 1.0}).json["track"] == user % 100 + 1
    )
