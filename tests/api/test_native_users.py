"""Sign-up, log-in, sessions: Parse wire behaviour and the catalog's session cases (B09, A10)."""

from __future__ import annotations

import json

from tests.api_support import APP_ID, Api, pointer


async def test_signup_login_me_logout_round_trip(api: Api) -> None:
    r = await api.post("/parse/users", {"username": "carol", "password": "pw-123456", "email": "carol@example.org"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"objectId", "createdAt", "sessionToken"}
    assert r.headers["location"].endswith(f"/parse/users/{body['objectId']}")
    token = body["sessionToken"]
    assert token.startswith("r:")

    me = await api.client.get("/parse/users/me", headers={**api.headers(), "X-Parse-Session-Token": token})
    assert me.status_code == 200
    data = me.json()
    assert data["username"] == "carol" and data["email"] == "carol@example.org"
    assert data["sessionToken"] == token
    assert "password" not in data and "_hashed_password" not in data

    r = await api.client.post("/parse/logout", headers={**api.headers(), "X-Parse-Session-Token": token})
    assert r.status_code == 200 and r.json() == {}
    again = await api.client.get("/parse/users/me", headers={**api.headers(), "X-Parse-Session-Token": token})
    assert again.status_code == 400
    assert again.json() == {"code": 209, "error": "Invalid session token"}


async def test_signup_validation_codes(api: Api) -> None:
    r = await api.post("/parse/users", {"password": "x"})
    assert (r.status_code, r.json()["code"]) == (400, 200)
    r = await api.post("/parse/users", {"username": "dave"})
    assert (r.status_code, r.json()["code"]) == (400, 201)
    assert (await api.post("/parse/users", {"username": "dave", "password": "p"})).status_code == 201
    r = await api.post("/parse/users", {"username": "dave", "password": "p"})
    assert (r.status_code, r.json()["code"]) == (400, 202)


async def test_signup_cannot_assign_privileges(api: Api) -> None:
    for body, code in (
        ({"username": "eve", "password": "p", "objectId": "role:admin"}, 105),
        ({"username": "eve", "password": "p", "emailVerified": True}, 119),
        ({"username": "eve", "password": "p", "roles": ["admin"]}, 119),
        ({"username": "eve", "password": "p", "sessionToken": "r:abc"}, 105),
    ):
        r = await api.post("/parse/users", body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    r = await api.post("/parse/users", {"username": "eve", "password": "p", "ACL": {"*": {"read": True}}})
    assert r.status_code == 201
    token = r.json()["sessionToken"]
    me = (await api.client.get("/parse/users/me", headers={**api.headers(), "X-Parse-Session-Token": token})).json()
    assert "*" not in me["ACL"], "a client-supplied ACL must not widen access"


async def test_login_errors_are_identical_for_unknown_user_and_bad_password(demo: Api) -> None:
    unknown = await demo.post("/parse/login", {"username": "nobody@example.org", "password": "x"})
    wrong = await demo.post("/parse/login", {"username": "alice@example.org", "password": "x"})
    assert unknown.status_code == wrong.status_code == 404
    assert unknown.json() == wrong.json() == {"code": 101, "error": "Invalid username/password."}


async def test_login_via_get_query_and_js_sdk_body(demo: Api) -> None:
    r = await demo.client.get(
        "/parse/login", params={"username": "bob@example.org", "password": "demo-pass-2026"}, headers=demo.headers()
    )
    assert r.status_code == 200 and r.json()["username"] == "bob@example.org"
    body = f'{{"_method":"GET","_ApplicationId":"{APP_ID}","username":"bob@example.org","password":"demo-pass-2026"}}'
    r = await demo.client.post("/parse/login", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["sessionToken"].startswith("r:")


async def test_session_token_type_confusion_is_invalid_session(demo: Api) -> None:
    for token in ({"$regex": ".*"}, ["r:x"], 1, ""):
        body = {"_method": "GET", "_ApplicationId": APP_ID, "_SessionToken": token}
        r = await demo.client.post("/parse/users/me", json=body)
        assert r.status_code == 400 and r.json()["code"] == 209, (token, r.text)


async def test_sessions_me_and_foreign_sessions(demo: Api) -> None:
    r = await demo.get("/parse/sessions/me", "alice")
    assert r.status_code == 200
    mine = r.json()
    assert mine["sessionToken"] == demo.tokens["alice"]
    assert mine["user"]["objectId"] == demo.ids["alice:user"]
    bob_session = (await demo.get("/parse/sessions/me", "bob")).json()["objectId"]
    r = await demo.get(f"/parse/sessions/{bob_session}", "alice")
    assert r.status_code == 404 and r.json()["code"] == 101
    r = await demo.delete(f"/parse/sessions/{bob_session}", "alice")
    assert r.status_code == 404
    assert (await demo.get("/parse/users/me", "bob")).status_code == 200


async def test_app_id_required(api: Api) -> None:
    r = await api.client.get("/parse/users/me")
    assert r.status_code == 403 and r.json() == {"error": "unauthorized"}
    r = await api.client.get("/parse/users/me", headers={"X-Parse-Application-Id": "wrong"})
    assert r.status_code == 403


async def test_wrong_master_key_is_refused(api: Api) -> None:
    r = await api.client.get(
        "/parse/schemas", headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": "guess"}
    )
    assert r.status_code == 403 and r.json() == {"error": "unauthorized"}


async def test_users_edit_only_themselves_and_never_verification(demo: Api) -> None:
    alice, bob = demo.ids["alice:user"], demo.ids["bob:user"]
    r = await demo.put(f"/parse/users/{alice}", {"emailVerified": True}, "alice")
    assert r.status_code == 400 and r.json()["code"] == 119
    r = await demo.put(f"/parse/users/{bob}", {"username": "owned"}, "alice")
    assert r.status_code == 404 and r.json()["code"] == 101
    r = await demo.delete(f"/parse/users/{bob}", "alice")
    assert r.status_code == 404
    assert (await demo.get("/parse/users/me", "bob")).json()["username"] == "bob@example.org"
    r = await demo.put(f"/parse/users/{alice}", {"password": "new-secret-1"}, "alice")
    assert r.status_code == 200
    await demo.login("alice@example.org", "new-secret-1")


async def test_roles_within_roles_grant_their_access(demo: Api) -> None:
    """A user in a child role has the parent role's access (Parse's ``roles`` relation), on the
    session path that reads direct roles in one statement and falls back to the recursive query."""
    alice_user = demo.ids["alice:user"]
    child = await demo.post(
        "/parse/roles",
        {
            "name": "nested_child",
            "ACL": {},
            "users": {"__op": "AddRelation", "objects": [pointer("_User", alice_user)]},
        },
        master=True,
    )
    assert child.status_code == 201, child.text
    parent = await demo.post(
        "/parse/roles",
        {"name": "nested_parent", "ACL": {"role:nested_parent": {"read": True}}},
        master=True,
    )
    assert parent.status_code == 201, parent.text
    where = json.dumps({"name": "nested_parent"})
    before = await demo.find("_Role", "alice", where=where)
    assert before.status_code == 200 and before.json()["results"] == []
    r = await demo.put(
        f"/parse/roles/{parent.json()['objectId']}",
        {"roles": {"__op": "AddRelation", "objects": [pointer("_Role", child.json()["objectId"])]}},
        master=True,
    )
    assert r.status_code == 200, r.text
    after = await demo.find("_Role", "alice", where=where)
    assert [x["name"] for x in after.json()["results"]] == ["nested_parent"]
    assert (await demo.find("_Role", "bob", where=where)).json()["results"] == []
