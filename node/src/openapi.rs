//! The OpenAPI document served at `/v1/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, body: Option<Value>, params: &[(&str, &str, &str)]) -> Value {
    let mut o = json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK"},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "413": {"$ref": "#/components/responses/Error"}
        }
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    if !params.is_empty() {
        o["parameters"] = params
            .iter()
            .map(|(name, place, ty)| {
                json!({"name": name, "in": place, "required": *place == "path", "schema": {"type": ty}})
            })
            .collect();
    }
    o
}

pub fn document() -> Value {
    let mut doc = paths();
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), console_paths()) {
        paths.extend(more);
    }
    // Writes that create a record answer 201 with it.
    for path in [
        "/v1/items",
        "/v1/items/{id}/claim",
        "/v1/grids",
        "/v1/whistles",
        "/v1/whistles/{id}/respond",
        "/v1/agreements",
        "/v1/users",
    ] {
        let responses = &mut doc["paths"][path]["post"]["responses"];
        if let Some(map) = responses.as_object_mut()
            && let Some(ok) = map.remove("200")
        {
            map.insert("201".into(), json!({"description": "created", "content": ok.get("content").cloned().unwrap_or(json!({}))}));
        }
    }
    doc
}

fn paths() -> Value {
    let list = json!({"type": "string", "enum": ["need", "resource", "service", "project", "responsibility", "problem", "wish"]});
    let status = json!({"type": "string", "enum": ["open", "in_progress", "resolved", "closed"]});
    let id = [("id", "path", "string")];
    let fmt = ("format", "query", "string");
    let level = json!({"type": "string", "enum": ["zone", "community", "street", "district"]});
    let kinds = json!({"type": "array", "items": {"type": "string", "enum": ["district", "street", "community", "resident"]}});
    let note =
        json!({"type": "object", "properties": {"note": {"type": "string", "maxLength": 4000}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "gongjian node API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "the token in DIR/api.token (or the console's session cookie, with X-Gongjian-Console: 1 on writes)"}},
            "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}
            }}}}}
        },
        "paths": {
            "/health": {"get": {"summary": "liveness, no token", "responses": {"200": {"description": "OK"}}}},
            "/ready": {"get": {"summary": "readiness (view built, network up), no token", "responses": {"200": {"description": "ready"}, "503": {"description": "not yet"}}}},
            "/v1/node": {"get": op("this node: unit, kind, name, public key, peer id, listen addresses, peers", None, &[])},
            "/v1/items": {"post": op("add an item to one of this unit's lists (signed, durable before the answer)", Some(json!({
                "type": "object", "required": ["list", "title"],
                "properties": {"list": list, "title": {"type": "string", "maxLength": 200}, "category": {"type": "string"},
                    "description": {"type": "string", "maxLength": 4000}, "area": {"type": "string"}, "grid": {"type": "string"},
                    "urgent": {"type": "boolean", "description": "projects only"}}
            })), &[])},
            "/v1/items/{id}/status": {"post": op("set the status of one of this unit's items, or (the unit a problem was escalated to) record handling it in this unit's acts", Some(json!({
                "type": "object", "required": ["status"], "properties": {"status": status}
            })), &id)},
            "/v1/items/{id}/claim": {"post": op("claim another unit's project or micro-wish (written in this unit's acts document)", Some(json!({
                "type": "object", "properties": {"note": {"type": "string", "maxLength": 4000}}
            })), &id)},
            "/v1/status": {"get": op("store counts, certificate expiry (valid | expiring | invalid), view size, network", None, &[])},
            "/v1/items/{id}/escalate": {"post": op("move one of this unit's problems up a level; handler defaults to this unit's community, street or district", Some(json!({
                "type": "object", "required": ["to"], "properties": {"to": level, "handler": {"type": "string", "description": "unit id of a unit of that level above this one"}}
            })), &id)},
            "/v1/grids": {"post": op("add (or, with an existing id, replace) one of this unit's grids", Some(json!({
                "type": "object", "required": ["level", "name"],
                "properties": {"id": {"type": "string"}, "level": {"type": "string", "enum": ["zone", "residential", "micro", "building"]},
                    "name": {"type": "string", "maxLength": 100}, "parent": {"type": "string", "description": "global id of the parent grid (below a zone)"},
                    "leader": {"type": "string"}, "party_branch": {"type": "string"}, "staff": {"type": "array", "items": {"type": "string"}},
                    "counts": {"type": "object", "properties": {"households": {"type": "integer"}, "compounds": {"type": "integer"},
                        "resident_units": {"type": "integer"}, "posts": {"type": "integer"}, "members": {"type": "integer"}}}}
            })), &[])},
            "/v1/whistles": {"post": op("blow a whistle (吹哨): call levels to respond", Some(json!({
                "type": "object", "required": ["title"],
                "properties": {"title": {"type": "string", "maxLength": 200}, "category": {"type": "string"}, "description": {"type": "string"},
                    "area": {"type": "string"}, "grid": {"type": "string"}, "levels": kinds}
            })), &[])},
            "/v1/whistles/{id}/respond": {"post": op("respond to another unit's whistle (报到), in this unit's acts document", Some(note.clone()), &id)},
            "/v1/agreements": {"post": op("propose a co-building agreement; the answer carries its id and derived status", Some(json!({
                "type": "object", "required": ["title", "parties", "start", "end"],
                "properties": {"title": {"type": "string", "maxLength": 200}, "parties": {"type": "array", "items": {"type": "string"}},
                    "start": {"type": "integer", "description": "unix seconds"}, "end": {"type": "integer"},
                    "services": {"type": "array", "items": {"type": "string"}}, "contact": {"type": "string"}}
            })), &[])},
            "/v1/agreements/{id}/sign": {"post": op("sign the agreement's terms and parts as this node holds them (parties only)", Some(json!({
                "type": "object", "properties": {"note": {"type": "string"}, "services": {"type": "array", "items": {"type": "string"}}, "contact": {"type": "string"}}
            })), &id)},
            "/v1/view/matches": {"get": op("open needs beside open resources of the same category and area", None, &[("scope", "query", "string"), fmt])},
            "/v1/view/agreements": {"get": op("agreements with each party's signature and derived status", None, &[
                ("status", "query", "string"), ("party", "query", "string"), ("expiring_within_days", "query", "integer"), ("scope", "query", "string"), fmt])},
            "/v1/view/agreements/{id}": {"get": op("one agreement", None, &id)},
            "/v1/view/grids": {"get": op("the grid tree of a scope with counts summed up each level", None, &[("scope", "query", "string"), fmt])},
            "/v1/bundles/state": {"get": op("peer-state file (application/octet-stream) for an exporter to send only what this node lacks", None, &[("for", "query", "string")])},
            "/v1/bundles/export": {"post": op("a signed bundle (application/octet-stream); body empty or a state file (octet-stream, up to 256 MiB); summary in X-Gongjian-Summary", None, &[("for", "query", "string")])},
            "/v1/backup": {"post": op("a live RocksDB checkpoint of the store into `out`, an absolute path that does not exist yet", Some(json!({"type": "object", "required": ["out"], "properties": {"out": {"type": "string"}}})), &[])},
            "/v1/bundles/import": {"post": op("import a bundle (octet-stream body up to 2 GiB), checked whole first", None, &[])},
            "/metrics": {"get": {"summary": "Prometheus metrics; no token from this host", "responses": {"200": {"description": "OpenMetrics text"}}}},
            "/v1/view/items": {"get": op("the merged list of items in this node's scope, newest first, with the acts joined to each; format=csv|xlsx exports every page", None, &[
                ("list", "query", "string"), ("status", "query", "string"), ("unit", "query", "string"), ("street", "query", "string"),
                ("community", "query", "string"), ("category", "query", "string"), ("urgent", "query", "boolean"),
                ("claimed", "query", "boolean"), ("q", "query", "string"), ("limit", "query", "integer"), ("cursor", "query", "string"), ("scope", "query", "string"), fmt
            ])},
            "/v1/view/items/{id}": {"get": op("one item with its acts", None, &id)},
            "/v1/view/stats": {"get": op("counts by area × list × status", None, &[("by", "query", "string"), ("scope", "query", "string"), fmt])},
            "/v1/view/units": {"get": op("units in scope (pinyin order): last heard, changes held, announced heads not held", None, &[("scope", "query", "string"), fmt])},
            "/v1/view/digest": {"get": op("digest of the view over a unit's subtree", None, &[("scope", "query", "string")])},
            "/v1/docs": {"get": op("documents held", None, &[])},
            "/v1/docs/{id}": {"get": op("one document as JSON with its heads", None, &id)}
        }
    })
}

