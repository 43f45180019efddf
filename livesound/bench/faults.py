"""``livesound bench faults``: every fault against a real engine process.

Each fault is done to a real ``livesound engine`` (8 inputs, 4 buses, its
own state and scene folders), watched over OSC from this process: whether
audio blocks kept advancing, how long until the fault was reported (or the
process ended, for a stop signal), how long until it recovered, and how
many values that were set or saved were lost. A full disk and a read-only
folder need root (a small tmpfs); the JACK fault needs ``jackd``.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from livesound.bench.common import free_jack_name, free_port, jack_answers, machine
from livesound.control.registry import Registry
from livesound.control.taper import db_to_fader
from livesound.osc.client import Client, osc
from livesound.scenes import files
from livesound.supervisor import engine_command, engine_environment

N_IN, N_BUS = 8, 4
REGISTRY = Registry(N_IN, N_BUS)
FADER = "/ch/01/mix/fader"
START_S = 180.0  # the first start may compile the kernels


@dataclass
class Row:
    """One fault's outcome (times in seconds; None: not measured)."""

    fault: str
    audio_kept: bool | None
    detect_s: float | None
    recover_s: float | None
    values_lost: int
    note: str = ""


class EngineProcess:
    """A real ``livesound engine`` in ``folder`` (state/, scenes/)."""

    def __init__(self, folder: Path, *options: str, env: dict | None = None,
                 supervise: bool = False) -> None:  # fmt: skip
        self.folder, self.port = folder, free_port()
        self.state, self.scenes = folder / "state", folder / "scenes"
        device = () if {"--device", "--jack"} & set(options) else ("--virtual",)
        self.command = engine_command([
            *device, "--inputs", str(N_IN), "--buses", str(N_BUS), "--quiet",
            "--osc-host", "127.0.0.1", "--osc-port", str(self.port),
            "--no-discovery", "--state-dir", str(self.state),
            "--scenes", str(self.scenes), *options,
            *(("--supervise",) if supervise else ()),
        ])  # fmt: skip
        self.env = {**engine_environment(), **(env or {})}
        self.client = Client(self.port, timeout=0.3)
        self.output: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> "EngineProcess":
        self.proc = subprocess.Popen(self.command, env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        threading.Thread(target=self.output.extend, args=(self.proc.stdout,),
                         daemon=True).start()  # fmt: skip
        if not wait(lambda: self.stats() or self.proc.poll() is not None, START_S):
            raise RuntimeError("the engine did not start")
        return self

    def stats(self) -> dict | None:
        """``/ls/stats``; None while no engine answers."""
        with contextlib.suppress(OSError):
            self.client.send(osc("/ls/stats"))
            for _ in range(20):
                reply = self.client.receive()
                if reply.address == "/ls/stats":
                    return json.loads(reply.params[0])
        return None

    def blocks(self) -> int:
        s = wait(self.stats, 30)
        return s["engine"]["blocks"] if s else -1

    def advancing(self) -> bool:
        """Whether audio blocks advance (over a quarter of a second)."""
        before = self.blocks()
        time.sleep(0.25)
        return self.blocks() > before + 10

    def set_fader(self, db: float) -> None:
        self.client.send(osc(FADER, float(db_to_fader(db))))

    def saved(self, name: str, timeout: float = 5.0) -> bool:
        """Save scene ``name``; whether the engine said it was saved."""
        with contextlib.suppress(OSError):
            self.client.send(osc("/ls/scene/save", name))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    reply = self.client.receive()
                    if reply.params[:1] == [name]:
                        return reply.address == "/ls/scene/saved"
        return False

    def saved_fader(self) -> float | None:
        with contextlib.suppress(files.SceneError):
            return files.load(REGISTRY, self.state / "autosave.toml").values[FADER]
        return None

    def signal(self, sig: int) -> float | None:
        """Send ``sig``; seconds until the process ended (None: not in 10 s)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - t0

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.client.close()


def wait(pred: Callable, timeout: float, step: float = 0.01):
    """``pred()`` once it is true, else None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return None


def _is(value: float | None, db: float) -> bool:
    return value is not None and abs(value - db) < 0.01


def _since(t0: float, found) -> float | None:
    return time.monotonic() - t0 if found else None


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str):
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                    str(folder)], check=True, capture_output=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (4096, 1):
            with contextlib.suppress(OSError):
                while f.write(b"\0" * chunk):
                    pass
    return filler


# -- the faults -------------------------------------------------------------------


def disk_full(root: Path) -> Row:
    with _tmpfs(root / "disk", "128k") as disk:
        e = EngineProcess(disk).start()
        try:
            filler = fill(disk)
            t0 = time.monotonic()
            e.set_fader(-9.0)
            detect = _since(t0, wait(lambda: (e.stats() or {}).get("storage"), 30))
            kept = e.advancing()
            filler.unlink()
            t1 = time.monotonic()
            recover = _since(t1, wait(lambda: (s := e.stats()) and not s.get("storage")
                                      and _is(e.saved_fader(), -9.0), 90))  # fmt: skip
            return Row("disk full (tmpfs)", kept, detect, recover,
                       int(not _is(e.saved_fader(), -9.0)))  # fmt: skip
        finally:
            e.close()


