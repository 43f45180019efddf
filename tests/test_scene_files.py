"""Scene files: the TOML format, refusals of bad files, fuzzing, atomic writes
under ``kill -9``, and the content of the shipped scenes in ``scenes/``.

Everything here works on text and files through ``livesound.scenes.files``;
recalling into a running mix is tested in test_scenes.py.
"""

from __future__ import annotations

import math
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from osc_helpers import DEADLINE
from scene_helpers import rich_values

from livesound.control.registry import EQ_TYPES, X32_SEND_TYPES, Registry
from livesound.scenes import files
from livesound.scenes.files import FORMAT, GROUPS, Scene, SceneError, Scope

REG = Registry(8, 4)
REG32 = Registry(32, 16)
SHIPPED = Path(__file__).resolve().parent.parent / "scenes"
SHIPPED_NAMES = ("band-4piece", "speech-conference", "singer-songwriter-iem")


def scene_text(values: dict, scope: Scope | None = None, fade_s: float = 0.0) -> str:
    scope = scope or Scope()
    return files.to_toml(REG, files.capture(REG, values, "test", scope, fade_s))


# -- the format -------------------------------------------------------------------


def test_round_trip_through_text_keeps_every_value_exactly():
    values = rich_values(REG, live_notches=True)
    text = scene_text(values, fade_s=2.5)
    scene = files.parse(REG, text, "rich.toml")
    live_on = {a for a, v in values.items() if a.endswith("/on") and "/notch/" in a
               and v and not values[a[:-2] + "fixed"]}  # fmt: skip
    assert live_on, "the rich values should hold live notches"
    assert scene.values == {a: 0 if a in live_on else v for a, v in values.items()}
    assert (scene.name, scene.fade_s) == ("test", 2.5)
    assert scene.scope == Scope(None, tuple(sorted(GROUPS)))


def test_file_holds_only_the_scope_sorted_with_units():
    scope = Scope(("ch.02", "bus.01"), ("fader", "eq"))
    text = scene_text(rich_values(REG), scope)
    scene = files.parse(REG, text, "part.toml")
    stored = {p.address for p in REG if scope.covers(p)}
    assert set(scene.values) == stored
    assert stored >= {"/ch/02/mix/fader", "/ch/02/eq/3/f", "/bus/01/eq/6/g"}
    assert "/ch/02/mix/pan" not in stored and "/ch/01/mix/fader" not in stored
    headers = re.findall(r"^\[(.+)\]$", text, re.M)
    assert headers == sorted(headers)
    assert "[ch.01]" not in text and "[ch.02]" in text
    assert re.search(r"^fader_db = ", text, re.M)
    assert re.search(r"^freq_hz = ", text, re.M)
    for table in re.split(r"^\[.+\]$", text, flags=re.M):
        keys = re.findall(r"^(\w+) = ", table, re.M)
        assert keys == sorted(keys)


def test_saving_the_same_show_twice_gives_the_same_bytes(tmp_path):
    values = rich_values(REG, seed=3)
    for name in ("a", "b"):
        files.save(REG, files.capture(REG, values, "x", Scope()), tmp_path / name)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_enums_are_written_by_name():
    values = REG.defaults()
    values["/ch/01/eq/2/type"] = EQ_TYPES.index("HCut")
    values["/ch/01/mix/01/type"] = X32_SEND_TYPES.index("PRE")
    text = scene_text(values, Scope(("ch.01",), ("eq", "sends")))
    assert 'type = "HCut"' in text and 'tap = "PRE"' in text


# -- bad files ----------------------------------------------------------------------

GOOD = """\
format = 1
name = "club"
fade_s = 1.5

[scope]
groups = ["eq", "fader"]
strips = "all"

[ch.01]
fader_db = -4.0
name = "Kick"

[ch.01.eq.2]
freq_hz = 350.0
gain_db = -6.0
type = "PEQ"
"""


def _bad(line: int, new: str) -> str:
    lines = GOOD.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_the_good_file_is_good():
    scene = files.parse(REG, GOOD, "club.toml")
    assert scene.values == {"/ch/01/mix/fader": -4.0, "/ch/01/config/name": "Kick",
                            "/ch/01/eq/2/f": 350.0, "/ch/01/eq/2/g": -6.0,
                            "/ch/01/eq/2/type": EQ_TYPES.index("PEQ")}  # fmt: skip
    assert scene.scope == Scope(None, ("eq", "fader")) and scene.fade_s == 1.5


