"""Tests for the Open Stage Control performer layouts (livesound.osc.layout)."""

import json
import re
import shutil
import subprocess

import pytest
from osc_helpers import DEADLINE, free_udp_port

from livesound.control.registry import Registry
from livesound.control.taper import db_to_fader
from livesound.osc.layout import OSC_VERSION, RENEW_MS, performer_layout
from livesound.virtual.show import virtual_stage_show

N_IN, N_BUS = 8, 4
HOST, PORT = "192.0.2.10", free_udp_port()  # an address in a layout, never bound here
TARGET = f"{HOST}:{PORT}"

# Properties Open Stage Control 1.29 declares for the widget types used here
# (resources/docs/docs/widgets/properties-reference.md). Its parser deletes
# any other property without a word, so a typo would silently lose a setting.
_COMMON = {"type", "id", "visible", "interaction", "width", "height", "expand",
           "colorWidget", "default", "address", "typeTags", "decimals", "target",
           "bypass", "onCreate"}  # fmt: skip
KNOWN_PROPS = {
    "root": _COMMON | {"layout", "widgets"},
    "panel": _COMMON | {"layout", "widgets"},
    "text": _COMMON - {"typeTags"},
    "fader": _COMMON | {"design", "pips", "range"},
    "button": _COMMON | {"label", "mode", "on", "off"},
    "script": {"type", "id", "address", "target", "onCreate"},
}


@pytest.fixture(scope="module")
def show():
    registry = Registry(N_IN, N_BUS)
    values = registry.defaults() | virtual_stage_show(N_IN, N_BUS)
    return registry, values


@pytest.fixture(scope="module")
def session(show):
    registry, values = show
    return performer_layout(registry, values, mix=2, host=HOST, port=PORT)


def widgets(node):
    """Every widget under ``node`` with the panel that holds it."""
    for child in node.get("widgets", []):
        yield child, node
        yield from widgets(child)


def by_id(session, widget_id):
    return next(w for w, _ in widgets(session["content"]) if w["id"] == widget_id)


def send_faders(session):
    return [
        (w, parent)
        for w, parent in widgets(session["content"])
        if w["type"] == "fader" and w["address"].startswith("/ch/")
    ]


def test_is_a_json_session_open_stage_control_loads_as_written(session):
    assert json.loads(json.dumps(session, allow_nan=False)) == session
    assert session["type"] == "session"
    assert session["createdWith"] == "Open Stage Control"
    assert session["content"]["type"] == "root"
    # Sessions from 1.24.2 and older are run through converters on load.
    version = tuple(int(x) for x in OSC_VERSION.split("."))
    assert session["version"] == OSC_VERSION and version > (1, 24, 2)


def test_widgets_use_only_documented_properties_and_unique_ids(session):
    all_widgets = [w for w, _ in widgets(session["content"])]
    for w in all_widgets:
        assert set(w) <= KNOWN_PROPS[w["type"]], (
            w["id"],
            set(w) - KNOWN_PROPS[w["type"]],
        )
    ids = [w["id"] for w in all_widgets]
    # Open Stage Control treats widgets with the same id as clones.
    assert len(ids) == len(set(ids))


def test_one_send_fader_per_input_with_the_x32_address_and_encoding(session):
    faders = [w for w, _ in send_faders(session)]
    assert [w["address"] for w in faders] == [
        f"/ch/{ch:02d}/mix/02/level" for ch in range(1, N_IN + 1)
    ]
    for w in faders:
        assert w["typeTags"] == "f"
        assert w["target"] == TARGET
        assert w["range"]["min"] == {"-inf": 0} and w["range"]["max"] == {"+10": 1}
        assert w["range"]["75%"] == {"0": 0.75}  # the X32's 0 dB


def test_send_faders_are_labelled_with_the_channel_names(show, session):
    registry, values = show
    faders = send_faders(session)
    for ch, (fader, _) in enumerate(faders, start=1):
        strip = by_id(session, f"strip_{ch:02d}")
        texts = [w for w, _ in widgets(strip) if w["type"] == "text"]
        assert fader in [w for w, _ in widgets(strip)]
        assert [t["default"] for t in texts] == [values[f"/ch/{ch:02d}/config/name"]]
        # The label follows renames the engine pushes.
        assert texts[0]["address"] == f"/ch/{ch:02d}/config/name"
    assert by_id(session, "name_01")["default"] == "Kick"
    assert by_id(session, "name_05")["default"] == "Guitar"


