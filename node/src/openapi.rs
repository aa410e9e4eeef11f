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
    let list = json!({"type": "string", "enum": ["need", "resource", "service", "project", "responsibility", "problem", "wish"]});
    let status = json!({"type": "string", "enum": ["open", "in_progress", "resolved", "closed"]});
    let id = [("id", "path", "string")];
    json!({
        "openapi": "3.1.0",
        "info": {"title": "gongjian node API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "the token in DIR/api.token"}},
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
            "/v1/items/{id}/status": {"post": op("set the status of one of this unit's items", Some(json!({
                "type": "object", "required": ["status"], "properties": {"status": status}
            })), &id)},
            "/v1/items/{id}/claim": {"post": op("claim another unit's project or micro-wish (written in this unit's acts document)", Some(json!({
                "type": "object", "properties": {"note": {"type": "string", "maxLength": 4000}}
            })), &id)},
            "/v1/view/items": {"get": op("the merged list of items in this node's scope, newest first, with the acts joined to each", None, &[
                ("list", "query", "string"), ("status", "query", "string"), ("unit", "query", "string"), ("street", "query", "string"),
                ("community", "query", "string"), ("category", "query", "string"), ("urgent", "query", "boolean"),
                ("claimed", "query", "boolean"), ("q", "query", "string"), ("limit", "query", "integer"), ("cursor", "query", "string")
            ])},
            "/v1/view/items/{id}": {"get": op("one item with its acts", None, &id)},
            "/v1/view/stats": {"get": op("counts by area × list × status", None, &[("by", "query", "string")])},
            "/v1/view/units": {"get": op("units in scope: last heard, changes held, announced heads not held", None, &[("scope", "query", "string")])},
            "/v1/view/digest": {"get": op("digest of the view over a unit's subtree", None, &[("scope", "query", "string")])},
            "/v1/docs": {"get": op("documents held", None, &[])},
            "/v1/docs/{id}": {"get": op("one document as JSON with its heads", None, &id)}
        }
    })
}
