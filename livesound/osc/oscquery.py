"""OSCQuery: the address space as JSON over HTTP, for tools that discover parameters.

Follows the OSCQuery proposal (github.com/Vidvox/OSCQueryProposal): the
whole tree at ``/``, one node at its OSC address, one attribute with
``?ATTRIBUTE`` (``/ch/01/mix/fader?VALUE``) and the server's description
with ``?HOST_INFO``. Values are given as they travel over OSC in the X32
dialect (floats 0..1 on the parameter's taper), so VALUE and RANGE match
what a client sends; the real range and unit are in DESCRIPTION. UNIT is
left out: the proposal's units (``gain.db``, ``time.hz``) would describe
the engineering value, not the 0..1 float on the wire.

The HTTP server is read-only and runs as coroutines on one asyncio loop in
one thread, away from audio and from the OSC loop: a connection costs no
thread, a request must arrive within ``REQUEST_TIMEOUT_S``, and open
connections are capped per host and in all (when all are taken, the oldest
one still waiting for its request gives way).
"""

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from livesound.control.registry import Param, Registry
from livesound.osc.docs import notes, osc_encoding, value_range

log = logging.getLogger("livesound.osc.oscquery")

READ_WRITE = 3  # ACCESS: 1 readable, 2 writable
REQUEST_TIMEOUT_S = 5.0  # from connecting to the end of the request head
SEND_TIMEOUT_S = 10.0  # for the client to take the whole response
MAX_CONNECTIONS = 64
MAX_PER_HOST = 8
MAX_HEAD = 8192  # bytes of request line and headers

# Attributes a client may ask for one at a time (the proposal's core and the
# optional ones this server fills in).
ATTRIBUTES = (
    "FULL_PATH",
    "CONTENTS",
    "TYPE",
    "ACCESS",
    "VALUE",
    "RANGE",
    "DESCRIPTION",
)


def host_info(name: str, osc_port: int) -> dict:
    """The ``?HOST_INFO`` reply: who we are and where OSC goes.

    No OSC_IP: clients then send OSC to the host that served this JSON.
    """
    optional = ("ACCESS", "VALUE", "RANGE", "DESCRIPTION")
    unsupported = ("TAGS", "EXTENDED_TYPE", "UNIT", "CRITICAL", "CLIPMODE",
                   "LISTEN", "PATH_CHANGED")  # fmt: skip
    extensions = {a: True for a in optional} | {a: False for a in unsupported}
    return {
        "NAME": name,
        "OSC_PORT": osc_port,
        "OSC_TRANSPORT": "UDP",
        "EXTENSIONS": extensions,
    }


def _method_node(param: Param, value: Any) -> dict:
    """One parameter as an OSCQuery method node, ``value`` in engineering units."""
    node: dict[str, Any] = {"FULL_PATH": param.address}
    if param.kind == "float":
        node.update(
            TYPE="f", VALUE=[param.to_norm(value)], RANGE=[{"MIN": 0.0, "MAX": 1.0}]
        )
    elif param.kind == "enum":
        n = len(param.choices)
        node.update(TYPE="i", VALUE=[int(value)],
                    RANGE=[{"MIN": 0, "MAX": n - 1, "VALS": list(range(n))}])  # fmt: skip
    elif param.kind == "int":
        node.update(TYPE="i", VALUE=[int(value)],
                    RANGE=[{"MIN": int(param.lo), "MAX": int(param.hi)}])  # fmt: skip
    else:
        node.update(TYPE="s", VALUE=[str(value)])
    node["ACCESS"] = READ_WRITE
    description = f"{value_range(param)}; sent as {osc_encoding(param)}"
    extra = notes(param)
    node["DESCRIPTION"] = f"{description}. {extra}" if extra else description
    return node


def oscquery_tree(registry: Registry, values: dict[str, Any]) -> dict:
    """The whole address space as nested OSCQuery nodes with current values."""
    root = _container("/")
    for param in registry:
        parts = param.address.strip("/").split("/")
        node = root
        for i in range(1, len(parts)):
            path = "/" + "/".join(parts[:i])
            node = node["CONTENTS"].setdefault(parts[i - 1], _container(path))
        value = values.get(param.address, param.default)
        node["CONTENTS"][parts[-1]] = _method_node(param, value)
    return root


def _container(path: str) -> dict:
    return {"FULL_PATH": path, "ACCESS": 0, "CONTENTS": {}}


def _find(tree: dict, path: str) -> dict | None:
    node = tree
    for part in filter(None, path.split("/")):
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


