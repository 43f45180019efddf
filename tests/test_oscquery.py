"""Tests for OSCQuery (livesound.osc.oscquery): the tree, and real HTTP requests."""

import json
import urllib.error
import urllib.request

import pytest
from osc_helpers import DEADLINE, free_udp_port

from livesound.control.registry import Registry
from livesound.osc.oscquery import OscQueryHttpServer, host_info, oscquery_tree
from livesound.virtual.show import virtual_stage_show

OSC_PORT = free_udp_port()  # the OSC port the HTTP server reports (not bound here)


@pytest.fixture(scope="module")
def registry():
    return Registry(4, 2)


@pytest.fixture
def values(registry):
    return registry.defaults()


@pytest.fixture
def server(registry, values):
    # values_fn returns a copy, as Mixer.snapshot does; tests mutate ``values``.
    srv = OscQueryHttpServer(registry, lambda: dict(values), OSC_PORT,
                             host="127.0.0.1", name="test desk").start()  # fmt: skip
    yield srv
    srv.close()


def get(server, target):
    """(status, content type, parsed JSON or None) for GET ``target``."""
    url = f"http://127.0.0.1:{server.port}{target}"
    try:
        with urllib.request.urlopen(url, timeout=DEADLINE) as r:
            body = r.read()
            status, ctype = r.status, r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read(), e.code, e.headers.get("Content-Type")
    return status, ctype, json.loads(body) if body else None


def walk(node):
    yield node
    for child in node.get("CONTENTS", {}).values():
        yield from walk(child)


# -- the tree -------------------------------------------------------------------


def test_every_parameter_is_a_method_at_its_address(registry, values):
    tree = oscquery_tree(registry, values)
    methods = {n["FULL_PATH"]: n for n in walk(tree) if "CONTENTS" not in n}
    assert set(methods) == {p.address for p in registry}
    for node in walk(tree):
        if "CONTENTS" in node:
            for name, child in node["CONTENTS"].items():
                assert child["FULL_PATH"] == node["FULL_PATH"].rstrip("/") + "/" + name


def test_values_are_in_the_osc_encoding_and_within_range(registry):
    values = registry.defaults() | virtual_stage_show(4, 2)
    tree = oscquery_tree(registry, values)
    for node in walk(tree):
        if "VALUE" not in node:
            continue
        (value,), ttype = node["VALUE"], node["TYPE"]
        assert {"f": float, "i": int, "s": str}[ttype] is type(value)
        if ttype != "s":
            (rng,) = node["RANGE"]
            assert rng["MIN"] <= value <= rng["MAX"], node["FULL_PATH"]
    fader = tree["CONTENTS"]["ch"]["CONTENTS"]["01"]["CONTENTS"]["mix"]["CONTENTS"][
        "fader"
    ]
    # The stage show's kick fader is at -4 dB: X32 float 0.65.
    assert fader["VALUE"] == [pytest.approx(0.65)]
    assert fader["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]


def test_types_ranges_and_descriptions(registry, values):
    tree = oscquery_tree(registry, values)
    ch = tree["CONTENTS"]["ch"]["CONTENTS"]["01"]["CONTENTS"]
    hpf = ch["preamp"]["CONTENTS"]["hpf"]
    assert hpf["TYPE"] == "f" and hpf["ACCESS"] == 3
    assert "20..400 Hz" in hpf["DESCRIPTION"] and "log" in hpf["DESCRIPTION"]
    ratio = ch["dyn"]["CONTENTS"]["ratio"]
    assert ratio["TYPE"] == "i" and ratio["VALUE"] == [5]
    assert ratio["RANGE"] == [{"MIN": 0, "MAX": 11, "VALS": list(range(12))}]
    assert "5 = 3.0" in ratio["DESCRIPTION"]
    on = ch["mix"]["CONTENTS"]["on"]
    assert on["TYPE"] == "i" and on["RANGE"] == [{"MIN": 0, "MAX": 1}]
    name = ch["config"]["CONTENTS"]["name"]
    assert name["TYPE"] == "s" and name["VALUE"] == ["Ch 1"] and "RANGE" not in name
    assert "UNIT" not in hpf  # the wire value is 0..1, not Hz


def test_host_info():
    port = free_udp_port()
    info = host_info("foh", port)
    assert info["NAME"] == "foh" and info["OSC_PORT"] == port
    assert info["OSC_TRANSPORT"] == "UDP"
    assert info["EXTENSIONS"]["VALUE"] is True and info["EXTENSIONS"]["LISTEN"] is False


# -- over HTTP --------------------------------------------------------------------


def test_root_serves_the_whole_tree(server, registry, values):
    status, ctype, body = get(server, "/")
    assert status == 200 and ctype == "application/json"
    assert body == oscquery_tree(registry, values)
    assert {"ch", "bus", "main", "config", "ls", "-stat"} <= set(body["CONTENTS"])


def test_a_method_and_its_value_follow_the_live_state(server, values):
    status, _, node = get(server, "/ch/01/mix/fader")
    assert status == 200 and node["FULL_PATH"] == "/ch/01/mix/fader"
    assert node["VALUE"] == [0.0]  # off
    values["/ch/01/mix/fader"] = 0.0
    assert get(server, "/ch/01/mix/fader?VALUE") == (
        200,
        "application/json",
        {"VALUE": [0.75]},
    )


def test_a_container_with_or_without_trailing_slash(server):
    for target in ("/ch/02", "/ch/02/"):
        status, _, node = get(server, target)
        assert status == 200 and node["FULL_PATH"] == "/ch/02"
        assert {"config", "preamp", "mix", "eq"} <= set(node["CONTENTS"])


def test_host_info_over_http(server):
    status, _, info = get(server, "/?HOST_INFO")
    assert status == 200
    assert info == host_info("test desk", OSC_PORT)


def test_single_attributes(server):
    assert get(server, "/ch/01/dyn/ratio?TYPE")[2] == {"TYPE": "i"}
    assert get(server, "/bus/02/mix/fader?RANGE")[2] == {
        "RANGE": [{"MIN": 0.0, "MAX": 1.0}]
    }
    # A container has no value: success, no content.
    assert get(server, "/ch?VALUE") == (204, None, None)


def test_unknown_paths_and_attributes_get_json_errors(server):
    status, ctype, body = get(server, "/ch/99/mix/fader")
    assert status == 404 and ctype == "application/json" and "/ch/99" in body["error"]
    status, _, body = get(server, "/ch/01/mix/fader/extra")
    assert status == 404
    status, ctype, body = get(server, "/ch/01/mix/fader?COLOUR")
    assert status == 400 and ctype == "application/json" and "COLOUR" in body["error"]


def test_a_failing_snapshot_is_a_500_and_the_server_keeps_serving(registry):
    calls = []

    def values_fn():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("engine gone")
        return registry.defaults()

    srv = OscQueryHttpServer(registry, values_fn, OSC_PORT, host="127.0.0.1").start()
    try:
        status, _, body = get(srv, "/")
        assert status == 500 and body == {"error": "internal error"}
        assert get(srv, "/ch/01/mix/on?VALUE")[2] == {"VALUE": [1]}
    finally:
        srv.close()


def test_close_frees_the_port(registry):
    srv = OscQueryHttpServer(
        registry, registry.defaults, OSC_PORT, host="127.0.0.1"
    ).start()
    port = srv.port
    assert port > 0
    srv.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
