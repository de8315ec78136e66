"""The OpenAPI document is valid, complete, and says what the server really answers."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from harness import Agent, base_config, free_port
from helpers import sealed, share

from vault import create_app
from vault.api.openapi import DOCUMENT
from vault.ids import new_id

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Flask adds HEAD to every GET rule and OPTIONS to every rule; OpenAPI leaves both implicit.
IMPLICIT = {"HEAD", "OPTIONS"}
# docs/api.md, "Conventions": the only statuses the API may answer.
CONTRACT_STATUSES = {"200", "201", "204", "400", "401", "403", "404", "409", "410", "413", "429",
                     "503"}
PROBLEM = "application/problem+json"


def resolve(node: Any) -> Any:
    """Follow local `$ref`s (`#/...`) until a node that is not a reference."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = DOCUMENT
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def flask_routes(app: Any) -> dict[str, set[str]]:
    """`{openapi path: methods}` of every JSON route (not static files or HTML pages)."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("pages."):
            continue  # HTML pages are not part of the JSON API
        # `<converter(args):name>` and `<name>` both become `{name}`.
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(set(rule.methods or ()) - IMPLICIT)
    return routes


def documented_response(path: str, method: str, status: int) -> dict[str, Any]:
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    return dict(resolve(responses[str(status)]))


def assert_documented(rv: Any, path: str, method: str) -> None:
    """The response's status, content type, headers and body are what the document says."""
    response = documented_response(path, method, rv.status_code)
    content = response.get("content")
    if content is None:
        assert rv.get_data() == b"", f"{rv.status_code} is documented without a body"
    else:
        assert rv.mimetype in content, f"{rv.mimetype} is not documented for {rv.status_code}"
        schema = content[rv.mimetype]["schema"]
        # Local refs (#/components/...) resolve against the root: give it the components.
        root = {**copy.deepcopy(schema), "components": DOCUMENT["components"]}
        jsonschema.validate(json.loads(rv.get_data()), root,
                            cls=jsonschema.Draft202012Validator,
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for name, header in response.get("headers", {}).items():
        header = resolve(header)
        if header.get("required"):
            assert name in rv.headers, f"{rv.status_code} lacks its {name} header"


# -- the document itself -----------------------------------------------------------------------

def test_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    validate(copy.deepcopy(DOCUMENT), cls=OpenAPIV31SpecValidator)


def test_document_is_openapi_3_1_with_unique_operation_ids() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    assert DOCUMENT["info"]["title"] and DOCUMENT["info"]["version"]
    ids = [operation["operationId"] for _, _, operation in operations()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", i) for i in ids)


def test_every_reference_resolves() -> None:
    for ref in set(refs(DOCUMENT)):
        assert resolve({"$ref": ref}) is not None, ref


def test_every_schema_is_a_valid_json_schema() -> None:
    for name, schema in DOCUMENT["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert name


def test_path_parameters_match_the_path_templates() -> None:
    for path, method, operation in operations():
        declared = {p["name"] for p in map(resolve, operation.get("parameters", []))
                    if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path)), f"{method} {path}"


def test_id_and_ticket_parameters_have_the_exact_formats() -> None:
    params = DOCUMENT["components"]["parameters"]
    for name in ("RequestId", "SecretId"):
        assert resolve(params[name]["schema"])["pattern"] == "^[A-Za-z0-9_-]{28}$"
    assert resolve(params["Ticket"]["schema"])["pattern"] == "^[A-Za-z0-9_-]{1,64}$"


def test_statuses_are_those_of_the_contract_with_their_headers() -> None:
    for path, method, operation in operations():
        for status, response in operation["responses"].items():
            where = f"{method.upper()} {path} {status}"
            assert status in CONTRACT_STATUSES, where
            response = resolve(response)
            headers = {name: resolve(h) for name, h in response.get("headers", {}).items()}
            if status in {"429", "503"}:
                assert headers.get("Retry-After", {}).get("required") is True, where
            if status == "401":
                assert headers.get("WWW-Authenticate", {}).get("required") is True, where
            if status.startswith("4") or (status == "503" and path != "/readyz"):
                schema = response["content"][PROBLEM]["schema"]
                assert {"$ref": "#/components/schemas/Problem"} in schema["allOf"], where
                assert {"status": {"const": int(status)}}.items() <= {
                    k: v for part in schema["allOf"][1:]
                    for k, v in part.get("properties", {}).items()}.items(), where


def test_problem_schema_has_the_rfc_9457_members() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"invalid_params", "reason", "revealed_by", "revealed_at"} <= set(
        problem["properties"])
    assert problem["additionalProperties"] is True
    item = problem["properties"]["invalid_params"]["items"]
    assert set(item["required"]) == {"name", "reason"}


def test_security_is_declared_where_the_views_authenticate() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert (schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == (
        "cookie", "__Host-vault_session")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    authenticated = {(m, p) for p, m, o in operations() if o["security"]}
    assert authenticated == {
        ("post", "/api/v1/requests"), ("post", "/api/v1/secrets/{secret_id}/reveal"),
        ("post", "/api/v1/secrets/{secret_id}/ack"), ("get", "/api/v1/tickets/{ticket}"),
        ("put", "/api/v1/tickets/{ticket}/assignee"), ("post", "/api/v1/tickets/{ticket}/close"),
        ("post", "/api/v1/tickets/{ticket}/reopen"), ("get", "/api/v1/session"),
        ("delete", "/api/v1/session"), ("delete", "/api/v1/secrets/{secret_id}"),
        ("post", "/api/v1/passkeys/options"), ("post", "/api/v1/passkeys"),
    }
    # Anonymous as one alternative: only the customer's delete (its manage token), beside the
    # agent's discard.
    optional = {(m, p) for p, m, o in operations() if {} in o["security"]}
    assert optional == {("delete", "/api/v1/secrets/{secret_id}")}
    for path, method, operation in operations():
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), f"{method} {path}"
            if method != "get" and "cookieAuth" in requirement:
                assert "csrfToken" in requirement, f"{method} {path}: cookie without CSRF"


def test_links_name_real_operations_and_parameters() -> None:
    by_id = {o["operationId"]: (p, o) for p, _, o in operations()}
    seen = set()
    for path, method, operation in operations():
        for status, response in operation["responses"].items():
            for name, link in resolve(response).get("links", {}).items():
                target_path, target = by_id[link["operationId"]]
                params = {(p["in"], p["name"]) for p in map(resolve, target.get("parameters", []))}
                for key in link["parameters"]:
                    location, _, param = key.rpartition(".")
                    assert (location or "path", param) in params, f"{name}: {key}"
                seen.add((operation["operationId"], link["operationId"]))
                assert status.startswith("2"), f"{method} {path} {name}"
                assert target_path
    assert {("createSecret", "getSecret"), ("createSecret", "deleteSecret"),
            ("createSecret", "revealSecret"), ("createRequest", "getRequest"),
            ("createRequest", "fillRequest"), ("fillRequest", "getSecret"),
            ("fillRequest", "revealSecret"), ("revealSecret", "ackSecret")} <= seen


# -- the document against the app ----------------------------------------------------------------

def test_served_document_is_this_document(client: Any) -> None:
    rv = client.get("/api/v1/openapi.json")
    assert rv.status_code == 200
    assert rv.mimetype == "application/json"
    assert rv.get_json() == json.loads(json.dumps(DOCUMENT))


def test_every_route_is_documented_with_the_same_methods(app: Any) -> None:
    documented = {path: {m.upper() for m in item if m in METHODS}
                  for path, item in DOCUMENT["paths"].items()}
    assert flask_routes(app) == documented


# -- real responses validate against their documented schemas -------------------------------------

def test_create_secret_201(client: Any) -> None:
    envelope, _ = sealed("1001")
    rv = client.post("/api/v1/secrets", json={"ticket": "1001", "kind": "wordpress",
                                             "envelope": envelope, "ttl": 3600})
    assert rv.status_code == 201
    assert_documented(rv, "/api/v1/secrets", "POST")


def test_secret_metadata_200_waiting_and_revealed(client: Any, agent: Agent) -> None:
    secret = share(client, "1002")
    rv = client.get(f"/api/v1/secrets/{secret['id']}")
    assert rv.status_code == 200 and rv.get_json()["state"] == "waiting"
    assert_documented(rv, "/api/v1/secrets/{secret_id}", "GET")
    assert client.post(f"/api/v1/secrets/{secret['id']}/reveal",
                       headers=agent.headers).status_code == 200
    rv = client.get(f"/api/v1/secrets/{secret['id']}")
    assert rv.status_code == 200 and rv.get_json()["state"] == "revealed"
    assert_documented(rv, "/api/v1/secrets/{secret_id}", "GET")


def test_reveal_200_then_ack_204_then_reveal_410_revealed(client: Any, agent: Agent) -> None:
    secret = share(client, "1003")
    rv = client.post(f"/api/v1/secrets/{secret['id']}/reveal", headers=agent.headers, json={})
    assert rv.status_code == 200
    assert rv.get_json()["envelope"] == secret["envelope"]
    assert_documented(rv, "/api/v1/secrets/{secret_id}/reveal", "POST")
    rv = client.post(f"/api/v1/secrets/{secret['id']}/ack", headers=agent.headers)
    assert rv.status_code == 204
    assert_documented(rv, "/api/v1/secrets/{secret_id}/ack", "POST")
    rv = client.post(f"/api/v1/secrets/{secret['id']}/reveal", headers=agent.headers)
    assert rv.status_code == 410
    assert rv.get_json()["reason"] == "revealed"
    assert_documented(rv, "/api/v1/secrets/{secret_id}/reveal", "POST")


def test_unknown_id_404(client: Any, agent: Agent) -> None:
    unknown = new_id("1004")
    for method, path, template in [
            ("GET", f"/api/v1/secrets/{unknown}", "/api/v1/secrets/{secret_id}"),
            ("GET", f"/api/v1/requests/{unknown}", "/api/v1/requests/{request_id}"),
            ("POST", f"/api/v1/secrets/{unknown}/reveal", "/api/v1/secrets/{secret_id}/reveal")]:
        rv = client.open(path, method=method, headers=agent.headers)
        assert rv.status_code == 404, path
        assert_documented(rv, template, method)


def test_invalid_ticket_400_with_invalid_params(client: Any, agent: Agent) -> None:
    rv = client.post("/api/v1/requests", headers=agent.headers, json={"ticket": "no spaces"})
    assert rv.status_code == 400
    assert rv.get_json()["invalid_params"][0]["name"] == "ticket"
    assert_documented(rv, "/api/v1/requests", "POST")
    rv = client.get("/api/v1/tickets/no%20spaces", headers=agent.headers)
    assert rv.status_code == 400
    assert_documented(rv, "/api/v1/tickets/{ticket}", "GET")


def test_request_flow_and_ticket_view(client: Any, agent: Agent, admin: Agent) -> None:
    rv = client.post("/api/v1/requests", headers=agent.headers,
                     json={"ticket": "1005", "note": "WordPress admin, please"})
    assert rv.status_code == 201
    assert_documented(rv, "/api/v1/requests", "POST")
    request_id = rv.get_json()["id"]
    rv = client.get(f"/api/v1/requests/{request_id}")
    assert rv.status_code == 200
    assert_documented(rv, "/api/v1/requests/{request_id}", "GET")
    envelope, _ = sealed("1005", "other")
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "other", "envelope": envelope})
    assert rv.status_code == 201
    assert_documented(rv, "/api/v1/requests/{request_id}/secret", "POST")
    rv = client.get("/api/v1/tickets/1005", headers=agent.headers)
    assert rv.status_code == 200
    assert rv.get_json()["events"], "the ticket view carries its audit events"
    assert_documented(rv, "/api/v1/tickets/{ticket}", "GET")
    rv = client.post("/api/v1/tickets/1005/close", headers=admin.headers)
    assert rv.status_code == 200 and rv.get_json()["purged"] == 1
    assert_documented(rv, "/api/v1/tickets/{ticket}/close", "POST")
    rv = client.get(f"/api/v1/requests/{request_id}")
    assert rv.status_code == 410
    assert_documented(rv, "/api/v1/requests/{request_id}", "GET")
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "other", "envelope": envelope})
    assert rv.status_code == 410
    assert_documented(rv, "/api/v1/requests/{request_id}/secret", "POST")