# (text, line, what the message must name besides the file and line)
BAD = {
    "not TOML": (_bad(10, "fader_db = -4.0 dB"), 10, "not valid TOML"),
    "duplicate key": (_bad(11, "fader_db = -3.0"), 11, "not valid TOML"),
    "unknown parameter": (_bad(10, "fadr_db = -4.0"), 10, "ch.01.fadr_db"),
    "unknown strip": (_bad(9, "[ch.09]"), 10, "ch.09.fader_db"),
    "out of range": (_bad(14, "freq_hz = 35000.0"), 14, "ch.01.eq.2.freq_hz"),
    "fader too high": (_bad(10, "fader_db = 12.0"), 10, "ch.01.fader_db"),
    "not a number": (_bad(10, 'fader_db = "loud"'), 10, "ch.01.fader_db"),
    "nan": (_bad(10, "fader_db = nan"), 10, "ch.01.fader_db"),
    "name not text": (_bad(11, "name = 7"), 11, "ch.01.name"),
    "name too long": (_bad(11, f'name = "{"x" * 33}"'), 11, "ch.01.name"),
    "unknown enum": (_bad(16, 'type = "Bell"'), 16, "ch.01.eq.2.type"),
    "table, not value": (_bad(10, "fader_db = { x = 1 }"), 0, "fader_db"),
    "array, not value": (_bad(15, "gain_db = [1, 2]"), 15, "ch.01.eq.2.gain_db"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_file_is_refused_naming_file_line_and_key(tmp_path, case):
    text, line, named = BAD[case]
    path = tmp_path / "club.toml"
    path.write_text(text)
    with pytest.raises(SceneError) as err:
        files.load(REG, path)
    message = str(err.value)
    assert str(path) in message and named in message
    if "TOML" in named:
        assert f"line {line}" in message
    elif line:
        assert f"{path}:{line}:" in message


def _with_scope(table: str) -> str:
    """GOOD with its [scope] table replaced by ``table`` (TOML text)."""
    return re.sub(r"\[scope\]\n.*?\n\n", table, GOOD, flags=re.S)


@pytest.mark.parametrize(
    "table, fragment",
    [
        ('[scope]\ngroups = ["faders"]\n\n', "groups"),
        ('[scope]\ngroups = "fader"\n\n', "groups"),
        ("[scope]\nstrips = 3\n\n", "strips"),
        ('[scope]\nstrips = ["ch.01", 2]\n\n', "strips"),
        ('[scope]\nstrips = "some"\n\n', "strips"),
        ("scope = 1\n\n", "scope"),
    ],
)
def test_bad_scope_is_refused(tmp_path, table, fragment):
    path = tmp_path / "club.toml"
    path.write_text(_with_scope(table))
    with pytest.raises(SceneError, match=fragment) as err:
        files.load(REG, path)
    assert str(path) in str(err.value)


def test_scope_parts_default_to_everything():
    assert files.parse(REG, _with_scope("[scope]\n\n"), "x").scope == Scope()
    scene = files.parse(REG, _with_scope('[scope]\nstrips = ["ch.01"]\n\n'), "x")
    assert scene.scope == Scope(("ch.01",), GROUPS)


@pytest.mark.parametrize("strips", ['["ch.1"]', '["ch.01", "vocals"]'])
def test_scope_naming_unknown_strips_is_refused(strips):
    text = GOOD.replace('strips = "all"', f"strips = {strips}")
    with pytest.raises(SceneError, match="strip"):
        files.parse(REG, text, "club.toml")


@pytest.mark.parametrize(
    "line, new",
    [(3, "fade_s = 90.0"), (3, "fade_s = -1.0"), (3, "fade_s = nan"), (2, "name = 5")],
)
def test_bad_header_values_are_refused(line, new):
    with pytest.raises(SceneError, match="club.toml") as err:
        files.parse(REG, _bad(line, new), "club.toml")
    assert new.split()[0] in str(err.value)


def test_bad_fade_time_names_its_line():
    with pytest.raises(SceneError, match=r"club\.toml:3:.*fade_s"):
        files.parse(REG, _bad(3, "fade_s = 90.0"), "club.toml")


def test_newer_format_is_refused_clearly(tmp_path):
    path = tmp_path / "future.toml"
    path.write_text(_bad(1, f"format = {FORMAT + 1}"))
    with pytest.raises(SceneError) as err:
        files.load(REG, path)
    message = str(err.value)
    assert str(path) in message
    assert f"format {FORMAT + 1}" in message and "newer" in message
    assert "upgrade" in message


def test_format_0_is_migrated():
    old = GOOD.replace("format = 1", "format = 0")
    old = re.sub(r"\[scope\]\n.*?\n\n", "", old, flags=re.S)
    assert "[scope]" not in old
    scene = files.parse(REG, old, "old.toml")
    assert scene.scope == Scope(None, GROUPS)  # format 0 scenes held everything
    assert scene.values == files.parse(REG, GOOD, "club.toml").values


@pytest.mark.parametrize(
    "text", ["", "name = 'x'\n", 'format = "1"\n', "[ch.01]\nfader_db = 0.0\n"]
)
def test_a_file_without_a_format_line_is_not_a_scene(text):
    with pytest.raises(SceneError, match="format"):
        files.parse(REG, text, "x.toml")


def test_unreadable_files_are_refused(tmp_path):
    (tmp_path / "latin1.toml").write_bytes(b'format = 1\nname = "Ger\xe4t"\n')
    with pytest.raises(SceneError, match="latin1.toml"):
        files.load(REG, tmp_path / "latin1.toml")
    with pytest.raises(SceneError, match="missing.toml"):
        files.load(REG, tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "text",
    [
        "format = 1\nx = " + "[" * 3000 + "]" * 3000 + "\n",
        "format = 1\n" + "a." * 3000 + "b = 1\n",
    ],
    ids=["nested arrays", "dotted keys"],
)
def test_deeply_nested_file_is_a_scene_error(text):
    with pytest.raises(SceneError):
        files.parse(REG, text, "deep.toml")


# -- fuzz -----------------------------------------------------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def parse_or_refuse(text: str) -> Scene | None:
    """``parse`` must return a valid scene or raise SceneError, nothing else."""
    try:
        scene = files.parse(REG, text, "fuzz.toml")
    except SceneError as exc:
        assert str(exc).startswith("fuzz.toml"), exc
        return None
    assert isinstance(scene.name, str)
    assert 0.0 <= scene.fade_s <= 60.0
    assert set(scene.scope.groups) <= set(GROUPS)
    for address, value in scene.values.items():
        assert REG[address].validate(value) == value
    return scene


TOMLISH = st.text(alphabet="[]{}=.,\"'\n #\\abcfhlor_01289-+eEinfa:tT", max_size=300)


@FUZZ
@given(
    st.one_of(st.text(max_size=300), TOMLISH, TOMLISH.map(lambda t: "format = 1\n" + t))
)
def test_fuzz_random_text(text):
    parse_or_refuse(text)


BASE_SCOPE = Scope(("ch.01", "ch.02", "bus.01", "main", "buslink.1-2"), GROUPS)
BASE = scene_text(rich_values(REG, seed=7), BASE_SCOPE, fade_s=3.0)
BASE_LINES = BASE.splitlines(keepends=True)
NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?|-?inf|nan")
# Numbers in the parameter tables (the header's format and fade_s are tested
# above).
VALUE = re.compile(r"(?<== )(-?\d+(\.\d+)?(e-?\d+)?|-?inf|nan)$", re.M)
NUMBERS = [m.span() for m in VALUE.finditer(BASE, BASE.index("\n[bus."))]
REPLACEMENTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        [
            "1e999",
            "-0.0",
            "0x1F",
            "1_000",
            "+inf",
            "nan",
            '"7"',
            "true",
            "[]",
            "{}",
            "1979-05-27",
            "07",
            "1.",
            ".5",
        ]
    ),  # fmt: skip
)


