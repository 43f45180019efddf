"""DCAs and mute groups over OSC, against a real ``livesound engine`` process:
X32 addresses and types on the wire, ``/node`` text, scenes and roles
(undo: test_undo.py). Every wait is for a condition, on free ports."""

from __future__ import annotations

import tomllib

import pytest
from osc_helpers import Client, EngineProcess, fader_norm, wait_until

from livesound.control.registry import X32_COLORS

SHOW = """\
[osc]
clients = [{ address = "127.0.0.2", role = "performer:2" }]
"""
PERFORMER = "127.0.0.2"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    base = tmp_path_factory.mktemp("dca")
    (base / "scenes").mkdir()
    (base / "show.toml").write_text(SHOW)
    proc = EngineProcess("--scenes", str(base / "scenes"), "--show-config",
                         str(base / "show.toml")).start()  # fmt: skip
    proc.scenes = base / "scenes"
    yield proc
    assert proc.stop() == 0


def _typed(c: Client, address: str) -> tuple[str, object]:
    reply = c.request(address)
    assert reply.address == address, reply
    return reply.tags, reply.arg


def test_dcas_and_mute_groups_answer_as_an_x32(engine):
    with Client(engine.port) as c:
        c.send("/dca/1/fader", fader_norm(-10.0))
        c.send("/dca/1/config/name", "Drums")
        c.send("/dca/1/config/color", X32_COLORS.index("RD"))
        c.send("/ch/01/grp/dca", 0b101)
        c.send("/ch/02/grp/mute", 0b10)
        c.send("/bus/01/grp/dca", 0b1)
        c.send("/config/mute/2", 1)
        wait_until(lambda: c.query("/config/mute/2") == 1, what="mute group 2")
        tags, fader = _typed(c, "/dca/1/fader")
        assert tags == "f" and fader == pytest.approx(fader_norm(-10.0), abs=1e-6)
        assert _typed(c, "/dca/1/on") == ("i", 1)
        assert _typed(c, "/dca/1/config/name") == ("s", "Drums")
        assert _typed(c, "/dca/1/config/color") == ("i", X32_COLORS.index("RD"))
        assert _typed(c, "/ch/01/grp/dca") == ("i", 0b101)
        assert _typed(c, "/ch/02/grp/mute") == ("i", 0b10)
        assert _typed(c, "/bus/01/grp/dca") == ("i", 0b1)
        assert c.request("/node", "dca/1").arg == "/dca/1 ON -10.0\n"
        assert c.request("/node", "ch/01/grp").arg == "/ch/01/grp %00000101 %000000\n"
        assert c.request("/node", "config/mute").arg == (
            "/config/mute OFF ON OFF OFF OFF OFF\n"
        )
        # Beyond the X32's six groups: refused, nothing changes (the query
        # is answered after the write: one socket's datagrams keep order).
        c.send("/ch/01/grp/mute", 64)
        assert c.query("/ch/01/grp/mute") == 0


def test_scenes_store_and_recall_dcas_and_mute_groups(engine):
    with Client(engine.port) as c:
        c.send("/dca/3/fader", fader_norm(-20.0))
        c.send("/dca/3/on", 0)
        c.send("/ch/04/grp/dca", 0b100)
        c.send("/ch/04/grp/mute", 0b1000)
        c.send("/config/mute/4", 1)
        wait_until(lambda: c.query("/config/mute/4") == 1, what="mute group 4")
        assert c.request("/ls/scene/save", "groups").args == ("groups",)
        saved = tomllib.loads((engine.scenes / "groups.toml").read_text())
        assert saved["dca"]["3"]["fader_db"] == pytest.approx(-20.0, abs=0.05)
        assert saved["dca"]["3"]["on"] == 0
        assert saved["ch"]["04"]["dca_mask"] == 0b100
        assert saved["ch"]["04"]["mute_mask"] == 0b1000
        assert saved["mutegroup"]["4"]["on"] == 1
        for address, value in [("/dca/3/fader", 0.75), ("/dca/3/on", 1),
                               ("/ch/04/grp/dca", 0), ("/ch/04/grp/mute", 0),
                               ("/config/mute/4", 0)]:  # fmt: skip
            c.send(address, value)
        wait_until(lambda: c.query("/config/mute/4") == 0, what="the changes")
        assert c.request("/ls/scene/recall", "groups").args[0] == "groups"
        assert c.query("/dca/3/fader") == pytest.approx(fader_norm(-20.0), abs=1e-3)
        assert c.query("/dca/3/on") == 0
        assert c.query("/ch/04/grp/dca") == 0b100
        assert c.query("/ch/04/grp/mute") == 0b1000
        assert c.query("/config/mute/4") == 1


def test_a_performer_may_not_touch_dcas_or_mute_groups(engine):
    with (
        Client(engine.port) as eng,
        Client(engine.port, ip=PERFORMER) as perf,
    ):
        assert perf.request("/ls/errors", 1).args == (1,)
        # What the performer may do goes through (so the refusals below are
        # about the address, not a deaf socket).
        perf.send("/bus/02/mix/fader", fader_norm(-5.0))
        wait_until(lambda: eng.query("/bus/02/mix/fader") == pytest.approx(
            fader_norm(-5.0), abs=1e-3), what="the performer's own master")  # fmt: skip
        for address, value in [("/dca/2/fader", 0.1), ("/dca/2/on", 0),
                               ("/config/mute/5", 1), ("/bus/02/grp/mute", 16),
                               ("/ch/01/grp/dca", 2)]:  # fmt: skip
            before = eng.query(address)
            reply = perf.request(address, value)
            assert (reply.address, reply.args[0]) == ("/ls/error", address)
            assert "performer:2" in reply.args[1]
            assert eng.query(address) == before