def test_refusals_401_403_409_validate(client: Any, agent: Agent, admin: Agent,
                                       make_agent: Any) -> None:
    rv = client.post("/api/v1/requests", json={"ticket": "1006"})
    assert rv.status_code == 401
    assert_documented(rv, "/api/v1/requests", "POST")
    rv = client.put("/api/v1/tickets/1006/assignee", headers=agent.headers,
                    json={"agent": agent.email})
    assert rv.status_code == 403
    assert_documented(rv, "/api/v1/tickets/{ticket}/assignee", "PUT")
    rv = client.put("/api/v1/tickets/1006/assignee", headers=admin.headers,
                    json={"agent": admin.email})
    assert rv.status_code == 200
    assert_documented(rv, "/api/v1/tickets/{ticket}/assignee", "PUT")
    secret = share(client, "1006")
    rv = client.post(f"/api/v1/secrets/{secret['id']}/reveal", headers=agent.headers)
    assert rv.status_code == 403
    assert_documented(rv, "/api/v1/secrets/{secret_id}/reveal", "POST")
    assert client.post("/api/v1/tickets/1006/close", headers=admin.headers).status_code == 200
    envelope, _ = sealed("1006")
    rv = client.post("/api/v1/secrets", json={"ticket": "1006", "kind": "wordpress",
                                             "envelope": envelope})
    assert rv.status_code == 409
    assert_documented(rv, "/api/v1/secrets", "POST")
    rv = client.post("/api/v1/tickets/1006/reopen", headers=admin.headers)
    assert rv.status_code == 200
    assert_documented(rv, "/api/v1/tickets/{ticket}/reopen", "POST")


