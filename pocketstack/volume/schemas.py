"""Request schemas (Cinder validates with JSON Schema from 3.53; we always do)."""

from pocketstack.common.validation import boolean, description, nullable_string_255

metadata = {"type": ["object", "null"], "patternProperties": {
    "^.{1,255}$": {"type": "string", "maxLength": 255}}, "additionalProperties": False}
size = {"type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+$"}
id_or_null = {"type": ["string", "null"], "maxLength": 255}

volume_create = {"type": "object", "properties": {"volume": {
    "type": "object", "properties": {
        "name": nullable_string_255, "display_name": nullable_string_255,
        "description": description, "display_description": description,
        "size": size, "volume_type": id_or_null, "availability_zone": id_or_null,
        "source_volid": id_or_null, "snapshot_id": id_or_null, "imageRef": id_or_null,
        "backup_id": id_or_null, "metadata": metadata, "multiattach": boolean,
        "consistencygroup_id": id_or_null, "group_id": id_or_null, "image_id": id_or_null,
    }, "additionalProperties": True}, "OS-SCH-HNT:scheduler_hints": {
        "type": ["object", "null"]}},
    "required": ["volume"], "additionalProperties": False}

volume_update = {"type": "object", "properties": {"volume": {
    "type": "object", "properties": {
        "name": nullable_string_255, "display_name": nullable_string_255,
        "description": description, "display_description": description,
        "metadata": metadata}, "additionalProperties": False}},
    "required": ["volume"], "additionalProperties": False}

metadata_body = {"type": "object", "properties": {"metadata": {
    "type": "object", "patternProperties": {"^.{1,255}$": {"type": "string",
                                                           "maxLength": 255}},
    "additionalProperties": False}}, "required": ["metadata"], "additionalProperties": False}

meta_item = {"type": "object", "properties": {"meta": {
    "type": "object", "minProperties": 1, "maxProperties": 1,
    "patternProperties": {"^.{1,255}$": {"type": "string", "maxLength": 255}}}},
    "required": ["meta"], "additionalProperties": False}

snapshot_create = {"type": "object", "properties": {"snapshot": {
    "type": "object", "properties": {
        "volume_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "force": {"type": ["boolean", "string"]}, "name": nullable_string_255,
        "display_name": nullable_string_255, "description": description,
        "display_description": description, "metadata": metadata},
    "required": ["volume_id"], "additionalProperties": False}},
    "required": ["snapshot"], "additionalProperties": False}

snapshot_update = {"type": "object", "properties": {"snapshot": {
    "type": "object", "properties": {
        "name": nullable_string_255, "display_name": nullable_string_255,
        "description": description, "display_description": description},
    "additionalProperties": False}}, "required": ["snapshot"], "additionalProperties": False}

type_create = {"type": "object", "properties": {"volume_type": {
    "type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": ["string", "null"], "maxLength": 255},
        "os-volume-type-access:is_public": {"type": ["boolean", "string"]},
        "extra_specs": {"type": "object", "patternProperties": {
            "^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}},
            "additionalProperties": False}},
    "required": ["name"], "additionalProperties": False}},
    "required": ["volume_type"], "additionalProperties": False}

type_update = {"type": "object", "properties": {"volume_type": {
    "type": "object", "properties": {
        "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
        "description": {"type": ["string", "null"], "maxLength": 255},
        "is_public": {"type": ["boolean", "string"]}},
    "additionalProperties": False}}, "required": ["volume_type"], "additionalProperties": False}

extra_specs = {"type": "object", "properties": {"extra_specs": {
    "type": "object", "patternProperties": {
        "^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False}}, "required": ["extra_specs"], "additionalProperties": False}

backup_create = {"type": "object", "properties": {"backup": {
    "type": "object", "properties": {
        "volume_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "container": {"type": ["string", "null"], "maxLength": 255},
        "name": nullable_string_255, "description": description,
        "incremental": {"type": ["boolean", "string", "null"]},
        "force": {"type": ["boolean", "string", "null"]},
        "snapshot_id": id_or_null, "metadata": metadata,
        "availability_zone": id_or_null},
    "required": ["volume_id"], "additionalProperties": False}},
    "required": ["backup"], "additionalProperties": False}

backup_update = {"type": "object", "properties": {"backup": {
    "type": "object", "properties": {"name": nullable_string_255, "description": description,
                                     "metadata": metadata},
    "additionalProperties": False}}, "required": ["backup"], "additionalProperties": False}

backup_restore = {"type": "object", "properties": {"restore": {
    "type": ["object", "null"], "properties": {"volume_id": id_or_null,
                                               "name": nullable_string_255},
    "additionalProperties": False}}, "required": ["restore"], "additionalProperties": False}

attachment_create = {"type": "object", "properties": {"attachment": {
    "type": "object", "properties": {
        "volume_uuid": {"type": "string", "minLength": 1, "maxLength": 255},
        "instance_uuid": id_or_null, "connector": {"type": ["object", "null"]},
        "mode": {"type": "string", "enum": ["rw", "ro"]}},
    "required": ["volume_uuid"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False}

attachment_update = {"type": "object", "properties": {"attachment": {
    "type": "object", "properties": {"connector": {"type": "object"}},
    "required": ["connector"], "additionalProperties": False}},
    "required": ["attachment"], "additionalProperties": False}

quota_update = {"type": "object", "properties": {"quota_set": {
    "type": "object", "additionalProperties": {"type": ["integer", "string"]}}},
    "required": ["quota_set"], "additionalProperties": False}
