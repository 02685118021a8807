"""Policy enforcement with oslo.policy: defaults in code, a YAML file overrides.

Each service passes its own ``RuleDefault`` list; operators override rules in
``<policy_dir>/<service>.yaml`` (the same syntax as OpenStack's policy.yaml).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import NamedTuple

from oslo_config import cfg

from pocketstack.common import errors
from pocketstack.common.context import RequestContext


class RuleDefault(NamedTuple):
    """A rule's default (name, check string); oslo.policy itself (~0.07 s of imports)
    is loaded when a service's rules are first needed, off the start-up path."""

    name: str
    check_str: str


class _LazyExtensionChecks(dict):
    """oslo.policy's extension check kinds (``http:``, ``https:``, third-party ones),
    each loaded when a rule first uses it. oslo.policy loads them all when it parses
    its first rule, which imports ``requests`` and costs ~0.1 s of every start-up."""

    def __init__(self):
        super().__init__()
        from importlib.metadata import entry_points

        self._points = {ep.name: ep for ep in entry_points(group="oslo.policy.rule_checks")}

    def __contains__(self, kind) -> bool:
        if not dict.__contains__(self, kind) and kind in self._points:
            self[kind] = self._points[kind].load()
        return dict.__contains__(self, kind)


@functools.cache
def _oslo_policy():
    from oslo_policy import _checks, policy

    if _checks.extension_checks is None:
        _checks.extension_checks = _LazyExtensionChecks()
    return policy


# Personas shared by every service (admin / member / reader).
BASE_RULES = [
    RuleDefault("admin_required", "role:admin"),
    RuleDefault("context_is_admin", "role:admin"),
    RuleDefault("service_role", "role:service"),
    RuleDefault("member_or_admin", "role:admin or role:member"),
    RuleDefault("reader", "role:admin or role:member or role:reader"),
    RuleDefault("owner", "project_id:%(project_id)s"),
    RuleDefault("admin_or_owner", "rule:admin_required or project_id:%(project_id)s"),
    RuleDefault("project_member", "(role:member or role:admin) and project_id:%(project_id)s"),
    RuleDefault("project_reader",
                "(role:reader or role:member or role:admin) and project_id:%(project_id)s"),
]


def policy_file(conf: cfg.ConfigOpts, service: str) -> str:
    return os.path.join(conf.policy_dir or os.path.join(conf.state_path, "policy"),
                        f"{service}.yaml")


def _file_state(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


_loading = threading.Lock()


@functools.cache
def _enforcer_class():
    class Enforcer(_oslo_policy().Enforcer):
        """oslo.policy's Enforcer, but it looks for the policy file on every check (a
        search through config dirs); this one reloads only when the file changed."""

        def __init__(self, conf, policy_file: str):
            super().__init__(conf, policy_file=policy_file)
            self._path = policy_file
            self._state = ("never loaded",)
            self.generation = 0

        def load_rules(self, force_reload: bool = False) -> None:
            state = _file_state(self._path)
            if force_reload or state != self._state or not self.rules:
                super().load_rules(force_reload)
                self._state = state
                self.generation += 1

    return Enforcer


def _hashable(values: dict):
    try:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                           for k, v in values.items()))
        hash(key)
        return key
    except TypeError:
        return None


class Policy:
    """One service's rules. ``enforce`` raises Forbidden with the service's message."""

    MAX_DECISIONS = 10000

    def __init__(self, conf: cfg.ConfigOpts, service: str, defaults: list[RuleDefault],
                 denied: Callable[[str], str] | None = None):
        self._conf = conf
        # A missing file is fine: the defaults apply. It is re-read when it changes.
        self._path = policy_file(conf, service)
        self._defaults = BASE_RULES + list(defaults)
        self._enforcer = None
        # Decisions are pure functions of (rule, target, credentials): remembered
        # until the rules change.
        self._decisions: dict = {}
        self._decisions_generation = -1
        self.denied = denied or (
            lambda action: f"You are not authorized to perform the requested action: {action}.")

    @property
    def enforcer(self):
        """The oslo.policy enforcer, built on first use (or by ``load``)."""
        if self._enforcer is None:
            with _loading:  # (the enforcers register oslo.policy's options on conf)
                if self._enforcer is None:
                    enforcer = _enforcer_class()(self._conf, self._path)
                    enforcer.register_defaults([_oslo_policy().RuleDefault(*rule)
                                                for rule in self._defaults])
                    enforcer.load_rules()
                    self._enforcer = enforcer
        return self._enforcer

    def load(self) -> None:
        """Load oslo.policy and the rules now rather than at the first request."""
        self.enforcer  # noqa: B018 - built on access

    def check(self, context: RequestContext, action: str, target: dict | None = None) -> bool:
        if context.internal:
            return True
        if target is None:
            target = {"project_id": context.project_id, "user_id": context.user_id,
                      "domain_id": context.domain_id}
        creds = context.policy_values()
        self.enforcer.load_rules()
        if self._decisions_generation != self.enforcer.generation:
            self._decisions = {}
            self._decisions_generation = self.enforcer.generation
        target_key, creds_key = _hashable(target), _hashable(creds)
        key = None if target_key is None or creds_key is None else (action, target_key,
                                                                     creds_key)
        decision = self._decisions.get(key) if key is not None else None
        if decision is None:
            decision = bool(self.enforcer.enforce(action, target, creds, do_raise=False))
            if key is not None:
                if len(self._decisions) >= self.MAX_DECISIONS:
                    self._decisions = {}
                self._decisions[key] = decision
        return decision

    def enforce(self, context: RequestContext, action: str, target: dict | None = None) -> None:
        if not self.check(context, action, target):
            raise errors.Forbidden(self.denied(action))


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opt(cfg.StrOpt("policy_dir", default=None,
                                 help="Directory of per-service policy overrides "
                                      "(<service>.yaml); default state_path/policy."))