def test_delete_secret_204_then_410_deleted(client: Any) -> None:
    secret = share(client, "1007")
    rv = client.delete(f"/api/v1/secrets/{secret['id']}")
    assert rv.status_code == 403
    assert_documented(rv, "/api/v1/secrets/{secret_id}", "DELETE")
    rv = client.delete(f"/api/v1/secrets/{secret['id']}",
                       headers={"X-Manage-Token": secret["manage_token"]})
    assert rv.status_code == 204
    assert_documented(rv, "/api/v1/secrets/{secret_id}", "DELETE")
    rv = client.get(f"/api/v1/secrets/{secret['id']}")
    assert rv.status_code == 410 and rv.get_json()["reason"] == "deleted"
    assert_documented(rv, "/api/v1/secrets/{secret_id}", "GET")


def test_discard_by_the_assignee_204_and_its_refusals(client: Any, agent: Any,
                                                      make_agent: Any) -> None:
    path = "/api/v1/secrets/{secret_id}"
    assert client.post("/api/v1/requests", json={"ticket": "1010"},
                       headers=agent.headers).status_code == 201
    secret = share(client, "1010")
    rv = client.delete(f"/api/v1/secrets/{secret['id']}",
                       headers=make_agent("bob@example.com").headers)
    assert rv.status_code == 403
    assert_documented(rv, path, "DELETE")
    rv = client.delete(f"/api/v1/secrets/{secret['id']}",
                       headers={"Authorization": "Bearer vt_" + "A" * 43})
    assert rv.status_code == 401
    assert_documented(rv, path, "DELETE")
    rv = client.delete(f"/api/v1/secrets/{new_id('1010')}", headers=agent.headers)
    assert rv.status_code == 404
    assert_documented(rv, path, "DELETE")
    rv = client.delete(f"/api/v1/secrets/{secret['id']}", headers=agent.headers)
    assert rv.status_code == 204
    assert_documented(rv, path, "DELETE")
    for method in ("DELETE", "GET"):
        rv = client.open(f"/api/v1/secrets/{secret['id']}", method=method, headers=agent.headers)
        assert rv.status_code == 410 and rv.get_json()["reason"] == "discarded"
        assert_documented(rv, path, method)


