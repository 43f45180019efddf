"""Zeroconf (mDNS/DNS-SD) advertisement of the OSC server and its OSCQuery JSON.

``_osc._udp`` is the service type OSC apps browse for (Open Stage Control
publishes itself the same way); ``_oscjson._tcp`` is the one the OSCQuery
proposal names for its HTTP server. Advertising is a convenience: a venue
network without multicast must not stop the show, so every failure is
logged and leaves a no-op advertisement.
"""

import asyncio
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass

import ifaddr
from zeroconf import Error as ZeroconfError
from zeroconf import (
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

log = logging.getLogger("livesound.osc.discovery")

OSC_TYPE = "_osc._udp.local."
OSCQUERY_TYPE = "_oscjson._tcp.local."
REGISTER_TIMEOUT_S = 10.0  # probing and announcing take about 2 s
APP = "livesound"  # TXT app=livesound: an engine, not any OSC service
FIND_S = 1.5  # how long a look for engines on the network lasts


class Advertisement:
    """Services announced on the local network; ``close()`` withdraws them.

    A failed advertisement has no services and ``active`` is False.
    """

    def __init__(
        self, zeroconf: Zeroconf | None = None, infos: tuple[ServiceInfo, ...] = ()
    ) -> None:
        self._zeroconf = zeroconf
        self.infos = infos

    @property
    def active(self) -> bool:
        """True while services are announced."""
        return self._zeroconf is not None

    def close(self) -> None:
        """Send goodbyes and stop responding; safe to call more than once."""
        zc, self._zeroconf = self._zeroconf, None
        if zc is not None:
            _close(zc)


def advertise(
    name: str, osc_port: int, http_port: int | None, listen: str = "0.0.0.0"
) -> Advertisement:
    """Announce the OSC server (and OSCQuery on ``http_port``) as ``name``,
    the engine's name (TXT ``engine=NAME``, ``app=livesound``), at the
    address the server listens on (``listen``; all of this host's for
    0.0.0.0).

    Never raises for network trouble: it logs a warning and returns an
    inactive advertisement. The instance name may get a suffix if another
    host already uses it; the registered names are in ``.infos``.
    """
    zc = None
    try:
        addresses = ipv4_addresses() if listen in ("", "0.0.0.0") else [listen]
        infos = _service_infos(_instance_name(name), osc_port, http_port, name,
                               addresses)  # fmt: skip
        zc = Zeroconf(ip_version=IPVersion.V4Only)
        done = asyncio.run_coroutine_threadsafe(_register(zc, infos), zc.loop)
        done.result(REGISTER_TIMEOUT_S)
    except (OSError, ZeroconfError) as exc:
        # TimeoutError is an OSError too: a network that swallows multicast.
        log.warning("zeroconf: not advertising %r: %s", name, str(exc) or repr(exc))
        if zc is not None:
            _close(zc)
        return Advertisement()
    log.info("zeroconf: advertising %s", ", ".join(i.name for i in infos))
    return Advertisement(zc, tuple(infos))


def _service_infos(
    instance: str,
    osc_port: int,
    http_port: int | None,
    engine: str,
    addresses: list[str],
) -> list[ServiceInfo]:
    server = f"{_host_label()}.local."
    ports = [(OSC_TYPE, osc_port)]
    if http_port is not None:
        ports.append((OSCQUERY_TYPE, http_port))
    return [
        ServiceInfo(
            kind,
            f"{instance}.{kind}",
            port=port,
            parsed_addresses=addresses,
            server=server,
            properties={"app": APP, "engine": engine},
        )
        for kind, port in ports
    ]


@dataclass(frozen=True)
class FoundEngine:
    """A livesound engine seen on the network."""

    name: str
    host: str
    port: int


def find_engines(seconds: float = FIND_S) -> list[FoundEngine]:
    """The livesound engines that answer on the local network within
    ``seconds``, sorted by name; empty where multicast does not work."""
    found: dict[str, FoundEngine] = {}
    lock = threading.Lock()
    try:
        zc = Zeroconf(ip_version=IPVersion.V4Only)
    except (OSError, ZeroconfError) as exc:
        log.warning("zeroconf: cannot look for engines: %s", exc)
        return []

    def on_change(zeroconf, service_type, name, state_change) -> None:
        if state_change is not ServiceStateChange.Added:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=1000)
        engine = _engine(info)
        if engine is not None:
            with lock:
                found[name] = engine

    try:
        browser = ServiceBrowser(zc, OSC_TYPE, handlers=[on_change])
        time.sleep(seconds)  # browsing is listening for a while
        browser.cancel()
    finally:
        _close(zc)
    with lock:
        return sorted(found.values(), key=lambda e: (e.name, e.host, e.port))


def _engine(info: ServiceInfo | None) -> FoundEngine | None:
    if info is None or not info.parsed_addresses():
        return None
    props = {k: v for k, v in (info.properties or {}).items() if v is not None}
    if props.get(b"app") != APP.encode():
        return None
    name = props.get(b"engine", b"").decode(errors="replace") or info.name
    return FoundEngine(name, info.parsed_addresses()[0], info.port)


def _close(zc: Zeroconf) -> None:
    # Closing sends goodbyes for every registered service first.
    try:
        zc.close()
    except (OSError, ZeroconfError) as exc:
        log.warning("zeroconf: could not withdraw the services: %s", exc)


async def _register(zc: Zeroconf, infos: list[ServiceInfo]) -> None:
    # Probe all names at once: one registration takes about 1.7 s.
    announcements = await asyncio.gather(
        *(zc.async_register_service(i, allow_name_change=True) for i in infos)
    )
    await asyncio.gather(*announcements)


def _instance_name(name: str) -> str:
    # A DNS label holds 63 bytes; keep whole characters.
    text = name.strip() or "livesound"
    return text.encode()[:63].decode(errors="ignore")


def _host_label() -> str:
    label = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")
    return label[:63] or "livesound"


def ipv4_addresses() -> list[str]:
    """This host's IPv4 addresses, loopback only when there is nothing else."""
    ips = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
           if ip.is_IPv4]  # fmt: skip
    outside = [ip for ip in ips if not ip.startswith("127.")]
    return outside or ips