def _mutate(data, text: str) -> str:
    kind = data.draw(st.sampled_from(["flip", "delete", "duplicate", "number",
                                      "swap", "truncate"]))  # fmt: skip
    lines = text.splitlines(keepends=True)
    if kind == "flip" and text:
        i = data.draw(st.integers(0, len(text) - 1))
        return text[:i] + data.draw(st.characters()) + text[i + 1 :]
    if kind == "delete" and lines:
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    elif kind == "duplicate" and lines:
        line = data.draw(st.sampled_from(lines))
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    elif kind == "swap" and len(lines) > 1:
        i, j = (data.draw(st.integers(0, len(lines) - 1)) for _ in range(2))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        return text[: data.draw(st.integers(0, len(text)))]
    elif kind == "number":
        spans = [m.span() for m in NUMBER.finditer(text)]
        if spans:
            a, b = data.draw(st.sampled_from(spans))
            return text[:a] + data.draw(REPLACEMENTS) + text[b:]
    return "".join(lines)


def test_the_fuzz_base_is_a_rich_valid_scene():
    scene = parse_or_refuse(BASE)
    assert scene is not None and len(scene.values) > 300 and len(NUMBERS) > 300


@FUZZ
@given(st.data())
def test_fuzz_mutated_scene_file(data):
    text = BASE
    for _ in range(data.draw(st.integers(1, 4))):
        text = _mutate(data, text)
    parse_or_refuse(text)


