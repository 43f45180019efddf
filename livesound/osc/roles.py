"""Who may do what over OSC.

An OSC port on a venue's Wi-Fi is open to anyone there, so each client has
a role: the engineer (everything), the performer of mix N (the sends into
mix N, mix N's master, balance and EQ; not its sends into the matrices,
which like the matrices are the engineer's; reads everything), read-only (queries and
subscriptions), or viewer (meters only). The show configuration names
clients by IP address or by a pairing code a tablet sends once
(``/ls/pair ,s CODE``), and the engineer may make short-lived codes
(``livesound pair``); everyone else gets the default role. A linked bus
pair belongs to the performer of its odd mix (see ``links``).
"""

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livesound.audio.settings import ConfigError, show_config_table

KINDS = ("engineer", "performer", "readonly", "viewer")
# Always allowed, for every role: discovery, subscriptions and meters.
PUBLIC = {"/xinfo", "/info", "/status", "/xremote", "/renew", "/meters", "/ls/pair",
          "/unsubscribe", "/ls/stats", "/ls/errors"}  # fmt: skip
# What a performer may change, the mix number in group 1.
_PERFORMER = (
    re.compile(r"/ch/\d\d/mix/(\d\d)/(?:on|level|pan|type)"),
    re.compile(r"/bus/(\d\d)/mix/(?:on|fader|pan)"),
    re.compile(r"/bus/(\d\d)/eq/.+"),
)
CODE_DIGITS = 6  # codes made by ``Permissions.new_code``
MAX_CODES = 16  # codes made and not yet expired


@dataclass(frozen=True)
class Role:
    """A client's permissions: ``kind`` and, for a performer, the mix."""

    kind: str
    mix: int = 0

    def __str__(self) -> str:
        return f"performer:{self.mix}" if self.kind == "performer" else self.kind

    def may_read(self, address: str) -> bool:
        return self.kind != "viewer" or address in PUBLIC

    def may_write(
        self, address: str, owner: Callable[[int], int] = lambda mix: mix
    ) -> bool:
        """Whether this role may change ``address``; ``owner(mix)`` is the mix
        whose performer owns ``mix`` (the odd one of a linked pair)."""
        if self.kind == "engineer":
            return True
        if self.kind != "performer":
            return False
        for pattern in _PERFORMER:
            m = pattern.fullmatch(address)
            if m is not None:
                return owner(int(m.group(1))) == self.mix
        return False


def parse_role(text: str, n_bus: int = 16) -> Role:
    """``engineer``, ``readonly``, ``viewer`` or ``performer:N``."""
    kind, _, mix = text.strip().partition(":")
    if kind not in KINDS:
        raise ConfigError(
            f"role {text!r}: use engineer, readonly, viewer or performer:N"
        )
    if kind == "performer":
        if not mix.isdigit() or not 1 <= int(mix) <= n_bus:
            raise ConfigError(f"role {text!r}: the mix is a number 1..{n_bus}")
        return Role(kind, int(mix))
    if mix:
        raise ConfigError(f"role {text!r}: only performer takes a mix number")
    return Role(kind)


ENGINEER = Role("engineer")
READONLY = Role("readonly")


@dataclass
class Permissions:
    """Roles by client IP and by pairing code, and the default role.

    Codes from the show configuration hold for the whole show; codes made
    with ``new_code`` until their time is up (``expires``).
    """

    default: Role = READONLY
    by_address: dict[str, Role] = field(default_factory=dict)
    by_code: dict[str, Role] = field(default_factory=dict)
    expires: dict[str, float] = field(default_factory=dict)

    def role_for(self, ip: str) -> Role:
        return self.by_address.get(ip, self.default)

    def known(self, ip: str) -> bool:
        """Whether the show names ``ip`` (listed or paired) or trusts everyone."""
        return ip in self.by_address or self.default.kind == "engineer"

    def code_role(self, code: str, now: float) -> Role | None:
        """The role pairing ``code`` grants at ``now``; None if unknown or expired."""
        self._expire(now)
        return self.by_code.get(code)

    def pair(self, ip: str, code: str, now: float) -> Role | None:
        """Give ``ip`` the role of pairing ``code``; None if the code is unknown."""
        role = self.code_role(code, now)
        if role is not None:
            self.by_address[ip] = role
        return role

    def new_code(self, role: Role, valid_s: float, now: float) -> str:
        """A fresh random code for ``role``, valid ``valid_s`` seconds from ``now``."""
        self._expire(now)
        if len(self.expires) >= MAX_CODES:
            raise ConfigError(
                f"{MAX_CODES} pairing codes are open already; wait until one expires"
            )
        while True:
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            if code not in self.by_code:
                break
        self.by_code[code] = role
        self.expires[code] = now + valid_s
        return code

    def _expire(self, now: float) -> None:
        for code in [c for c, t in self.expires.items() if t <= now]:
            del self.expires[code]
            del self.by_code[code]


def load_permissions(path: Path | None, n_bus: int = 16) -> Permissions:
    """Permissions from the ``[osc]`` table of a show configuration (TOML).

    ```toml
    [osc]
    default_role = "readonly"
    clients = [{ address = "192.168.1.20", role = "engineer" }]
    pairing = [{ code = "4711", role = "performer:2" }]
    ```
    This machine is the engineer unless a ``clients`` entry says otherwise.
    Without a file: everyone on this machine is the engineer, everyone
    else read-only.
    """
    if path is None:
        return Permissions(by_address={"127.0.0.1": ENGINEER, "::1": ENGINEER})
    osc = show_config_table(path, "osc")
    try:
        perms = Permissions(
            default=parse_role(osc.get("default_role", "readonly"), n_bus)
        )
        # The engine's own machine (its CLI, a local console) is the engineer
        # unless a clients entry says otherwise.
        perms.by_address.update({"127.0.0.1": ENGINEER, "::1": ENGINEER})
        for entry in osc.get("clients", []):
            perms.by_address[str(entry["address"])] = parse_role(entry["role"], n_bus)
        for entry in osc.get("pairing", []):
            perms.by_code[str(entry["code"])] = parse_role(entry["role"], n_bus)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: [osc] entries need address/code and role ({exc})"
        ) from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return perms