def test_a_fill_on_a_full_ticket_201_and_a_share_409_full(make_app: Any, make_agent: Any
                                                          ) -> None:
    client = make_app(max_waiting_per_ticket=1).test_client()
    agent = make_agent("alice@example.com")
    share(client, "1011")
    envelope, _ = sealed("1011")
    rv = client.post("/api/v1/secrets", json={"ticket": "1011", "kind": "wordpress",
                                             "envelope": envelope})
    assert rv.status_code == 409 and rv.get_json()["reason"] == "ticket-full"
    assert_documented(rv, "/api/v1/secrets", "POST")
    request_id = client.post("/api/v1/requests", json={"ticket": "1011"},
                             headers=agent.headers).get_json()["id"]
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 201
    assert_documented(rv, "/api/v1/requests/{request_id}/secret", "POST")
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "wordpress", "envelope": sealed("1011")[0]})
    assert rv.status_code == 409 and rv.get_json()["reason"] == "already-filled"
    assert_documented(rv, "/api/v1/requests/{request_id}/secret", "POST")


def test_session_login_and_who_am_i(client: Any, agent: Agent) -> None:
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": agent.password})
    assert rv.status_code == 200
    assert_documented(rv, "/api/v1/session", "POST")
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": "wrong one!"})
    assert rv.status_code == 401
    assert_documented(rv, "/api/v1/session", "POST")
    rv = client.get("/api/v1/session", headers=agent.headers)
    assert rv.status_code == 200 and rv.get_json()["csrf_token"] is None
    assert_documented(rv, "/api/v1/session", "GET")


