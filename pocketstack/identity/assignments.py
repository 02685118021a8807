"""GET /v3/role_assignments: direct or effective assignments, with names."""

from __future__ import annotations

from pocketstack.identity import core


def list_assignments(ident: core.IdentityManager, req, v3: str) -> list[dict]:
    q = req.query
    effective = req.flag("effective")
    include_names = req.flag("include_names")
    user_id, group_id = q.get("user.id"), q.get("group.id")
    role_id = q.get("role.id")
    project_id, domain_id = q.get("scope.project.id"), q.get("scope.domain.id")
    system = q.get("scope.system")
    inherited_only = q.get("scope.OS-INHERIT:inherited_to") == "projects"

    rows = ident.list("assignment")
    entries = []
    for row in rows:
        actor_kind = "user" if row["type"].startswith("User") else "group"
        target_kind = row["type"][len("User" if actor_kind == "user" else "Group"):].lower()
        entries.append({"actor_kind": actor_kind, "actor_id": row["actor_id"],
                        "target_kind": target_kind, "target_id": row["target_id"],
                        "role_id": row["role_id"], "inherited": row["inherited"],
                        "via_group": None, "via_target": None})
    if effective:
        entries = _effective(ident, entries)
    result = []
    for e in entries:
        if inherited_only and not e["inherited"]:
            continue
        if user_id and not (e["actor_kind"] == "user" and e["actor_id"] == user_id):
            continue
        if group_id and not (e["actor_kind"] == "group" and e["actor_id"] == group_id):
            continue
        if role_id and e["role_id"] != role_id:
            continue
        if project_id and not (e["target_kind"] == "project" and e["target_id"] == project_id):
            continue
        if domain_id and not (e["target_kind"] == "domain" and e["target_id"] == domain_id):
            continue
        if system and e["target_kind"] != "system":
            continue
        result.append(_render(ident, e, v3, include_names))
    return result


def _effective(ident: core.IdentityManager, entries: list[dict]) -> list[dict]:
    """Expand groups into their users, inherited grants onto projects, implied roles."""
    expanded = []
    for e in entries:
        actors = [(e["actor_id"], None)]
        if e["actor_kind"] == "group":
            actors = [(m["user_id"], e["actor_id"])
                      for m in ident.list("membership", {"group_id": e["actor_id"]})]
        targets = [(e["target_kind"], e["target_id"])]
        if e["inherited"]:
            if e["target_kind"] == "domain":
                projects = ident.list("project", {"domain_id": e["target_id"]})
            else:
                projects = ident.subtree(e["target_id"])
            targets = [("project", p["id"]) for p in projects]
        for actor_id, via_group in actors:
            for target_kind, target_id in targets:
                for role_id in ident._implied_closure([e["role_id"]]):
                    expanded.append({
                        "actor_kind": "user", "actor_id": actor_id,
                        "target_kind": target_kind, "target_id": target_id, "role_id": role_id,
                        "inherited": False, "via_group": via_group,
                        "prior_role": e["role_id"] if role_id != e["role_id"] else None,
                        "via_target": e["target_id"] if e["inherited"] else None,
                        "source_inherited": e["inherited"], "source_kind": e["target_kind"]})
    unique = {}
    for e in expanded:
        unique.setdefault((e["actor_id"], e["target_kind"], e["target_id"], e["role_id"]), e)
    return list(unique.values())


def _render(ident, e: dict, v3: str, include_names: bool) -> dict:
    role = {"id": e["role_id"]}
    actor = {"id": e["actor_id"]}
    target_kind = e["target_kind"]
    if target_kind == "system":
        scope = {"system": {"all": True}}
    else:
        scope = {target_kind: {"id": e["target_id"]}}
    if e["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
    if include_names:
        r = ident.find("role", e["role_id"])
        if r:
            role["name"] = r["name"]
            if r["domain_id"] != core.GLOBAL:
                role["domain"] = _domain_ref(ident, r["domain_id"])
        a = ident.find(e["actor_kind"], e["actor_id"])
        if a:
            actor["name"] = a["name"]
            actor["domain"] = _domain_ref(ident, a["domain_id"])
        if target_kind == "project":
            p = ident.find("project", e["target_id"])
            if p:
                scope["project"].update(name=p["name"], domain=_domain_ref(ident, p["domain_id"]))
        elif target_kind == "domain":
            d = ident.find("domain", e["target_id"])
            if d:
                scope["domain"]["name"] = d["name"]
    source_kind = e.get("source_kind", target_kind)
    source_target = e.get("via_target") or e["target_id"]
    actor_path = (f"groups/{e['via_group']}" if e.get("via_group")
                  else f"{e['actor_kind']}s/{e['actor_id']}")
    if source_kind == "system":
        link = f"{v3}/system/{actor_path}/roles/{e.get('prior_role') or e['role_id']}"
    else:
        prefix = "OS-INHERIT/" if e.get("source_inherited") or e["inherited"] else ""
        link = (f"{v3}/{prefix}{source_kind}s/{source_target}/{actor_path}/roles/"
                f"{e.get('prior_role') or e['role_id']}")
        if prefix:
            link += "/inherited_to_projects"
    links = {"assignment": link}
    if e.get("via_group"):
        links["membership"] = f"{v3}/groups/{e['via_group']}/users/{e['actor_id']}"
    if e.get("prior_role"):
        links["prior_role"] = f"{v3}/roles/{e['prior_role']}"
    entry = {"role": role, e["actor_kind"]: actor, "scope": scope, "links": links}
    return entry


def _domain_ref(ident, domain_id: str) -> dict:
    d = ident.find("domain", domain_id)
    return {"id": domain_id, "name": d["name"] if d else None}