def test_faders_start_at_the_current_levels(session):
    # The stage show sends Guitar at -3 dB and Kick at -90 dB (off) into mix 2.
    assert by_id(session, "send_05")["default"] == pytest.approx(
        db_to_fader(-3.0), abs=1e-4
    )
    assert by_id(session, "send_01")["default"] == 0.0
    assert by_id(session, "master_fader")["default"] == 0.75  # buses start at 0 dB


def test_mix_master_and_mute(session):
    master = by_id(session, "master_fader")
    assert master["address"] == "/bus/02/mix/fader"
    assert master["typeTags"] == "f" and master["target"] == TARGET
    mute = by_id(session, "mute")
    assert mute["type"] == "button" and mute["address"] == "/bus/02/mix/on"
    # Lit = muted = X32 mix/on 0; an int, as X32 switches are.
    assert (mute["on"], mute["off"], mute["typeTags"]) == (0, 1, "i")
    assert mute["target"] == TARGET and mute["default"] == 1


def test_a_meter_beside_every_send(session):
    for ch in range(1, N_IN + 1):
        meter = by_id(session, f"meter_{ch:02d}")
        gauge = by_id(session, f"gauge_{ch:02d}")
        assert (
            meter in gauge["widgets"]
            and by_id(session, f"send_{ch:02d}") in gauge["widgets"]
        )
        assert meter["address"] == f"/ls/meters/mix/02/ch/{ch:02d}"
        assert meter["interaction"] is False and meter["bypass"] is True


def test_subscription_is_renewed_before_it_lapses(session):
    scripts = [w for w, _ in widgets(session["content"]) if w["type"] == "script"]
    assert len(scripts) == 1
    code = scripts[0]["onCreate"]
    assert f"send({json.dumps(TARGET)}, '/xremote')" in code
    (interval,) = re.findall(r"setInterval\('renew', subscribe, (\d+)\)", code)
    assert int(interval) == RENEW_MS < 10_000


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the script")
def test_subscription_script_runs_and_renews(session):
    """Run the onCreate script in node with Open Stage Control's script API stubbed."""
    code = by_id(session, "subscription")["onCreate"]
    harness = f"""
        const sent = []; let timer = null;
        const send = (target, address, ...args) => sent.push([target, address, ...args]);
        const setInterval = (id, callback, ms) => {{ timer = {{id, callback, ms}}; }};
        new Function("send", "setInterval", {json.dumps(code)})(send, setInterval);
        const atStart = sent.length;
        timer.callback();
        console.log(JSON.stringify({{sent, atStart, ms: timer.ms}}));
    """
    run = subprocess.run(
        ["node", "-e", harness], capture_output=True, text=True, timeout=DEADLINE
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    at_start, renewal = out["sent"][: out["atStart"]], out["sent"][out["atStart"] :]
    subscribe = [[TARGET, "/xremote"], [TARGET, "/meters", "/ls/meters/mix/02"]]
    assert at_start[:2] == subscribe and renewal == subscribe
    assert out["ms"] == RENEW_MS
    # Then one query (no arguments) per control, so the page starts in sync.
    queries = {m[1] for m in at_start[2:]}
    assert all(len(m) == 2 for m in at_start[2:])
    assert {f"/ch/{ch:02d}/mix/02/level" for ch in range(1, N_IN + 1)} <= queries
    assert {"/bus/02/mix/fader", "/bus/02/mix/on"} <= queries


@pytest.mark.parametrize("mix", [0, N_BUS + 1, -1])
def test_mix_outside_the_buses_is_refused(show, mix):
    registry, values = show
    with pytest.raises(ValueError, match=f"1..{N_BUS}"):
        performer_layout(registry, values, mix=mix, host=HOST, port=PORT)


def test_every_bus_gets_its_own_layout(show):
    registry, values = show
    for mix in range(1, N_BUS + 1):
        session = performer_layout(registry, values, mix=mix, host=HOST, port=PORT)
        assert (
            by_id(session, "mix_name")["default"]
            == values[f"/bus/{mix:02d}/config/name"]
        )
        assert by_id(session, "send_03")["address"] == f"/ch/03/mix/{mix:02d}/level"


@pytest.mark.parametrize("port", [0, 65536])
def test_a_port_outside_udp_is_refused(show, port):
    registry, values = show
    with pytest.raises(ValueError, match="port"):
        performer_layout(registry, values, mix=1, host=HOST, port=port)
