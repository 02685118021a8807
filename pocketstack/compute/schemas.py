"""Request schemas of the compute API (what Nova validates, written for us)."""

from __future__ import annotations

name = {"type": "string", "minLength": 1, "maxLength": 255,
        "pattern": r"^(?! )[^\x00-\x1f]*(?<! )$"}
metadata = {"type": "object", "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False}
uuid_or_str = {"type": "string", "minLength": 1, "maxLength": 255}
tag = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[^,/]*$"}

bdm_v2 = {
    "type": "object",
    "properties": {
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"]},
        "volume_size": {"type": ["integer", "string"]},
        "device_name": {"type": ["string", "null"], "maxLength": 255},
        "delete_on_termination": {"type": ["boolean", "string"]},
        "guest_format": {"type": ["string", "null"]},
        "disk_bus": {"type": ["string", "null"]},
        "device_type": {"type": ["string", "null"]},
        "no_device": {},
        "tag": {"type": "string"},
        "volume_type": {"type": ["string", "null"]},
        "volume_id": {"type": "string"},
        "snapshot_id": {"type": "string"},
        "image_id": {"type": "string"},
    },
    "required": ["source_type"],
    "additionalProperties": False,
}

network_item = {
    "type": "object",
    "properties": {"uuid": {"type": "string"}, "port": {"type": ["string", "null"]},
                   "fixed_ip": {"type": "string"}, "tag": {"type": "string"}},
    "additionalProperties": False,
}

server_create = {
    "type": "object",
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name,
                "imageRef": {"type": ["string", "null"]},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "adminPass": {"type": "string"},
                "metadata": metadata,
                "networks": {"oneOf": [{"type": "array", "items": network_item},
                                       {"type": "string", "enum": ["none", "auto"]}]},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "accessIPv4": {"type": "string"},
                "accessIPv6": {"type": "string"},
                "personality": {"type": "array"},
                "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
                "user_data": {"type": "string"},
                "security_groups": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}},
                    "required": ["name"], "additionalProperties": False}},
                "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
                "block_device_mapping_v2": {"type": "array", "items": bdm_v2},
                "block_device_mapping": {"type": "array"},
                "min_count": {"type": ["integer", "string"]},
                "max_count": {"type": ["integer", "string"]},
                "return_reservation_id": {"type": ["boolean", "string"]},
                "config_drive": {"type": ["boolean", "string"]},
                "description": {"type": ["string", "null"], "maxLength": 255},
                "tags": {"type": "array", "items": tag, "maxItems": 50},
                "trusted_image_certificates": {"type": ["array", "null"]},
                "host": {"type": "string"},
                "hypervisor_hostname": {"type": "string"},
                "hostname": {"type": "string"},
            },
            "required": ["name", "flavorRef"],
            "additionalProperties": False,
        },
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
    "required": ["server"],
    "additionalProperties": False,
}

server_update = {
    "type": "object",
    "properties": {"server": {
        "type": "object",
        "properties": {"name": name, "description": {"type": ["string", "null"],
                                                     "maxLength": 255},
                       "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
                       "OS-DCF:diskConfig": {"type": "string"},
                       "hostname": {"type": "string"}},
        "additionalProperties": False}},
    "required": ["server"], "additionalProperties": False,
}

flavor_create = {
    "type": "object",
    "properties": {"flavor": {
        "type": "object",
        "properties": {
            "name": name,
            "id": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                   "pattern": r"^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
            "ram": {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1},
            "vcpus": {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1},
            "disk": {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 0},
            "OS-FLV-EXT-DATA:ephemeral": {"type": ["integer", "string"],
                                          "pattern": r"^[0-9]*$", "minimum": 0},
            "swap": {"type": ["integer", "string"], "pattern": r"^[0-9]*$", "minimum": 0},
            "rxtx_factor": {"type": ["number", "string"], "minimum": 0},
            "os-flavor-access:is_public": {"type": ["boolean", "string"]},
            "description": {"type": ["string", "null"], "maxLength": 65535},
        },
        "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False}},
    "required": ["flavor"], "additionalProperties": False,
}

extra_specs = {"type": "object", "properties": {"extra_specs": {
    "type": "object", "patternProperties": {
        r"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": ["string", "number", "boolean"]}},
    "additionalProperties": False}}, "required": ["extra_specs"],
    "additionalProperties": False}

keypair_create = {
    "type": "object",
    "properties": {"keypair": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255,
                                "pattern": r"^[a-zA-Z0-9 @._-]+$"},
                       "public_key": {"type": "string"},
                       "type": {"type": "string", "enum": ["ssh", "x509"]},
                       "user_id": {"type": "string"}},
        "required": ["name"], "additionalProperties": False}},
    "required": ["keypair"], "additionalProperties": False,
}

aggregate_create = {
    "type": "object",
    "properties": {"aggregate": {
        "type": "object",
        "properties": {"name": name,
                       "availability_zone": {"type": ["string", "null"], "minLength": 1,
                                             "maxLength": 255}},
        "required": ["name"], "additionalProperties": False}},
    "required": ["aggregate"], "additionalProperties": False,
}

aggregate_update = {
    "type": "object",
    "properties": {"aggregate": {
        "type": "object",
        "properties": {"name": name,
                       "availability_zone": {"type": ["string", "null"], "minLength": 1,
                                             "maxLength": 255}},
        "additionalProperties": False, "minProperties": 1}},
    "required": ["aggregate"], "additionalProperties": False,
}

server_group_create = {
    "type": "object",
    "properties": {"server_group": {
        "type": "object",
        "properties": {
            "name": name,
            "policies": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "string", "enum": ["affinity", "anti-affinity", "soft-affinity",
                                           "soft-anti-affinity"]}},
            "policy": {"type": "string", "enum": ["affinity", "anti-affinity",
                                                  "soft-affinity", "soft-anti-affinity"]},
            "rules": {"type": "object", "properties": {
                "max_server_per_host": {"type": ["integer", "string"],
                                        "pattern": "^[1-9][0-9]*$", "minimum": 1}},
                "additionalProperties": False},
        },
        "required": ["name"], "additionalProperties": False}},
    "required": ["server_group"], "additionalProperties": False,
}

quota_update = {
    "type": "object",
    "properties": {"quota_set": {
        "type": "object",
        "patternProperties": {r"^[a-z_]+$": {"type": ["integer", "string", "boolean"]}},
        "additionalProperties": False}},
    "required": ["quota_set"], "additionalProperties": False,
}