@FUZZ
@given(st.data())
def test_fuzz_changed_number_is_validated(data):
    """Every number in a real file, changed to anything: the scene either
    holds a valid value or is refused naming that line."""
    a, b = data.draw(st.sampled_from(NUMBERS))
    new = data.draw(REPLACEMENTS)
    text = BASE[:a] + new + BASE[b:]
    line = BASE.count("\n", 0, a) + 1
    try:
        scene = files.parse(REG, text, "fuzz.toml")
    except SceneError as exc:
        assert re.match(rf"fuzz\.toml(:{line}:| ?: not valid TOML)", str(exc)), exc
        return
    assert parse_or_refuse(text) == scene


# -- atomic writes under kill -9 ----------------------------------------------------

# A process that, on every line it reads, forks a writer which saves scenes in
# a tight loop until the test kills it with SIGKILL; it then reaps the writer
# and says so. Forking from one warm process makes each round cost
# milliseconds instead of a Python start-up.
WRITER = r"""
import os, sys
from pathlib import Path
from livesound.scenes.files import write_atomic

folder, how = Path(sys.argv[1]), sys.argv[2]
texts = [p.read_text() for p in sorted(Path(sys.argv[3]).glob("*.toml"))]

def naive(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(text), 4096):
            os.write(fd, text[i : i + 4096].encode())
    finally:
        os.close(fd)

write = write_atomic if how == "atomic" else naive
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            write(folder / f"scene{i % 3}.toml", texts[(i // 3) % len(texts)])
            i += 1
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""
KILLS = 25


def kill_writers(tmp_path: Path, how: str) -> tuple[Path, list[int]]:
    """Kill a scene-saving loop ``KILLS`` times; after each kill, count the
    scene files that are not exactly one of the texts being saved."""
    folder, variants = tmp_path / "scenes", tmp_path / "variants"
    folder.mkdir()
    variants.mkdir()
    texts = set()
    for name in SHIPPED_NAMES:  # three real, full-size (80 kB) scenes
        texts.add((SHIPPED / f"{name}.toml").read_text())
        (variants / f"{name}.toml").write_text((SHIPPED / f"{name}.toml").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), how, str(variants)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    rng = random.Random(0)
    broken = []
    try:
        for _ in range(KILLS):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            time.sleep(rng.uniform(0.005, 0.03))
            os.kill(pid, signal.SIGKILL)
            assert proc.stdout.readline() == "reaped\n"
            found = sorted(folder.glob("*.toml"))
            broken.append(sum(p.read_text() not in texts for p in found))
    finally:
        proc.kill()
        proc.wait(DEADLINE)
    return folder, broken


def test_kill_9_during_saves_leaves_only_complete_scenes(tmp_path):
    folder, broken = kill_writers(tmp_path, "atomic")
    assert broken == [0] * KILLS
    scenes = sorted(folder.glob("*.toml"))
    assert [p.name for p in scenes] == ["scene0.toml", "scene1.toml", "scene2.toml"]
    for path in scenes:
        assert files.load(REG32, path).name in SHIPPED_NAMES
    for leftover in set(folder.iterdir()) - set(scenes):
        assert not leftover.name.endswith(".toml"), leftover
        assert leftover.name.startswith("."), leftover


def test_the_kill_harness_catches_a_non_atomic_writer(tmp_path):
    """The same harness against open-truncate-write: it must see broken
    files, or the test above could not fail."""
    _, broken = kill_writers(tmp_path, "naive")
    assert sum(n > 0 for n in broken) >= 3, broken


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "show.toml"
    files.write_atomic(path, "old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["show.toml"]


def test_saved_scene_file_has_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "show.toml"
    files.write_atomic(path, "a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o664)
    files.write_atomic(path, "b")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


# -- the shipped scenes -------------------------------------------------------------


def shipped(name: str) -> Scene:
    return files.load(REG32, SHIPPED / f"{name}.toml")


def test_shipped_folder_holds_the_scenes_and_the_cue_list():
    found = {p.stem for p in SHIPPED.glob("*.toml")} - {"cuelist"}
    assert found == set(SHIPPED_NAMES)
    cues = tomllib.loads((SHIPPED / "cuelist.toml").read_text())
    assert cues == {
        "cues": ["speech-conference", "band-4piece", "singer-songwriter-iem"]
    }


def test_shipped_scenes_are_what_the_generator_writes(tmp_path):
    """tests/shipped_scenes.py holds the shows; run it after changing one."""
    import shipped_scenes

    for path in shipped_scenes.write(tmp_path):
        assert path.read_text() == (SHIPPED / path.name).read_text(), path.name


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_scene_is_complete_and_in_the_exact_format(name):
    text = (SHIPPED / f"{name}.toml").read_text()
    scene = files.parse(REG32, text, name)
    assert scene.name == name  # the cue list and "current" go by file name
    assert files.to_toml(REG32, scene) == text  # as files.save writes it
    # Every strip, every group but solo, every value stored: a recall sets
    # the whole console, unused channels included.
    assert scene.scope.strips is None
    assert set(scene.scope.groups) == set(GROUPS) - {"solo"}
    assert set(scene.values) == {p.address for p in REG32 if scene.scope.covers(p)}
    assert scene.values["/ls/osc/on"] == 0


def _named(scene: Scene) -> dict[str, int]:
    """Channel number by name."""
    return {
        v: int(a.split("/")[2])
        for a, v in scene.values.items()
        if a.startswith("/ch/") and a.endswith("/config/name") and v[:3] != "Ch "
    }


def test_band_scene_is_a_sound_checked_4_piece():
    s = shipped("band-4piece")
    v = s.values
    ch = _named(s)

    def get(name: str, tail: str):
        return v[f"/ch/{ch[name]:02d}/{tail}"]

    # Inputs 1-8 are the virtual stage's band, in its order.
    assert [n for n, c in sorted(ch.items(), key=lambda x: x[1])][:8] == [
        "Kick", "Snare", "Hi-hat", "Bass DI", "Gtr 1", "Keys L", "Lead vox", "BV 1"
    ]  # fmt: skip
    assert {"Rack tom 1", "Floor tom", "OH L", "OH R", "Gtr 2", "Keys R", "BV 2",
            "Playback L", "Playback R"} <= set(ch)  # fmt: skip
    for name in ("Kick", "Bass DI"):
        assert get(name, "preamp/hpon") == 0
    for name in ("Lead vox", "BV 1", "BV 2", "Gtr 1", "Snare", "OH L"):
        assert get(name, "preamp/hpon") == 1 and 80 <= get(name, "preamp/hpf") <= 250
    gated = {n for n in ch if get(n, "gate/on")}
    assert gated == {"Kick", "Rack tom 1", "Rack tom 2", "Floor tom"}
    for name in ("Kick", "Bass DI", "Lead vox", "BV 1", "BV 2"):
        assert get(name, "dyn/on") == 1
    assert get("Lead vox", "mix/fader") == max(get(n, "mix/fader") for n in ch)
    assert get("OH L", "mix/pan") < 0 < get("OH R", "mix/pan")
    # Four wedges on buses 1-4, fed before the FOH faders.
    names = [v[f"/bus/{b:02d}/config/name"] for b in range(1, 5)]
    assert names == ["Vox wedge", "Gtr wedge", "Bass-keys wedge", "Drum fill"]
    for b in range(1, 5):
        assert v[f"/ls/bus/{b:02d}/limiter/ceiling"] == -3.0
        senders = {n for n in ch if get(n, f"mix/{b:02d}/level") > -math.inf}
        assert len(senders) >= 3, names[b - 1]
        odd = b - (b - 1) % 2
        assert all(
            X32_SEND_TYPES[get(n, f"mix/{odd:02d}/type")] == "PRE" for n in senders
        )
    vox_wedge = {n: get(n, "mix/01/level") for n in ch}
    assert max(vox_wedge, key=vox_wedge.get) == "Lead vox"
    assert max(ch, key=lambda n: get(n, "mix/02/level")) == "Gtr 1"
    assert max(ch, key=lambda n: get(n, "mix/03/level")) == "Bass DI"
    assert max(ch, key=lambda n: get(n, "mix/04/level")) in ("Kick", "Bass DI")
    # The vocal wedge was rung out: fixed notches.
    notches = [k for k in range(1, 17) if v[f"/ls/bus/01/notch/{k:02d}/on"]]
    assert len(notches) == 2
    for k in notches:
        n = f"/ls/bus/01/notch/{k:02d}"
        assert v[f"{n}/fixed"] == 1 and v[f"{n}/depth"] < -3 and v[f"{n}/width"] <= 0.1
    # Nothing unused is open.
    for c in range(19, 33):
        assert v[f"/ch/{c:02d}/mix/fader"] == -math.inf


def test_speech_scene_is_a_panel_with_qa():
    s = shipped("speech-conference")
    v = s.values
    ch = _named(s)
    speech = [n for n in ch if "Laptop" not in n]
    assert len(speech) == 7 and {"Laptop L", "Laptop R"} <= set(ch)
    assert sum("lav" in n for n in speech) >= 3 and "Lectern" in ch
    assert sum("Q&A" in n for n in speech) == 2
    for name in speech:
        p = f"/ch/{ch[name]:02d}"
        assert v[f"{p}/preamp/hpon"] == 1 and 100 <= v[f"{p}/preamp/hpf"] <= 120
        assert v[f"{p}/dyn/on"] == 1
        moved = [k for k in range(1, 5) if v[f"{p}/eq/{k}/g"] != 0]
        assert len(moved) == 2  # a 2-band speech EQ
    assert not any(v[f"/ch/{c:02d}/gate/on"] for c in range(1, 33))
    assert v["/ls/main/st/limiter/ceiling"] == -6.0
    # One foldback bus and a stereo-linked record pair.
    assert v["/bus/01/config/name"] == "Stage foldback"
    linked = [k for k, val in v.items() if k.startswith("/config/buslink/") and val]
    assert linked == ["/config/buslink/15-16"]
    assert v["/bus/15/config/name"] == "Record L"


def test_singer_songwriter_scene_is_on_in_ears():
    s = shipped("singer-songwriter-iem")
    v = s.values
    ch = _named(s)
    assert {
        "Vocal",
        "Ac gtr mic",
        "Ac gtr DI",
        "Click",
        "Aud mic L",
        "Aud mic R",
    } <= set(ch)
    assert v["/config/buslink/1-2"] == 1
    pans = {n: v[f"/ch/{c:02d}/mix/01/pan"] for n, c in ch.items()}
    assert pans["Aud mic L"] < 0 < pans["Aud mic R"] and pans["Vocal"] == 0
    for c in ch.values():  # everything is in the ears, before the fader
        assert v[f"/ch/{c:02d}/mix/01/level"] > -math.inf
        assert X32_SEND_TYPES[v[f"/ch/{c:02d}/mix/01/type"]] == "PRE"
    for name in ("Click", "Aud mic L", "Aud mic R"):  # never in the PA
        assert v[f"/ch/{ch[name]:02d}/mix/st"] == 0


def test_fixed_notches_are_stored_and_live_ones_stored_off():
    values = REG.defaults()
    n = "/ls/bus/02/notch"
    values.update({f"{n}/01/on": 1, f"{n}/01/fixed": 1, f"{n}/01/f": 2500.0,
                   f"{n}/02/on": 1, f"{n}/02/fixed": 0, f"{n}/02/f": 3150.0})  # fmt: skip
    scene = files.parse(REG, scene_text(values), "notches.toml")
    assert (scene.values[f"{n}/01/on"], scene.values[f"{n}/01/f"]) == (1, 2500.0)
    assert scene.values[f"{n}/02/on"] == 0


def test_a_note_travels_with_the_scene_and_a_bad_one_is_refused_with_its_line():
    scene = Scene("verse", {"/ch/01/mix/fader": -6.0}, notes="capo 2\nswap mic")
    text = files.to_toml(REG, scene)
    assert files.parse(REG, text).notes == "capo 2\nswap mic"
    assert "notes" not in files.to_toml(REG, Scene("chorus"))  # no note: no line
    bad = text.replace('notes = "capo 2\\nswap mic"', "notes = 5")
    with pytest.raises(SceneError, match=r"<scene>:\d+: notes are text"):
        files.parse(REG, bad)