def read_only(root: Path) -> Row:
    with _tmpfs(root / "ro", "4m") as disk:
        e = EngineProcess(disk).start()
        try:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            t0 = time.monotonic()
            e.set_fader(-11.0)
            detect = _since(t0, wait(lambda: (e.stats() or {}).get("storage"), 30))
            kept = e.advancing()
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
            t1 = time.monotonic()
            recover = _since(t1, wait(lambda: _is(e.saved_fader(), -11.0), 90))
            return Row("read-only folder", kept, detect, recover,
                       int(not _is(e.saved_fader(), -11.0)))  # fmt: skip
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False)
            e.close()


def broken_files(root: Path) -> Row:
    folder = root / "broken"
    (folder / "scenes").mkdir(parents=True)
    (folder / "state").mkdir()
    (folder / "scenes" / "cuelist.toml").write_text("cues = [\n")
    (folder / "state" / "safes.toml").write_bytes(b'strips = ["\xff"]\n')
    (folder / "state" / "autosave.toml").write_text("not = [toml\n")
    (folder / "state" / "autosave.1.toml").write_text(
        'format = 1\nname = "x"\n\n[ch.01]\nfader_db = -17.0\n'
    )
    t0 = time.monotonic()
    e = EngineProcess(folder).start()
    try:
        started = time.monotonic() - t0
        e.client.send(osc(FADER))
        value = REGISTRY[FADER].from_norm(e.client.receive().params[0])
        return Row("broken files at start", e.advancing(), None, started,
                   int(not _is(value, -17.0)), "recover = start to answering")  # fmt: skip
    finally:
        e.close()


def jackd(name: str, log: Path, period: int = 64) -> subprocess.Popen:
    """A JACK server called ``name`` on the dummy driver (48 kHz, ``period``
    frames, 8 channels each way), answering when this returns."""
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    proc = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy",
                             "-r", "48000", "-p", str(period), "-C", "8", "-P", "8"],
                            env=env, stdin=subprocess.DEVNULL, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    wait(lambda: jack_answers(name), 20, 0.1)
    return proc


def jack_lost(root: Path, fallback: bool, native: bool = False) -> Row:
    """The JACK server stopped and started again under an engine on it:
    through PortAudio (``--device system``, which needs a restart in place)
    or as a native client (``--jack``, which reconnects in the process)."""
    name = free_jack_name("livesound-bench")
    log = root / f"jackd-{name}.log"
    env = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    server = jackd(name, log)
    audio = ["--jack", "livesound"] if native else ["--device", "system"]
    playing = "JACK livesound" if native else "system"
    options = [*audio, *(["--fallback", "virtual"] if fallback else [])]
    e = EngineProcess(root / f"jack-{fallback}-{native}", *options, env=env)
    try:
        e.start()
        e.set_fader(-4.0)
        t0 = time.monotonic()
        server.terminate()
        server.wait(10)
        detect = _since(t0, wait(lambda: (e.stats() or {}).get("audio"), 10, 0.005))
        if fallback:
            wait(lambda: ((e.stats() or {}).get("audio") or {}).get("fallback"), 10)
        kept = e.advancing()
        e.set_fader(-14.0)  # changed while the device is gone
        time.sleep(2.5)  # past the next autosave
        t1 = time.monotonic()
        server = jackd(name, log)
        back = wait(lambda: (s := e.stats()) and not s.get("audio")
                    and s["engine"]["playing"] == playing and s["engine"]["blocks"],
                    60)  # fmt: skip
        recover = _since(t1, back)
        e.client.send(osc(FADER))
        value = None
        with contextlib.suppress(OSError):
            value = REGISTRY[FADER].from_norm(e.client.receive().params[0])
        lost = int(not back or not _is(value, -14.0))
        what = ("JACK server stopped, restarted" + (", --jack" if native else "")
                + (", --fallback virtual" if fallback else ""))  # fmt: skip
        how = "same process" if native else "restart in place"
        return Row(what, kept, detect, recover, lost, "recover = jackd start to "
                   f"blocks on it ({how})")  # fmt: skip
    finally:
        e.close()
        if server.poll() is None:
            server.terminate()
            server.wait(10)
        for leftover in Path("/dev/shm").glob(f"*_{name}_*"):
            leftover.unlink(missing_ok=True)  # PortAudio's client died with jackd


def stop_signal(root: Path, sig: signal.Signals) -> Row:
    e = EngineProcess(root / f"sig-{sig.name}").start()
    try:
        kept = e.advancing()
        e.set_fader(-5.0)
        time.sleep(0.05)
        took = e.signal(sig)
        return Row(f"{sig.name}", kept, None, took, int(not _is(e.saved_fader(), -5.0)),
                   "recover = signal to process gone (target 2 s)")  # fmt: skip
    finally:
        e.close()