def test_operator_endpoints(client: Any) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):
        rv = client.get(path)
        assert rv.status_code == 200, path
        if rv.mimetype != "text/plain":
            assert_documented(rv, path, "GET")
        else:
            assert "text/plain" in documented_response(path, "GET", 200)["content"]


def test_store_down_answers_are_documented() -> None:
    """Nothing listens on the port: 503 with Retry-After, and the operator endpoints still serve."""
    app = create_app(base_config(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        client = app.test_client()
        secret_id = new_id("1008")
        envelope, _ = sealed("1008")
        for method, path, template, body in [
                ("GET", f"/api/v1/secrets/{secret_id}", "/api/v1/secrets/{secret_id}", None),
                ("POST", "/api/v1/secrets", "/api/v1/secrets",
                 {"ticket": "1008", "kind": "wordpress", "envelope": envelope}),
                ("POST", "/api/v1/requests", "/api/v1/requests", {"ticket": "1008"}),
                ("GET", "/readyz", "/readyz", None)]:
            rv = client.open(path, method=method, json=body,
                             headers={"Authorization": "Bearer vt_" + "A" * 43})
            assert rv.status_code == 503, path
            assert_documented(rv, template, method)
        for path in ("/healthz", "/api/v1/openapi.json"):
            rv = client.get(path)
            assert rv.status_code == 200, path
            assert_documented(rv, path, "GET")
        assert client.get("/metrics").status_code == 200
    finally:
        app.extensions["vault"].close()
