"""JSON schemas of identity request bodies."""

import fastjsonschema

from pocketstack.common.validation import boolean, description, name_255, validate

_compiled: dict[int, tuple[dict, object]] = {}


def check(schema: dict, body):
    """Validate ``body``: a compiled validator decides (fast); when it rejects, jsonschema
    produces the 400 with its usual message."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        try:
            fast = fastjsonschema.compile({"$schema": "http://json-schema.org/draft-04/schema#",
                                           **schema}, use_default=False)
        except Exception:  # noqa: BLE001 - a schema it cannot compile: jsonschema only
            fast = None
        entry = _compiled[id(schema)] = (schema, fast)
    fast = entry[1]
    if fast is not None:
        try:
            fast(body)
            return body
        except fastjsonschema.JsonSchemaValueException:
            pass
    return validate(schema, body)

_id = {"type": "string", "minLength": 1, "maxLength": 64}
_id_or_null = {"type": ["string", "null"], "minLength": 1, "maxLength": 64}
_tags = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255,
                                    "pattern": "^[^,/]*$"}, "maxItems": 80}
_options = {"type": "object"}


def _wrap(key: str, properties: dict, required: list[str] | None = None,
          extra: bool = True) -> dict:
    body = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        body["required"] = required
    return {"type": "object", "properties": {key: body}, "required": [key],
            "additionalProperties": False}


domain_create = _wrap("domain", {"name": name_255, "enabled": boolean, "description": description,
                                 "tags": _tags, "options": _options}, ["name"])
domain_update = _wrap("domain", {"name": name_255, "enabled": boolean, "description": description,
                                 "tags": _tags, "options": _options})

project_create = _wrap("project", {
    "name": {**name_255, "pattern": r"^[^\s].*"}, "domain_id": _id_or_null,
    "parent_id": _id_or_null, "enabled": boolean, "description": description,
    "is_domain": {"type": "boolean", "enum": [False]}, "tags": _tags, "options": _options},
    ["name"])
project_update = _wrap("project", {
    "name": name_255, "domain_id": _id, "parent_id": _id_or_null, "enabled": boolean,
    "description": description, "is_domain": {"type": "boolean", "enum": [False]},
    "tags": _tags, "options": _options})
project_tags = {"type": "object", "properties": {"tags": _tags}, "required": ["tags"],
                "additionalProperties": False}

_password = {"type": ["string", "null"], "maxLength": 4096}
user_create = _wrap("user", {
    "name": name_255, "domain_id": _id, "enabled": boolean, "password": _password,
    "default_project_id": _id_or_null, "description": description, "options": _options},
    ["name"])
user_update = _wrap("user", {
    "name": name_255, "domain_id": _id, "enabled": boolean, "password": _password,
    "default_project_id": _id_or_null, "description": description, "options": _options})
password_change = _wrap("user", {"password": {"type": "string", "maxLength": 4096},
                                 "original_password": {"type": "string", "maxLength": 4096}},
                        ["password", "original_password"], extra=False)

group_create = _wrap("group", {"name": name_255, "domain_id": _id, "description": description},
                     ["name"])
group_update = _wrap("group", {"name": name_255, "domain_id": _id, "description": description})

role_create = _wrap("role", {"name": name_255, "domain_id": _id_or_null,
                             "description": description, "options": _options}, ["name"])
role_update = _wrap("role", {"name": name_255, "description": description,
                             "options": _options})

region_create = _wrap("region", {"id": {"type": "string", "minLength": 1, "maxLength": 255},
                                 "description": description,
                                 "parent_region_id": {"type": ["string", "null"]}})
region_update = _wrap("region", {"description": description,
                                 "parent_region_id": {"type": ["string", "null"]}})

service_create = _wrap("service", {"type": name_255, "name": {"type": "string", "maxLength": 255},
                                   "description": description, "enabled": boolean}, ["type"])
service_update = _wrap("service", {"type": name_255, "name": {"type": "string", "maxLength": 255},
                                   "description": description, "enabled": boolean})

_interface = {"type": "string", "enum": ["public", "internal", "admin"]}
_url = {"type": "string", "minLength": 0, "maxLength": 1024,
        "pattern": r"^[a-zA-Z0-9+.-]+:.+"}
endpoint_create = _wrap("endpoint", {
    "service_id": _id, "interface": _interface, "url": _url, "region_id": _id_or_null,
    "region": {"type": ["string", "null"]}, "enabled": boolean},
    ["service_id", "interface", "url"])
endpoint_update = _wrap("endpoint", {
    "service_id": _id, "interface": _interface, "url": _url, "region_id": _id_or_null,
    "region": {"type": ["string", "null"]}, "enabled": boolean})

credential_create = _wrap("credential", {
    "user_id": _id, "project_id": _id_or_null, "type": name_255,
    "blob": {"type": "string", "maxLength": 65535}}, ["user_id", "type", "blob"])
credential_update = _wrap("credential", {
    "user_id": _id, "project_id": _id_or_null, "type": name_255,
    "blob": {"type": "string", "maxLength": 65535}})

_role_ref = {"type": "object", "properties": {"id": _id, "name": name_255},
             "minProperties": 1, "additionalProperties": False}
application_credential_create = _wrap("application_credential", {
    "name": name_255, "description": description,
    "secret": {"type": ["string", "null"], "minLength": 1, "maxLength": 4096},
    "expires_at": {"type": ["string", "null"]}, "roles": {"type": "array", "items": _role_ref},
    "unrestricted": {"type": ["boolean", "null"]},
    "access_rules": {"type": "array", "items": {
        "type": "object", "properties": {
            "id": _id, "service": name_255, "method": {
                "type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]},
            "path": {"type": "string", "minLength": 0, "maxLength": 225}},
        "additionalProperties": False}}},
    ["name"], extra=False)

_identity_ref = {"type": "object", "properties": {"id": _id, "name": name_255}}
auth = {
    "type": "object",
    "properties": {"auth": {
        "type": "object",
        "properties": {
            "identity": {
                "type": "object",
                "properties": {
                    "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "password": {"type": "object", "properties": {"user": {
                        "type": "object", "properties": {
                            "id": _id, "name": name_255, "password": {"type": "string"},
                            "domain": _identity_ref}}}},
                    "token": {"type": "object", "properties": {"id": {"type": "string"}},
                              "required": ["id"]},
                    "application_credential": {"type": "object", "properties": {
                        "id": _id, "name": name_255, "secret": {"type": "string"},
                        "user": {"type": "object"}}},
                },
                "required": ["methods"],
            },
            "scope": {"anyOf": [
                {"type": "string", "enum": ["unscoped"]},
                {"type": "object", "properties": {
                    "project": {"type": "object", "properties": {
                        "id": _id, "name": name_255, "domain": _identity_ref}},
                    "domain": _identity_ref,
                    "system": {"type": "object", "properties": {"all": boolean}},
                }}]},
        },
        "required": ["identity"],
    }},
    "required": ["auth"],
}

ec2_create = {"type": "object", "properties": {"tenant_id": _id, "project_id": _id},
              "additionalProperties": True}
