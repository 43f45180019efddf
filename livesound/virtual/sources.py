"""Source material for closed-loop feedback tests and the feedback benchmark.

- ``speech``: real synthetic speech, rendered by espeak-ng (Debian package
  ``espeak-ng``): several voices and speeds, pauses between sentences;
- ``music``: the virtual stage's band plus what fools howl detectors: held
  notes, an almost pure flute-like sine, sung vowels with vibrato, chords;
- ``sustained_notes``: the held material alone, the hardest case for false
  notches;
- ``held_notes``: single held notes with fundamentals from 100 Hz to 4 kHz
  (flute, organ, sung vowels with vibrato, synth pads), one at a time.

Every source is float64 mono peaking at -12 dBFS, exactly
``round(seconds * sample_rate)`` samples long, and the same for the same seed.
"""

import functools
import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

# The stage's synthesis helpers are the project's one instrument kit: its singer
# (formant vowels with vibrato), chords and additive tones are reused, not copied.
from livesound.virtual.stage import (
    _CHORDS,
    _VOWELS,
    _midi_hz,
    _partials,
    _sung_note,
    render_stage,
)

PEAK_DBFS = -12.0

# Harvard sentences (IEEE 1969): phonetically balanced everyday English.
_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
)
_VOICES = ("en", "en-us", "en+f3", "en-us+m3", "en+f2")
_WORDS_PER_MINUTE = (140, 180)
_PAUSE_S = (0.2, 0.6)
_FADE_S = 0.01

# Held material, as MIDI notes in G major (the band's key): the flute above the
# band, the singer in a singer's range.
_FLUTE_NOTES = (79, 81, 83, 84, 86)
_SUNG_NOTES = (55, 57, 59, 60, 62, 64, 66, 67, 69, 71, 72, 74)
_HELD_S = (3.0, 5.0)
_OVERLAP = 0.25  # share of a held event the next one overlaps
# Vibrato of ±1 % is ±0.17 semitones.
_VIBRATO_SEMITONES = 12.0 * np.log2(1.01)
# The held layer's peak against the band's in the music mix (-3 dB): it stands out.
_HELD_IN_MIX = 0.7


def _normalised(x: np.ndarray) -> np.ndarray:
    """``x`` as float64 peaking at ``PEAK_DBFS`` (silence stays silence)."""
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(x), initial=0.0)
    return x * (10.0 ** (PEAK_DBFS / 20.0) / peak) if peak > 0 else x


