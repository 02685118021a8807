"""Write the `pocketstack` entry of clouds.yaml so the openstack CLI finds the cloud."""

from __future__ import annotations

import os

import yaml

CLOUD_NAME = "pocketstack"


def entry(cloud, password: str) -> dict:
    conf = cloud.conf
    return {
        "auth": {
            "auth_url": cloud.services["identity"].endpoint_url(),
            "username": conf.bootstrap.admin_username,
            "password": password,
            "project_name": conf.bootstrap.admin_project_name,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": conf.region_name,
        "identity_api_version": 3,
        "interface": "public",
    }


def merge(path: str, name: str, value: dict) -> None:
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    data.setdefault("clouds", {})[name] = value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, default_flow_style=False, sort_keys=False)
    os.replace(tmp, path)


def write_clouds_yaml(cloud, *, user_file: bool = True) -> list[str]:
    value = entry(cloud, cloud.services["identity"].admin_password())
    paths = [os.path.join(cloud.conf.state_path, "clouds.yaml")]
    if user_file:
        paths.append(os.path.expanduser("~/.config/openstack/clouds.yaml"))
    for path in paths:
        merge(path, CLOUD_NAME, value)
    return paths