/// The console's people: sessions, users, the audit log, the report.
fn console_paths() -> Value {
    let fmt = ("format", "query", "string");
    json!({
            "/v1/view/report": {"get": op("the monthly report (China Standard Time): problems found and resolved per level and area, lists, agreements", None, &[("month", "query", "string"), ("scope", "query", "string"), fmt])},
            "/v1/login": {"post": {"summary": "log in a console user: sets the HttpOnly session cookie `gongjian_session`; 401 bad_login, 429 locked", "security": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "password"],
                    "properties": {"name": {"type": "string"}, "password": {"type": "string"}}}}}},
                "responses": {"200": {"description": "the user, the unit, when the session ends"}, "401": {"$ref": "#/components/responses/Error"}, "429": {"$ref": "#/components/responses/Error"}}}},
            "/v1/logout": {"post": {"summary": "end the session of the cookie sent, if any", "security": [], "responses": {"200": {"description": "logged out"}}}},
            "/v1/session": {"get": op("who is asking: person, role, via token or session, the unit", None, &[])},
            "/v1/password": {"post": op("change one's own password (a console session)", Some(json!({"type": "object", "required": ["old", "new"],
                "properties": {"old": {"type": "string"}, "new": {"type": "string", "minLength": 10}}})), &[])},
            "/v1/users": {
                "get": op("the node's users (administrator)", None, &[]),
                "post": op("add a user (administrator)", Some(json!({"type": "object", "required": ["name", "role", "password"],
                    "properties": {"name": {"type": "string", "pattern": "^[a-z0-9._-]{1,32}$"}, "display_name": {"type": "string", "maxLength": 64},
                        "role": {"type": "string", "enum": ["administrator", "operator", "viewer"]}, "password": {"type": "string", "minLength": 10}}})), &[])
            },
            "/v1/users/{name}": {
                "patch": op("change a user (administrator): display name, role, password, disabled", Some(json!({"type": "object",
                    "properties": {"display_name": {"type": "string"}, "role": {"type": "string", "enum": ["administrator", "operator", "viewer"]},
                        "password": {"type": "string"}, "disabled": {"type": "boolean"}}})), &[("name", "path", "string")]),
                "delete": op("remove a user (administrator); the last administrator stays", None, &[("name", "path", "string")])
            },
            "/v1/audit": {"get": op("the audit log, newest first (administrator)", None, &[("limit", "query", "integer"), ("before", "query", "integer")])}
    })
}
