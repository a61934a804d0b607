from ops.redis_server import RedisServer


def test_redis_fixture_is_a_real_server(redis_client):
    redis_client.set("k", b"\x00\x01")
    assert redis_client.get("k") == b"\x00\x01"
    assert redis_client.info("server")["redis_version"]


def test_server_restarts_on_the_same_port():
    server = RedisServer().start()
    port = server.port
    server.stop()
    assert not server.running
    server.start()
    assert server.port == port and server.running
    server.stop()
