"""Runs last (module name sorts last): after every other suite has thrown its
malformed, oversized, stalled and concurrent requests at it, the very same
gatehouse process must still be alive and answering normally."""
from conftest import login, raw_request


def test_same_gatehouse_process_still_alive_and_answering(gatehouse_server, gatehouse):
    if gatehouse_server.proc is not None:
        assert gatehouse_server.proc.poll() is None, (
            f"gatehouse exited with {gatehouse_server.proc.returncode}:\n"
            + gatehouse_server.log_tail())
    r = raw_request(gatehouse, "GET", "/openapi.json")
    assert r.status == 200, r
    token = login(gatehouse, "johndoe", "secret", scope="me items")
    r = raw_request(gatehouse, "GET", "/users/me/items/", [("Authorization", "Bearer " + token)])
    assert r.status == 200 and r.json() == [{"item_id": "Foo", "owner": "johndoe"}], r
