"""A private JACK server for the test suite (not part of the ``livesound`` package).

``start_jack_server()`` launches ``jackd`` with the dummy backend under a unique
server name, waits until it answers, and re-initialises PortAudio (through
``sounddevice``) so that the server shows up as a JACK device in *this* process.
``JackServer.close()`` undoes all of that. ``JackClock`` reads the server's
own frame clock (``jack_showtime``), to count cycles against.

If ``JACK_DEFAULT_SERVER`` is already set and a server of that name answers, that
server is reused instead (it is neither configured nor stopped by us); its xrun
count is then unknown.

How xruns are counted: jackd reports every xrun on stderr through
``jack_error()``, which we redirect to a log file:

* ``JackTimedDriver::Process XRun = <n> usec``: the dummy driver's own cycle
  woke up late.  With ``--no-realtime`` this is scheduler jitter of jackd
  itself and happens now and then even with no client connected.
* ``JackEngine::XRun: client = <name> was not finished, state = ...``: a client
  (for PortAudio streams the client is called ``PortAudio``) missed its
  deadline.

Both kinds are also the events JACK delivers to clients' xrun callbacks.
The log is written asynchronously by jackd's message thread, so a count may
lag a few milliseconds behind the event.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from osc_helpers import DEADLINE, wait_until

from livesound.bench.common import free_jack_name

SAMPLERATE = 48000
BLOCKSIZE = 64
CHANNELS = 8

# The suite's one deadline: a loaded machine makes jackd slow, not absent.
START_TIMEOUT = DEADLINE  # seconds until jackd answers and PortAudio sees it
STOP_TIMEOUT = DEADLINE

_ANY_XRUN = re.compile(r"xrun", re.IGNORECASE)
_CLIENT_XRUN = re.compile(r"JackEngine::XRun: client = (.*?) was not finished")


class JackServerError(RuntimeError):
    """jackd could not be started, or PortAudio cannot see it."""


def running_in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def jackd_command(
    server_name: str,
    samplerate: int = SAMPLERATE,
    blocksize: int = BLOCKSIZE,
    inputs: int = CHANNELS,
    outputs: int = CHANNELS,
) -> list[str]:
    """The jackd command line (dummy backend, jackd's own realtime mode off).

    Where the system allows it, the server still runs under SCHED_FIFO
    (``chrt``), as a stage machine's audio server would: a dummy driver at
    normal priority loses cycles to a busy interpreter on a 2-core machine,
    and the test is about the engine, not about the server's clock.
    """
    return [
        *_fifo_prefix(),
        "jackd",
        "--no-realtime",
        "-n",
        server_name,
        "-d",
        "dummy",
        "-r",
        str(samplerate),
        "-p",
        str(blocksize),
        "-C",
        str(inputs),
        "-P",
        str(outputs),
    ]


def _fifo_prefix() -> list[str]:
    chrt = shutil.which("chrt")
    if chrt is None:
        return []
    probe = subprocess.run([chrt, "-f", "60", "true"], capture_output=True, check=False)
    return [chrt, "-f", "60"] if probe.returncode == 0 else []


def _jack_env(server_name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JACK_DEFAULT_SERVER"] = server_name
    env["JACK_NO_START_SERVER"] = "1"  # never auto-start some other server
    env["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation
    return env


def jack_tool(server_name: str, *argv: str, timeout: float = DEADLINE) -> str | None:
    """Run a jackd2 command-line tool against *server_name*.

    Returns its stdout, or None if the tool is missing, fails or times out.
    """
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(
            argv,
            env=_jack_env(server_name),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def server_answers(server_name: str) -> bool | None:
    """Whether a JACK server of that name is up (None: jack_lsp unavailable)."""
    if shutil.which("jack_lsp") is None:
        return None
    out = jack_tool(server_name, "jack_lsp")
    return out is not None and "system:" in out


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


class JackServer:
    """A running JACK server, as seen by PortAudio in this process.

    Attributes: ``device`` (PortAudio device index), ``name`` (PortAudio device
    name), ``samplerate``, ``blocksize``, ``server_name``, ``command`` (the jackd
    argv, or None for a reused server), ``log_dir``.
    """

    def __init__(
        self,
        server_name: str,
        samplerate: int,
        blocksize: int,
        process: subprocess.Popen | None = None,
        command: list[str] | None = None,
        log_dir: Path | None = None,
    ):
        self.server_name = server_name
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.process = process
        self.command = command
        self.log_dir = log_dir
        self.device: int | None = None
        self.name: str | None = None
        self._saved_env: dict[str, str | None] | None = None

    def __repr__(self) -> str:
        return (
            f"JackServer(server_name={self.server_name!r}, device={self.device}, "
            f"name={self.name!r}, samplerate={self.samplerate}, "
            f"blocksize={self.blocksize})"
        )

    # -- state and logs -------------------------------------------------------

    @property
    def owns_server(self) -> bool:
        """True if we started jackd (and will stop it)."""
        return self.process is not None

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return bool(server_answers(self.server_name))

    @property
    def stdout_path(self) -> Path | None:
        return self.log_dir / "jackd.out" if self.log_dir else None

    @property
    def stderr_path(self) -> Path | None:
        return self.log_dir / "jackd.err" if self.log_dir else None

    def stderr(self) -> str:
        """Everything jackd has written to stderr so far."""
        if self.stderr_path is None:
            raise RuntimeError(
                f"JACK server {self.server_name!r} was not started by the test "
                "suite; its log (and xrun count) is not available"
            )
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def xruns(self) -> int:
        """Number of xruns jackd reported so far (driver and client ones)."""
        return sum(1 for line in self.stderr().splitlines() if _ANY_XRUN.search(line))

    def client_xruns(self, client: str | None = None) -> int:
        """Xruns caused by a client (*client*, or any) missing its deadline."""
        return sum(
            1
            for m in _CLIENT_XRUN.finditer(self.stderr())
            if client is None or m.group(1) == client
        )

    def describe(self) -> str:
        """Command line plus the tail of jackd's output, for error messages."""
        parts = [f"JACK server {self.server_name!r}"]
        if self.command:
            parts.append("command: " + " ".join(self.command))
        if self.process is not None and self.process.poll() is not None:
            parts.append(f"jackd exited with status {self.process.returncode}")
        if self.log_dir is not None:
            for label, path in (
                ("stderr", self.stderr_path),
                ("stdout", self.stdout_path),
            ):
                text = _tail(path)
                if text.strip():
                    parts.append(f"--- jackd {label} ---\n{text.rstrip()}")
        return "\n".join(parts)

    # -- PortAudio ------------------------------------------------------------

    def attach_portaudio(self, timeout: float = START_TIMEOUT) -> None:
        """Point this process at the server and re-scan PortAudio's devices.

        Sets ``JACK_DEFAULT_SERVER`` (and ``JACK_NO_START_SERVER``) in
        ``os.environ`` for this process until ``detach_portaudio()``.
        """
        import sounddevice as sd

        if self._saved_env is None:
            self._saved_env = {
                k: os.environ.get(k)
                for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")
            }
        os.environ["JACK_DEFAULT_SERVER"] = self.server_name
        os.environ["JACK_NO_START_SERVER"] = "1"

        deadline = time.monotonic() + timeout
        while True:
            _reinit_portaudio(sd)
            found = _find_jack_device(sd)
            if found is not None:
                break
            if self.process is not None and self.process.poll() is not None:
                raise JackServerError("jackd died.\n" + self.describe())
            if time.monotonic() >= deadline:
                raise JackServerError(
                    f"PortAudio does not list a JACK device after {timeout:.0f} s "
                    f"(host APIs: {[a['name'] for a in sd.query_hostapis()]}).\n"
                    + self.describe()
                )
            time.sleep(0.2)

        self.device = found
        info = sd.query_devices(found)
        self.name = info["name"]
        rate = int(round(info["default_samplerate"]))
        if self.owns_server and rate != self.samplerate:
            raise JackServerError(
                f"PortAudio reports {rate} Hz, jackd was asked for "
                f"{self.samplerate} Hz.\n" + self.describe()
            )
        self.samplerate = rate

    def detach_portaudio(self) -> None:
        """Close PortAudio's JACK client and restore the environment."""
        if self._saved_env is None:
            return
        import sounddevice as sd

        if sd._initialized > 0:
            sd._terminate()  # closes PortAudio's JACK client cleanly
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None
        self.device = None

    # -- shutdown -------------------------------------------------------------

    def close(self, timeout: float = STOP_TIMEOUT) -> None:
        """Detach PortAudio, stop jackd (if ours), re-initialise PortAudio."""
        attached = self._saved_env is not None
        self.detach_portaudio()
        if self.process is not None:
            _stop_process(self.process, self.server_name, timeout)
        if attached:
            import sounddevice as sd

            sd._initialize()  # leave sounddevice usable, now without JACK


class JackClock:
    """The JACK server's own frame clock, read by one long-running
    ``jack_showtime`` client (joined to the graph once, before measuring,
    so the measurement does not change the graph it measures)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["jack_showtime"], stdout=subprocess.PIPE,
                                     text=True, bufsize=1)  # fmt: skip
        self.latest = 0
        self.lines = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: self.lines >= 5, what="jack_showtime's frame times")

    def _read(self) -> None:
        for line in self.proc.stdout:
            match = re.search(r"frame_time = (\d+)", line)
            if match:
                self.latest = int(match.group(1))
                self.lines += 1

    def now(self) -> int:
        """The server's frame time, from a line printed after this call."""
        seen = self.lines
        deadline = time.monotonic() + DEADLINE
        while self.lines == seen:
            assert time.monotonic() < deadline, "jack_showtime stopped printing"
            time.sleep(0.001)
        return self.latest

    # jack_showtime prints jack_frame_time(): the server's estimate of "now",
    # extrapolated from its last cycle. When the server itself runs late (a
    # busy machine), the estimate runs ahead by as much: a quarter second seen.
    ESTIMATE_S = 0.25

    def against(self, read: Callable[[], int]) -> tuple[int, int, float]:
        """``read()`` and the server's frame time taken together: the two,
        and how many seconds apart they may be (the span of reading both,
        and the estimate's own error)."""
        t0 = time.monotonic()
        value = read()
        frame_time = self.now()
        return value, frame_time, time.monotonic() - t0 + self.ESTIMATE_S

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _reinit_portaudio(sd) -> None:
    if sd._initialized > 0:
        sd._terminate()
    sd._initialize()


def _find_jack_device(sd) -> int | None:
    for api in sd.query_hostapis():
        if "JACK" not in api["name"] or not api["devices"]:
            continue
        devices = list(api["devices"])
        for idx in devices:  # the hardware (here: dummy) ports are "system"
            if sd.query_devices(idx)["name"] == "system":
                return idx
        for idx in (api["default_output_device"], api["default_input_device"]):
            if idx in devices:
                return idx
        return devices[0]
    return None


def _stop_process(proc: subprocess.Popen, server_name: str, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.kill()
    proc.wait(timeout)
    # A killed jackd leaves its shared memory and semaphores behind.
    for leftover in Path("/dev/shm").glob(f"*_{server_name}_*"):
        leftover.unlink(missing_ok=True)


def start_jack_server(
    log_dir: str | os.PathLike | None = None,
    samplerate: int = SAMPLERATE,
    blocksize: int = BLOCKSIZE,
    inputs: int = CHANNELS,
    outputs: int = CHANNELS,
    timeout: float = START_TIMEOUT,
) -> JackServer:
    """Start a private jackd (dummy backend) and attach PortAudio to it.

    Reuses the server named by ``JACK_DEFAULT_SERVER`` if one is already up.
    Raises JackServerError (with jackd's output) if anything goes wrong; in
    that case nothing is left running.
    """
    existing = os.environ.get("JACK_DEFAULT_SERVER")
    if existing and server_answers(existing):
        return _attach_existing(existing, timeout)

    if shutil.which("jackd") is None:
        raise JackServerError(
            "jackd not found (Debian: apt-get install jackd2; or run tests/run.sh)"
        )
    log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="jackd-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    server_name = free_jack_name("livesound-test")
    command = jackd_command(server_name, samplerate, blocksize, inputs, outputs)
    with (
        open(log_dir / "jackd.out", "wb") as out,
        open(log_dir / "jackd.err", "wb") as err,
    ):
        process = subprocess.Popen(
            command,
            env=_jack_env(server_name),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # a Ctrl-C reaches pytest, which stops us
        )
    server = JackServer(server_name, samplerate, blocksize, process, command, log_dir)
    try:
        _wait_until_up(server, timeout)
        server.attach_portaudio(timeout)
    except BaseException:
        server.close()
        raise
    return server


def _wait_until_up(server: JackServer, timeout: float) -> None:
    """Poll jack_lsp until the server lists its ports.

    Without jack_lsp, attach_portaudio() does the polling instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        if server.process is not None and server.process.poll() is not None:
            raise JackServerError("jackd exited during startup.\n" + server.describe())
        up = server_answers(server.server_name)
        if up is None or up:
            return
        if time.monotonic() >= deadline:
            raise JackServerError(
                f"jackd did not answer within {timeout:.0f} s.\n" + server.describe()
            )
        time.sleep(0.1)


def _attach_existing(server_name: str, timeout: float) -> JackServer:
    out = jack_tool(server_name, "jack_samplerate")
    samplerate = int(out) if out and out.strip().isdigit() else 0
    out = jack_tool(server_name, "jack_bufsize")
    blocksize = int(out) if out and out.strip().isdigit() else 0
    server = JackServer(server_name, samplerate, blocksize)
    try:
        server.attach_portaudio(timeout)
    except BaseException:
        server.close()
        raise
    return server
