"""Request body validation with JSON Schema (as OpenStack's services do)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pocketstack.common import errors

if TYPE_CHECKING:
    import jsonschema
    from jsonschema import Draft4Validator

# jsonschema is imported on first use: it is slow to import and start-up matters.
_cache: dict[int, Draft4Validator] = {}


def validator(schema: dict) -> Draft4Validator:
    key = id(schema)
    found = _cache.get(key)
    if found is None or found.schema is not schema:
        import jsonschema

        found = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
        _cache[key] = found
    return found


def describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        return error.message.replace("were unexpected", "were unexpected in the request")
    if error.validator == "required":
        return error.message
    if path:
        return f"Invalid input for field '{path}': {error.message}"
    return f"Invalid input: {error.message}"


def validate(schema: dict, body, exc: type[errors.ApiError] = errors.BadRequest):
    """Validate ``body`` and return it; the first error becomes a 400."""
    import jsonschema

    error = jsonschema.exceptions.best_match(validator(schema).iter_errors(body))
    if error is not None:
        raise exc(describe(error))
    return body


# Building blocks shared by the services' schemas.
name_255 = {"type": "string", "minLength": 1, "maxLength": 255}
nullable_string_255 = {"type": ["string", "null"], "maxLength": 255}
description = {"type": ["string", "null"], "maxLength": 65535}
boolean = {"type": "boolean"}
uuid_like = {"type": "string", "minLength": 1, "maxLength": 64}
