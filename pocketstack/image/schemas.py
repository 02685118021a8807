"""JSON schemas of the Image v2 API: what /v2/schemas/* serve and what requests
are validated against."""

from __future__ import annotations

import copy

from pocketstack.image.options import CONTAINER_FORMATS, DISK_FORMATS

UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")
STATUSES = ["queued", "saving", "active", "killed", "deleted", "pending_delete",
            "deactivated", "uploading", "importing"]
VISIBILITIES = ["public", "private", "shared", "community"]


def _ro(type_, description, **kw):
    return {"type": type_, "readOnly": True, "description": description, **kw}


def _os_prop(description, **kw):
    return {"type": "string", "is_base": False, "description": description, **kw}


IMAGE_PROPERTIES = {
    "id": {"type": "string", "pattern": UUID_PATTERN, "description": "Image identifier."},
    "name": {"type": ["null", "string"], "maxLength": 255,
             "description": "Human-readable image name."},
    "status": _ro("string", "Where the image is in its life cycle.", enum=STATUSES),
    "visibility": {"type": "string", "enum": VISIBILITIES,
                   "description": "Who may see and use the image."},
    "protected": {"type": "boolean", "description": "A protected image cannot be deleted."},
    "os_hidden": {"type": "boolean",
                  "description": "Hidden images are left out of default image lists."},
    "checksum": _ro(["null", "string"], "MD5 of the image data.", maxLength=32),
    "os_hash_algo": _ro(["null", "string"], "Algorithm of os_hash_value.", maxLength=64),
    "os_hash_value": _ro(["null", "string"], "Hex digest of the image data.", maxLength=128),
    "owner": {"type": ["null", "string"], "maxLength": 255,
              "description": "Project that owns the image."},
    "size": _ro(["null", "integer"], "Bytes of image data."),
    "virtual_size": _ro(["null", "integer"], "Bytes of the disk the image describes."),
    "min_ram": {"type": "integer", "description": "MiB of RAM needed to boot the image."},
    "min_disk": {"type": "integer", "description": "GiB of disk needed to boot the image."},
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                         "description": "Container format of the image data."},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                    "description": "Disk format of the image data."},
    "created_at": _ro("string", "When the image was created."),
    "updated_at": _ro("string", "When the image last changed."),
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "Strings attached to the image."},
    "direct_url": _ro("string", "URL of the data in its store."),
    "locations": {"type": "array", "description": "Where the image data is kept.",
                  "items": {"type": "object", "required": ["url", "metadata"],
                            "properties": {"url": {"type": "string", "maxLength": 255},
                                           "metadata": {"type": "object"}}}},
    "self": _ro("string", "URL of the image."),
    "file": _ro("string", "URL of the image data."),
    "schema": _ro("string", "URL of this schema."),
    "stores": _ro("string", "Stores holding the image data."),
    "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                  "description": "Kernel image of an AMI-style image."},
    "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                   "description": "Ramdisk image of an AMI-style image."},
    "instance_uuid": _os_prop("Server this image was taken from (informational)."),
    "architecture": _os_prop("CPU architecture the image needs."),
    "os_distro": _os_prop("Operating system distribution."),
    "os_version": _os_prop("Operating system version."),
}

IMAGE_LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
               {"rel": "describedby", "href": "{schema}"}]

IMAGE = {"name": "image", "properties": IMAGE_PROPERTIES,
         "additionalProperties": {"type": "string"}, "links": IMAGE_LINKS}

IMAGES = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE},
        "schema": {"type": "string"}, "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
              {"rel": "describedby", "href": "{schema}"}],
}

MEMBER = {
    "name": "member",
    "properties": {
        "image_id": {"type": "string", "pattern": UUID_PATTERN,
                     "description": "Image the member may use."},
        "member_id": {"type": "string", "description": "Project the image is shared with."},
        "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                   "description": "Whether the member accepted the image."},
        "created_at": {"type": "string", "description": "When the member was added."},
        "updated_at": {"type": "string", "description": "When the member last changed."},
        "schema": {"type": "string", "readOnly": True},
    },
}

MEMBERS = {
    "name": "members",
    "properties": {"members": {"type": "array", "items": MEMBER},
                   "schema": {"type": "string"}},
    "links": [{"rel": "describedby", "href": "{schema}"}],
}

# -- request validation ------------------------------------------------------

# What a client may send in POST /v2/images: the writable base properties,
# plus string-valued additional properties.
_writable = {k: v for k, v in IMAGE_PROPERTIES.items() if not v.get("readOnly")}
CREATE = {
    "type": "object",
    "properties": {
        **copy.deepcopy(_writable),
        "min_ram": {"type": "integer", "minimum": 0},
        "min_disk": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "uniqueItems": True},
    },
    "additionalProperties": {"type": "string"},
}
CREATE["properties"].pop("locations")

# One property value (a PATCH add/replace), validated as part of a partial image.
PARTIAL = {"type": "object", "properties": CREATE["properties"],
           "additionalProperties": {"type": "string"}}

MEMBER_CREATE = {
    "type": "object",
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
    "required": ["member"],
    "additionalProperties": False,
}

MEMBER_UPDATE = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["pending", "accepted", "rejected"]}},
    "required": ["status"],
}