class OscQueryHttpServer:
    """OSCQuery over HTTP for a registry whose values ``values_fn`` returns.

    ``values_fn`` is called once per request from the server's thread and
    must return a consistent snapshot (``Mixer.snapshot``). ``port=0`` picks
    a free port; read ``.port`` after ``start()``. ``stats`` counts
    connections, requests, refusals and timeouts.
    """

    def __init__(
        self,
        registry: Registry,
        values_fn: Callable[[], dict[str, Any]],
        osc_port: int,
        host: str = "0.0.0.0",
        port: int = 0,
        name: str = "livesound",
    ) -> None:
        self.registry = registry
        self.values_fn = values_fn
        self.host_info = host_info(name, osc_port)
        self.stats: Counter = Counter()
        self._address = (host, port)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        # Open connections: task -> (host, whether it still waits for its request)
        self._open: dict[asyncio.Task, tuple[str, bool]] = {}
        self._warned = 0.0
        # The last tree built and its JSON: rebuilt only when a value changed
        # (the whole tree of a big show takes tens of milliseconds).
        self._values: dict[str, Any] | None = None
        self._tree: dict = {}
        self._tree_json = b""

    def start(self) -> "OscQueryHttpServer":
        """Bind (``OSError`` if the port is taken) and serve from one thread."""
        self._sock = socket.create_server(self._address, backlog=128)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="oscquery-http", daemon=True
        )
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connected, sock=self._sock, limit=MAX_HEAD),
            self._loop,
        )
        self._server = started.result(10)
        log.info("OSCQuery on http://%s:%d/", self._address[0], self.port)
        return self

    @property
    def port(self) -> int:
        """The TCP port served (after ``start()``)."""
        if self._sock is None:
            raise RuntimeError("OscQueryHttpServer not started")
        return self._sock.getsockname()[1]

    def close(self) -> None:
        """Stop serving, drop every open connection and free the port."""
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._sock = self._server = None

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._open):
            task.cancel()
        await asyncio.gather(*self._open, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._open)

    # -- one connection ------------------------------------------------------------

    def _admit(self, host: str) -> bool:
        """Room for one more connection from ``host``? At the overall cap the
        oldest connection still waiting for its request is dropped for it."""
        if sum(h == host for h, _ in self._open.values()) >= MAX_PER_HOST:
            return False
        if len(self._open) < MAX_CONNECTIONS:
            return True
        idle = next((t for t, (_, waiting) in self._open.items() if waiting), None)
        if idle is None:
            return False
        idle.cancel()
        self.stats["dropped_idle"] += 1
        return True

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:  # fmt: skip
        task = asyncio.current_task()
        host = (writer.get_extra_info("peername") or ("?",))[0]
        self.stats["connections"] += 1
        if not self._admit(host):
            self.stats["refused"] += 1
            self._warn(host)
            writer.transport.abort()
            return
        self._open[task] = (host, True)
        answered = False
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S
            )
            self._open[task] = (host, False)
            self.stats["requests"] += 1
            writer.write(self._response(head))
            await asyncio.wait_for(writer.drain(), SEND_TIMEOUT_S)
            answered = True
        except TimeoutError:
            self.stats["timeouts"] += 1
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            self.stats["bad_requests"] += 1
        finally:
            del self._open[task]
            # Answered: close after the response; else drop it unsent.
            if answered:
                writer.close()
            else:
                writer.transport.abort()

    def _warn(self, host: str) -> None:
        now = time.monotonic()
        if now - self._warned > 10.0:
            self._warned = now
            log.warning("OSCQuery: refusing connections (from %s and others): %d open, "
                        "at most %d per host", host, len(self._open), MAX_PER_HOST)  # fmt: skip

    def _response(self, head: bytes) -> bytes:
        """The whole HTTP response to a request head."""
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            status, body = HTTPStatus.BAD_REQUEST, {"error": "bad request line"}
        elif parts[0] != "GET":
            status, body = HTTPStatus.METHOD_NOT_ALLOWED, {"error": "only GET"}
        else:
            try:
                status, body = self.respond(parts[1])
            except Exception:
                # A bad snapshot must not go unnoticed; say so and keep serving.
                log.exception("OSCQuery request %s failed", parts[1])
                status, body = (
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"error": "internal error"},
                )
        data = b"" if body is None else self._encoded(body)
        headers = [f"HTTP/1.1 {status.value} {status.phrase}"]
        if body is not None:
            headers += [
                "Content-Type: application/json",
                f"Content-Length: {len(data)}",
            ]
        # Browser-based OSCQuery clients fetch from another origin.
        headers += ["Access-Control-Allow-Origin: *", "Connection: close", "", ""]
        return "\r\n".join(headers).encode("latin-1") + data

    def respond(self, target: str) -> tuple[HTTPStatus, dict | None]:
        """Status and JSON body for a request target like ``/ch/01?VALUE``."""
        url = urlsplit(target)
        attribute = url.query
        if attribute == "HOST_INFO":
            return HTTPStatus.OK, self.host_info
        if attribute and attribute not in ATTRIBUTES:
            return HTTPStatus.BAD_REQUEST, {"error": f"unknown attribute {attribute}"}
        path = unquote(url.path)
        node = _find(self._current_tree(), path)
        if node is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no OSC node at {path}"}
        if not attribute:
            return HTTPStatus.OK, node
        if attribute not in node:
            # The proposal's answer when a node has no such attribute (a
            # container's VALUE): success, nothing to send.
            return HTTPStatus.NO_CONTENT, None
        return HTTPStatus.OK, {attribute: node[attribute]}

    def _current_tree(self) -> dict:
        values = self.values_fn()
        if values != self._values:
            self._tree = oscquery_tree(self.registry, values)
            self._tree_json = b""
            self._values = values
        return self._tree

    def _encoded(self, body: dict) -> bytes:
        if body is not self._tree:
            return json.dumps(body, allow_nan=False).encode()
        if not self._tree_json:
            self._tree_json = json.dumps(body, allow_nan=False).encode()
        return self._tree_json