def state_lock(root: Path) -> Row:
    first = EngineProcess(root / "lock").start()
    second = EngineProcess(root / "lock")
    try:
        t0 = time.monotonic()
        second.proc = subprocess.Popen(second.command, env=second.env,
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)  # fmt: skip
        code = second.proc.wait(60)
        took = time.monotonic() - t0
        return Row("second engine, same state dir", first.advancing(), took, None, 0,
                   f"second engine exit code {code}")  # fmt: skip
    finally:
        second.close()
        first.close()


def supervisor_kill(root: Path) -> Row:
    e = EngineProcess(root / "supervised", supervise=True).start()
    try:
        e.set_fader(-8.0)
        wait(lambda: _is(e.saved_fader(), -8.0), 30)
        wait(lambda: any("spare engine ready" in line for line in e.output), 60)
        pid = e.stats()["engine"]["pid"]
        killed = time.time()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        s = wait(lambda: (s := e.stats()) and s["engine"]["pid"] != pid
                 and s["engine"]["blocks"] and s, 60)  # fmt: skip
        answering = _since(t0, s)
        first_block = s["engine"]["first_block_at"] - killed if s else None
        e.client.send(osc(FADER))
        value = REGISTRY[FADER].from_norm(e.client.receive().params[0])
        return Row("kill -9, supervised", False, None, first_block,
                   int(not _is(value, -8.0)),
                   f"recover = kill to first block of the new engine; "
                   f"OSC answering after {answering:.2f} s")  # fmt: skip
    finally:
        e.close()


def kill_during_saves(root: Path, rounds: int) -> Row:
    folder = root / "saves"
    acknowledged: set[str] = set()
    rng = random.Random(7)
    for r in range(rounds):
        e = EngineProcess(folder).start()
        stop = threading.Event()

        def saver(e=e, r=r, stop=stop) -> None:
            n = 0
            while not stop.is_set():
                name = f"r{r}-{n}"
                if e.saved(name):
                    acknowledged.add(name)
                n += 1

        thread = threading.Thread(target=saver)
        thread.start()
        time.sleep(rng.uniform(0.3, 2.0))
        os.killpg(e.proc.pid, signal.SIGKILL)
        e.proc.wait()
        stop.set()
        thread.join()
        e.client.close()
    corrupt = 0
    for path in [*folder.glob("*/*.toml")]:
        try:
            files.load(REGISTRY, path)
        except files.SceneError:
            corrupt += 1
    missing = [
        n for n in acknowledged if not (folder / "scenes" / f"{n}.toml").exists()
    ]
    return Row(f"kill -9 during saves (x{rounds})", None, None, None,
               len(missing) + corrupt,
               f"{len(acknowledged)} scene saves acknowledged; {corrupt} corrupt "
               "files")  # fmt: skip


def run(emit=print, quick: bool = False) -> dict:
    """Every fault, one after the other; returns the table as a dict."""
    m = machine()
    emit(f"machine: {m['cpu']}, {m['cores']} cores")
    emit("engine: 8 inputs, 4 buses, 48 kHz/64, virtual stage unless said")
    root = Path(tempfile.mkdtemp(prefix="livesound-faults-"))
    jobs: list[Callable[[], Row]] = []
    if os.geteuid() == 0:
        jobs += [lambda: disk_full(root), lambda: read_only(root)]
    else:
        emit("disk full and read-only folder: skipped (mounting a tmpfs needs root)")
    jobs.append(lambda: broken_files(root))
    if shutil.which("jackd") and shutil.which("jack_lsp"):
        jobs += [
            lambda: jack_lost(root, False),
            lambda: jack_lost(root, True),
            lambda: jack_lost(root, False, native=True),
            lambda: jack_lost(root, True, native=True),
        ]
    else:
        emit("JACK server lost: skipped (jackd not installed)")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        jobs.append(lambda sig=sig: stop_signal(root, sig))
    jobs += [lambda: state_lock(root), lambda: supervisor_kill(root),
             lambda: kill_during_saves(root, 2 if quick else 4)]  # fmt: skip
    emit(f"{'fault':42s} {'audio kept':>10s} {'detect s':>9s} {'recover s':>10s} "
         f"{'lost':>5s}  note")  # fmt: skip
    rows = []
    try:
        for job in jobs:
            row = job()
            rows.append(row)

            def num(x: float | None) -> str:
                return "-" if x is None else f"{x:.2f}"

            kept = {True: "yes", False: "no", None: "-"}[row.audio_kept]
            emit(f"{row.fault:42s} {kept:>10s} {num(row.detect_s):>9s} "
                 f"{num(row.recover_s):>10s} {row.values_lost:>5d}  {row.note}")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"machine": m, "faults": [asdict(r) for r in rows]}
