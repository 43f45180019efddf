"""Open Stage Control sessions for performers' monitor mixes (``livesound layout``).

The session follows the format Open Stage Control 1.x saves: a document
``{"createdWith", "version", "type": "session", "content": <root widget>}``
whose widgets carry their OSC ``address`` and ``target``. Properties left
out take Open Stage Control's defaults.

The tablet speaks the X32 dialect like any other client: send levels and the
mix master are 0..1 floats on the X32 fader law, the mute an int. A script
widget subscribes with ``/xremote`` (and to the mix's send meters) when the
session opens and renews both every 9 s, since subscriptions lapse after
10 s; it also queries every control once so the page starts in sync.
"""

import json
from typing import Any

from livesound.control import taper
from livesound.control.registry import Registry

OSC_VERSION = "1.29.8"
"""Open Stage Control release whose session format this follows. Sessions
from 1.24.2 or older get converted on load; this one is newer, so it loads
as written."""

RENEW_MS = 9000
"""How often the tablet renews its subscriptions (they last 10 s)."""

METER_BANK = "/ls/meters/mix/{mix:02d}"
"""Meter subscription for one mix: ``/meters ,s <bank>`` asks the engine to
push ``SEND_METER`` floats for every input's send into that mix."""

SEND_METER = "/ls/meters/mix/{mix:02d}/ch/{ch:02d}"
"""Level of input ``ch`` as it reaches mix ``mix``: a float 0..1 on the X32
fader law, so the meter lines up with the send fader beside it."""

_FADER_MARKS_DB = (-60.0, -30.0, -10.0, 0.0)


def performer_layout(
    registry: Registry, values: dict[str, Any], mix: int, host: str, port: int,
    engine: str = "",
) -> dict:  # fmt: skip
    """An Open Stage Control session for the performer of mix ``mix`` (1-based).

    One fader per input send into the mix, labelled with the channel names in
    ``values`` (engineering units, as ``Mixer.values``), each with a meter;
    the mix master and a mute. Every control sends to ``host:port``; the
    header names the ``engine`` (a FOH and a monitor engine: which one this
    tablet mixes on).
    """
    if not 1 <= mix <= registry.n_bus:
        raise ValueError(f"mix must be 1..{registry.n_bus}, got {mix}")
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1..65535, got {port}")
    target = f"{host}:{port}"
    bus = f"/bus/{mix:02d}"

    def value(address: str) -> Any:
        return values.get(address, registry[address].default)

    def level(address: str) -> float:
        return round(registry[address].to_norm(value(address)), 4)

    strips = []
    queries = [f"{bus}/config/name", f"{bus}/mix/fader", f"{bus}/mix/on"]
    for ch in range(1, registry.n_in + 1):
        name, send = f"/ch/{ch:02d}/config/name", f"/ch/{ch:02d}/mix/{mix:02d}/level"
        strips.append(_send_strip(ch, mix, value(name), level(send), target))
        queries += [name, send]
    master = _panel(
        "master",
        "vertical",
        [
            _text("master_label", "Master", height=40),
            {
                **_fader("master_fader", f"{bus}/mix/fader", target),
                "default": level(f"{bus}/mix/fader"),
                "expand": True,
            },
            {
                "type": "button",
                "id": "mute",
                "label": "MUTE",
                "mode": "toggle",
                # X32 ``mix/on``: 1 = sounding. The button lights when muted.
                "on": 0,
                "off": 1,
                "default": value(f"{bus}/mix/on"),
                "colorWidget": "#e53935",
                "height": 60,
                "address": f"{bus}/mix/on",
                "typeTags": "i",
                "target": target,
            },
        ],
        width=110,
    )
    header = _panel(
        "header",
        "horizontal",
        [
            *([_text("engine", engine, width=140)] if engine else []),
            _text("mix_number", f"Mix {mix}", width=100),
            _text(
                "mix_name",
                value(f"{bus}/config/name"),
                f"{bus}/config/name",
                expand=True,
            ),
            _text("connection", target, width=200),
        ],
        height=50,
    )
    sends = _panel("sends", "horizontal", strips, expand=True)
    body = _panel("body", "horizontal", [sends, master], expand=True)
    meters = METER_BANK.format(mix=mix)
    root = {
        "type": "root",
        "id": "root",
        "layout": "vertical",
        "widgets": [_subscription(target, meters, queries), header, body],
    }
    return {
        "createdWith": "Open Stage Control",
        "version": OSC_VERSION,
        "type": "session",
        "content": root,
    }


def _send_strip(ch: int, mix: int, name: str, level: float, target: str) -> dict:
    """Channel name over its send fader, with the send's meter beside it."""
    send = f"/ch/{ch:02d}/mix/{mix:02d}/level"
    fader = {**_fader(f"send_{ch:02d}", send, target), "default": level, "expand": True}
    meter = {
        # A non-interactive compact fader is Open Stage Control's meter.
        "type": "fader",
        "id": f"meter_{ch:02d}",
        "design": "compact",
        "interaction": False,
        "range": {"min": 0, "max": 1},
        "width": 14,
        "address": SEND_METER.format(mix=mix, ch=ch),
        "bypass": True,
    }
    label = _text(f"name_{ch:02d}", name, f"/ch/{ch:02d}/config/name", height=40)
    gauge = _panel(f"gauge_{ch:02d}", "horizontal", [fader, meter], expand=True)
    return _panel(f"strip_{ch:02d}", "vertical", [label, gauge], width=80)


def _fader(widget_id: str, address: str, target: str) -> dict:
    marks = {f"{taper.db_to_fader(db) * 100:g}%": {f"{db:g}": taper.db_to_fader(db)}
             for db in _FADER_MARKS_DB}  # fmt: skip
    return {
        "type": "fader",
        "id": widget_id,
        "pips": True,
        # Breakpoints only label the scale: the value stays the X32 float.
        "range": {"min": {"-inf": 0}, **marks, "max": {f"+{taper.MAX_DB:g}": 1}},
        "address": address,
        "typeTags": "f",
        # The X32 resolves 1024 fader steps; 2 decimals (the default) are too few.
        "decimals": 4,
        "target": target,
    }


def _text(widget_id: str, text: str, address: str = "", **geometry: Any) -> dict:
    # With an address, the text follows renames pushed by the engine.
    text_widget = {"type": "text", "id": widget_id, "default": text, **geometry}
    return {**text_widget, "address": address} if address else text_widget


def _panel(widget_id: str, layout: str, widgets: list, **geometry: Any) -> dict:
    return {
        "type": "panel",
        "id": widget_id,
        "layout": layout,
        "widgets": widgets,
        **geometry,
    }


def _subscription(target: str, meter_bank: str, queries: list[str]) -> dict:
    """A script widget that subscribes, renews every ``RENEW_MS`` and syncs once.

    ``onCreate`` scripts may send, and intervals created there keep that
    right, so the renewal needs no user interaction.
    """
    t, bank = json.dumps(target), json.dumps(meter_bank)
    # Semicolons throughout: a line starting with "[" would otherwise continue
    # the previous statement.
    script = "\n".join(
        [
            "var subscribe = function () {",
            f"    send({t}, '/xremote');",
            f"    send({t}, '/meters', {bank});",
            "};",
            "subscribe();",
            f"setInterval('renew', subscribe, {RENEW_MS});",
            f"var queries = {json.dumps(queries)};",
            f"queries.forEach(function (a) {{ send({t}, a); }});",
        ]
    )
    return {"type": "script", "id": "subscription", "onCreate": script}
