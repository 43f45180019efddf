"""OSCQuery: the address space as JSON over HTTP, for tools that discover parameters.

Follows the OSCQuery proposal (github.com/Vidvox/OSCQueryProposal): the
whole tree at ``/``, one node at its OSC address, one attribute with
``?ATTRIBUTE`` (``/ch/01/mix/fader?VALUE``) and the server's description
with ``?HOST_INFO``. Values are given as they travel over OSC in the X32
dialect (floats 0..1 on the parameter's taper), so VALUE and RANGE match
what a client sends; the real range and unit are in DESCRIPTION. UNIT is
left out: the proposal's units (``gain.db``, ``time.hz``) would describe
the engineering value, not the 0..1 float on the wire.

The HTTP server is read-only and runs in daemon threads, away from audio.
"""

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from livesound.control.registry import Param, Registry
from livesound.osc.docs import notes, osc_encoding, value_range

log = logging.getLogger("livesound.osc.oscquery")

READ_WRITE = 3  # ACCESS: 1 readable, 2 writable

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

    ``values_fn`` is called once per request from a server thread and must
    return a consistent snapshot (``Mixer.snapshot``). ``port=0`` picks a
    free port; read ``.port`` after ``start()``.
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
        self._address = (host, port)
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "OscQueryHttpServer":
        """Bind and serve in a daemon thread; returns self."""
        self._httpd = _Httpd(self._address, _Handler, self)
        # A short poll keeps close() quick; the loop is otherwise idle in select.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oscquery-http",
            daemon=True,
        )
        self._thread.start()
        log.info("OSCQuery on http://%s:%d/", self._address[0], self.port)
        return self

    @property
    def port(self) -> int:
        """The TCP port served (after ``start()``)."""
        if self._httpd is None:
            raise RuntimeError("OscQueryHttpServer not started")
        return self._httpd.server_address[1]

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = None

    def respond(self, target: str) -> tuple[HTTPStatus, dict | None]:
        """Status and JSON body for a request target like ``/ch/01?VALUE``."""
        url = urlsplit(target)
        attribute = url.query
        if attribute == "HOST_INFO":
            return HTTPStatus.OK, self.host_info
        if attribute and attribute not in ATTRIBUTES:
            return HTTPStatus.BAD_REQUEST, {"error": f"unknown attribute {attribute}"}
        path = unquote(url.path)
        node = _find(oscquery_tree(self.registry, self.values_fn()), path)
        if node is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no OSC node at {path}"}
        if not attribute:
            return HTTPStatus.OK, node
        if attribute not in node:
            # The proposal's answer when a node has no such attribute (a
            # container's VALUE): success, nothing to send.
            return HTTPStatus.NO_CONTENT, None
        return HTTPStatus.OK, {attribute: node[attribute]}


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, app: OscQueryHttpServer) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Httpd

    def do_GET(self) -> None:
        try:
            status, body = self.server.app.respond(self.path)
        except Exception:
            # A bad snapshot must not kill the thread silently; say so.
            log.exception("OSCQuery request %s failed", self.path)
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
        data = b"" if body is None else json.dumps(body, allow_nan=False).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
        # Browser-based OSCQuery clients fetch from another origin.
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)