def _fitted(x: np.ndarray, frames: int, sample_rate: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``frames``, its end faded so a cut never clicks."""
    out = np.zeros(frames)
    n = min(frames, x.shape[0])
    out[:n] = x[:n]
    fade = min(n, round(_FADE_S * sample_rate))
    out[n - fade : n] *= np.linspace(1.0, 0.0, fade)
    return out


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Band-limited resampling of ``x`` by zero-padding or cutting its spectrum.

    The signal is taken as periodic (fine for material that starts and ends in
    silence). The unpaired bin at the shorter length's Nyquist frequency is
    split or folded as ``scipy.signal.resample`` does, so the two agree.
    """
    x = np.asarray(x, dtype=np.float64)
    n_in = x.shape[0]
    n_out = round(n_in * rate_out / rate_in)
    if n_out == n_in:
        return x.copy()
    m = min(n_in, n_out)
    spectrum = np.fft.rfft(x)[: m // 2 + 1]
    if m % 2 == 0:
        # Up: the old Nyquist bin becomes a +/- pair, each half of it.
        # Down: the pair at the new Nyquist folds into one bin, twice the one.
        spectrum[m // 2] *= 0.5 if n_out > n_in else 2.0
    return np.fft.irfft(spectrum, n_out) * (n_out / n_in)


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError(
            "espeak-ng is not on PATH: install the Debian package espeak-ng "
            "(apt-get install espeak-ng) to render speech"
        )
    return path


@functools.lru_cache(maxsize=16)
def _speech(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    espeak = _espeak()
    rng = np.random.default_rng(seed)
    frames = round(seconds * sample_rate)
    sentences = itertools.chain.from_iterable(
        rng.permutation(_SENTENCES) for _ in itertools.count()
    )
    first_voice = int(rng.integers(len(_VOICES)))
    pieces: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="livesound-speech-") as tmp:
        wav = Path(tmp) / "sentence.wav"
        for i, sentence in enumerate(sentences):
            voice = _VOICES[(first_voice + i) % len(_VOICES)]
            words_per_minute = rng.integers(*_WORDS_PER_MINUTE, endpoint=True)
            subprocess.run(
                [espeak, "-w", str(wav), "-v", voice,
                 "-s", str(words_per_minute), str(sentence)],
                check=True, capture_output=True,
            )  # fmt: skip
            said, rate_in = soundfile.read(wav, dtype="float64")
            pieces += [said, np.zeros(round(rng.uniform(*_PAUSE_S) * rate_in))]
            if sum(p.shape[0] for p in pieces) * sample_rate >= frames * rate_in:
                break
    spoken = resample(np.concatenate(pieces), rate_in, sample_rate)
    out = _normalised(_fitted(spoken, frames, sample_rate))
    out.flags.writeable = False  # shared by every caller of the cache
    return out


def speech(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """``seconds`` of English speech by espeak-ng at ``sample_rate``, -12 dBFS peak.

    Sentences alternate between voices (male and female, British and American)
    and speeds, with short pauses between them; the seed picks the order,
    voices and speeds. Rendered once per process for each set of arguments.
    Raises RuntimeError if espeak-ng is not installed.
    """
    return _speech(int(sample_rate), float(seconds), int(seed)).copy()


def _flute(sr: int, note: int, seconds: float) -> np.ndarray:
    """An almost pure held sine: a faint second harmonic, no vibrato."""
    t = np.arange(round(seconds * sr)) / sr
    tone = _partials(2 * np.pi * _midi_hz(note) * t, np.array([1.0, 0.01]))
    return tone * np.interp(t, [0.0, 0.08, seconds - 0.15, seconds], [0, 1, 1, 0])


def _sung(sr: int, note: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    return _sung_note(
        sr,
        note,
        seconds,
        str(rng.choice(list(_VOWELS))),
        vibrato=(rng.uniform(5.0, 6.0), _VIBRATO_SEMITONES),
        scoop=0.2,
        attack=0.1,
        release=0.3,
        tilt=1.0,
    )


def _chord(sr: int, notes: tuple[int, ...], seconds: float) -> np.ndarray:
    """A held organ-like chord: a few harmonics per note, slow attack and release."""
    t = np.arange(round(seconds * sr)) / sr
    amps = np.array([1.0, 0.5, 0.3, 0.15])
    tone = sum(_partials(2 * np.pi * _midi_hz(n) * t, amps) for n in notes)
    return tone * np.interp(t, [0.0, 0.2, seconds - 0.4, seconds], [0, 1, 1, 0])


def _held(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    """Overlapping held events in turn: flute, sung vowel, chord, sung vowel."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * sample_rate)
    out = np.zeros(frames)
    chords = list(_CHORDS.values())
    start = 0
    for kind in itertools.cycle(("flute", "sung", "chord", "sung")):
        if start >= frames:
            break
        length = rng.uniform(*_HELD_S)
        if kind == "flute":
            note = _flute(sample_rate, int(rng.choice(_FLUTE_NOTES)), length)
        elif kind == "chord":
            voicing = chords[int(rng.integers(len(chords)))][2]
            note = _chord(sample_rate, voicing, length)
        else:
            note = _sung(sample_rate, int(rng.choice(_SUNG_NOTES)), length, rng)
        note /= np.max(np.abs(note))
        n = min(note.shape[0], frames - start)
        out[start : start + n] += note[:n]
        start += round((1.0 - _OVERLAP) * length * sample_rate)
    return _fitted(out, frames, sample_rate)


# Held notes over the band a howl detector watches, per instrument: MIDI
# ranges (44 is 104 Hz, 107 is 3951 Hz) and the envelope's attack and release.
_HELD_RANGES = {
    "flute": ((60, 107), 0.08, 0.15),
    "organ": ((44, 96), 0.02, 0.1),
    "sung": ((44, 84), 0.1, 0.3),
    "pad": ((44, 96), 0.6, 0.8),
}
# An organ's drawbars (8', 4', 2 2/3', 2', 1 3/5'... as harmonics 1 to 8).
_ORGAN = np.array([1.0, 0.7, 0.5, 0.35, 0.3, 0.0, 0.0, 0.2])
# A pad's three oscillators, detuned by these many cents.
_PAD_DETUNE = (-8.0, 0.0, 8.0)


def _held_note(sr: int, kind: str, note: int, seconds: float,
               rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """One held note of ``kind`` (a key of ``_HELD_RANGES``), enveloped."""
    if kind == "sung":
        return _sung(sr, note, seconds, rng)
    if kind == "flute":
        return _flute(sr, note, seconds)
    _, attack, release = _HELD_RANGES[kind]
    t = np.arange(round(seconds * sr)) / sr
    f0 = _midi_hz(note)
    if kind == "organ":
        k = np.arange(1, _ORGAN.size + 1)
        tone = _partials(2 * np.pi * f0 * t, np.where(k * f0 < 0.45 * sr, _ORGAN, 0))
    else:  # a pad: detuned sawtooth oscillators, harmonics falling as 1/k
        k = np.arange(1, max(2, int(0.45 * sr / f0)) + 1)[:16]
        tone = sum(
            _partials(2 * np.pi * f0 * 2 ** (c / 1200) * t + rng.uniform(0, 6.3),
                      1.0 / k)
            for c in _PAD_DETUNE
        )  # fmt: skip
    return tone * np.interp(t, [0, attack, seconds - release, seconds], [0, 1, 1, 0])


def held_notes(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Single held notes, 3-5 s each, one after another: a flute-like sine,
    an organ, sung vowels with vibrato and a synth pad in turn, each at a
    random note of its range, together spanning fundamentals from 100 Hz to
    4 kHz; -12 dBFS peak.

    A stable loop playing these must get no notch.
    """
    rng = np.random.default_rng(seed)
    frames = round(seconds * sample_rate)
    out = np.zeros(frames)
    start = 0
    for kind in itertools.cycle(_HELD_RANGES):
        if start >= frames:
            break
        length = rng.uniform(*_HELD_S)
        (low, high), _, _ = _HELD_RANGES[kind]
        note = _held_note(sample_rate, kind, int(rng.integers(low, high + 1)),
                          length, rng)  # fmt: skip
        note /= np.max(np.abs(note))
        n = min(note.shape[0], frames - start)
        out[start : start + n] += note[:n]
        start += n
    return _normalised(_fitted(out, frames, sample_rate))


def sustained_notes(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Only held material: a flute-like sine, sung vowels with 5-6 Hz ±1 %
    vibrato and organ chords, each held 3-5 s and overlapping the next.

    The hardest case for a howl detector: nothing here may get a notch.
    """
    return _normalised(_held(sample_rate, seconds, seed))


def music(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """The virtual stage's band (drums, bass, guitar, keys, two singers) mixed
    down, with ``sustained_notes`` over it; -12 dBFS peak.
    """
    frames = round(seconds * sample_rate)
    # The stage renders at least a second; a shorter piece is cut from it.
    band = render_stage(sample_rate, max(seconds, 1.0), seed).sum(axis=1)
    band = _normalised(band[:frames])
    held = _held(sample_rate, seconds, seed)
    return _normalised(band + _HELD_IN_MIX * _normalised(held))
