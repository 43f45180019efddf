"""The built-in virtual stage: a synthesised band for running without a sound card.

The band plays a short song in G major (I-vi-IV-V) at about 100 BPM. Everything is
rendered once, up front, with vectorised numpy: tones are sums of harmonics, drums
are filtered-noise and swept-sine templates. The song is a whole number of bars, and
every sound that rings past the end of the buffer is folded back onto its start, so
the buffer loops without a click.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

STAGE_CHANNELS: tuple[str, ...] = (
    "Kick",
    "Snare",
    "Hi-hat",
    "Bass",
    "Guitar",
    "Keys",
    "Lead vox",
    "Back vox",
)

# Peak level per channel in dBFS, as if each preamp were trimmed for headroom.
_PEAK_DBFS = (-6.0, -6.0, -14.0, -8.0, -10.0, -14.0, -6.0, -12.0)

_TARGET_BPM = 100.0
_MIN_SECONDS = 1.0

# Chord name -> (bass root, guitar voicing, keys voicing), as MIDI notes.
_CHORDS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "G": (31, (43, 47, 50, 55, 59, 67), (59, 62, 67)),
    "Em": (40, (40, 47, 52, 55, 59, 64), (59, 64, 67)),
    "C": (36, (48, 52, 55, 60, 64), (60, 64, 67)),
    "D": (38, (45, 50, 57, 62, 66), (57, 62, 66)),
}
_PROGRESSION = ("G", "Em", "C", "D")
_TURNAROUND = "D"
# G major from G3 to D5: the lead singer's range.
_LEAD_NOTES = (55, 57, 59, 60, 62, 64, 66, 67, 69, 71, 72, 74)
_BACK_RANGE = (62, 71)

# Formants (centre Hz, bandwidth Hz) of sung vowels.
_VOWELS: dict[str, tuple[tuple[float, float], ...]] = {
    "a": ((730, 90), (1090, 110), (2440, 160), (3300, 250)),
    "e": ((530, 80), (1840, 120), (2480, 160), (3300, 250)),
    "i": ((300, 70), (2290, 130), (3010, 180), (3600, 250)),
    "o": ((570, 80), (840, 100), (2410, 160), (3300, 250)),
    "u": ((300, 70), (870, 100), (2240, 150), (3300, 250)),
}
_VOICE_TOP_HZ = 5000.0

# Lead rhythms per bar as (onset, length) in beats; each ends on a held note and
# leaves half a beat to breathe before the next bar.
_LEAD_RHYTHMS = (
    ((0.0, 1.0), (1.0, 0.5), (1.5, 0.5), (2.0, 1.5)),
    ((0.0, 0.5), (0.5, 0.5), (1.0, 2.5)),
    ((0.5, 0.5), (1.0, 1.0), (2.0, 1.5)),
    ((0.0, 1.5), (1.5, 0.5), (2.0, 1.5)),
)
# Bass per bar as (onset beat, note): r root, R root an octave up, f fifth,
# a approach note (a whole step above the next bar's root, in key for every chord).
_BASS_PATTERN = (
    (0.0, "r"),
    (1.0, "r"),
    (1.5, "r"),
    (2.0, "f"),
    (3.0, "R"),
    (3.5, "a"),
)
# Guitar strums per bar as (onset beat, downstroke?).
_STRUMS = (
    (0.0, True),
    (1.0, True),
    (1.5, False),
    (2.5, False),
    (3.0, True),
    (3.5, False),
)

_Hit = tuple[int, float, np.ndarray]


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _longest_gap(onsets: Iterable[float]) -> float:
    """Longest wait, in beats, between onsets of a pattern repeated every bar."""
    beats = sorted(onsets)
    return float(np.max(np.diff([*beats, beats[0] + 4.0])))


class _Clock:
    """Song position in beats -> frame in the loop."""

    def __init__(self, sample_rate: int, seconds: float) -> None:
        self.sr = sample_rate
        self.frames = round(seconds * sample_rate)
        self.bars = max(1, round(seconds * _TARGET_BPM / 240.0))
        self.beat_s = seconds / (4 * self.bars)

    def frame(self, beat: float) -> int:
        return round(beat * self.beat_s * self.sr) % self.frames

    def length(self, beats: float) -> int:
        return round(beats * self.beat_s * self.sr)


def _place(out: np.ndarray, start: int, seg: np.ndarray) -> None:
    """Add ``seg`` into the loop ``out`` at ``start``, wrapping past the end."""
    n = out.shape[0]
    pos, done = start % n, 0
    while done < seg.shape[0]:
        m = min(n - pos, seg.shape[0] - done)
        out[pos : pos + m] += seg[done : done + m]
        done += m
        pos = 0


def _sequence(frames: int, hits: list[_Hit], choke: int | None = None) -> np.ndarray:
    """Mix ``(start, gain, sound)`` hits into a loop of ``frames``.

    With ``choke`` each sound is faded out over ``choke`` frames from the next hit
    on, the way a closed hi-hat chokes an open one or a new strum damps the
    strings; the last hit is choked by the first one of the next pass.
    """
    out = np.zeros(frames)
    hits = sorted(hits, key=lambda h: h[0])
    for i, (start, gain, sound) in enumerate(hits):
        seg = gain * sound
        if choke is not None:
            nxt = hits[i + 1][0] if i + 1 < len(hits) else hits[0][0] + frames
            cut = nxt - start
            if cut < seg.shape[0]:
                seg = seg[: cut + choke]
                seg[cut:] *= 1.0 - np.arange(seg.shape[0] - cut) / choke
        _place(out, start, seg)
    return out


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    # Templates are cut to a finite length; ramping their very end keeps the cut
    # from clicking even when a note is left to ring out.
    n = min(x.shape[0], max(1, round(seconds * sr)))
    x[-n:] *= np.linspace(1.0, 0.0, n)
    return x


def _partials(
    phase: np.ndarray, amps: np.ndarray, damping: np.ndarray | None = None
) -> np.ndarray:
    """Sum of ``amps[k-1] * exp(-k*damping) * sin(k*phase)`` over harmonics k.

    Harmonic k is the k-th power of one complex exponential, so the whole stack
    costs one multiply per harmonic instead of a sine.
    """
    arg = 1j * phase if damping is None else 1j * phase - damping
    z = np.exp(arg)
    acc = z.copy()
    out = amps[0] * acc.imag
    for a in amps[1:]:
        acc *= z
        out += a * acc.imag
    return out


def _harmonic_count(f0: float, sr: int, top_hz: float) -> int:
    # Stop below both the instrument's top and Nyquist, with room for vibrato.
    return max(1, int(min(top_hz, 0.45 * sr) / (1.03 * f0)))


def _band(f: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fourth-order-ish band-pass magnitude, flat between ``low`` and ``high``."""
    f4 = f**4
    return f4 / (f4 + low**4) * high**4 / (f4 + high**4)


def _noise(
    rng: np.random.Generator, n: int, sr: int, low: float, high: float
) -> np.ndarray:
    """``n`` samples of unit-RMS noise band-limited to ``low``..``high`` Hz."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec *= _band(np.fft.rfftfreq(n, 1.0 / sr), low, high)
    noise = np.fft.irfft(spec, n)
    # Unit RMS keeps the mix of noise and tone the same at any sample rate.
    return noise / np.sqrt(np.mean(noise**2))


# --- drums -------------------------------------------------------------------------


def _kick_sound(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(0.45 * sr)) / sr
    f_end, f_start, tau = 48.0, 160.0, 0.035
    phase = 2 * np.pi * (f_end * t + (f_start - f_end) * tau * (1 - np.exp(-t / tau)))
    body = np.sin(phase) * np.exp(-t / 0.22) * (1 - np.exp(-t / 0.001))
    click = _noise(rng, t.shape[0], sr, 1500.0, 8000.0) * np.exp(-t / 0.004)
    return _fade_out(body + 0.04 * click, sr)


def _snare_sound(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(0.35 * sr)) / sr
    body = 0.6 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.06)
    body += 0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-t / 0.035)
    rattle = 0.6 * _noise(rng, t.shape[0], sr, 1200.0, 9000.0) * np.exp(-t / 0.1)
    return _fade_out((body + rattle) * (1 - np.exp(-t / 0.0005)), sr)


def _hat_sound(sr: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    t = np.arange(round(6 * decay * sr)) / sr
    noise = _noise(rng, t.shape[0], sr, 7000.0, 16000.0)
    return _fade_out(noise * np.exp(-t / decay) * (1 - np.exp(-t / 0.0003)), sr)


def _drums(clock: _Clock, rng: np.random.Generator) -> list[np.ndarray]:
    sr, frames = clock.sr, clock.frames
    kick, snare = _kick_sound(sr, rng), _snare_sound(sr, rng)
    closed = [_hat_sound(sr, rng, 0.022) for _ in range(4)]
    opened = _hat_sound(sr, rng, 0.16)

    def at(beat: float) -> int:
        # Humans are never quite on the grid.
        return (clock.frame(beat) + round(rng.normal(0.0, 0.002) * sr)) % frames

    kicks: list[_Hit] = []
    snares: list[_Hit] = []
    hats: list[_Hit] = []
    for bar in range(clock.bars):
        b = 4.0 * bar
        kicks += [(at(b + x), rng.uniform(0.9, 1.0), kick) for x in (0.0, 1.5, 2.0)]
        snares += [(at(b + x), rng.uniform(0.9, 1.0), snare) for x in (1.0, 3.0)]
        if bar == clock.bars - 1 and clock.bars >= 4:
            snares += [(at(b + 3.5), 0.55, snare), (at(b + 3.75), 0.75, snare)]
        for i in range(8):
            open_hat = i == 7 and bar % 2 == 1
            sound = opened if open_hat else closed[int(rng.integers(len(closed)))]
            gain = (1.0 if i % 2 == 0 else 0.65) * rng.uniform(0.85, 1.0)
            hats.append((at(b + 0.5 * i), gain, sound))
    choke = round(0.004 * sr)
    return [
        _sequence(frames, kicks),
        _sequence(frames, snares),
        _sequence(frames, hats, choke),
    ]


# --- bass, guitar, keys ------------------------------------------------------------


def _plucked(
    sr: int, note: float, seconds: float, pick: float, top_hz: float
) -> np.ndarray:
    """A plucked string: harmonics shaped by the pick position, the top ones dying
    first."""
    f0 = _midi_hz(note)
    t = np.arange(round(seconds * sr)) / sr
    k = np.arange(1, _harmonic_count(f0, sr, top_hz) + 1)
    amps = np.abs(np.sin(np.pi * k * pick)) / k
    tone = _partials(2 * np.pi * f0 * t, amps, 1.2 * t) * np.exp(-0.9 * t)
    return _fade_out(tone * (1 - np.exp(-t / 0.002)), sr)


def _bass(clock: _Clock, chords: list[str], rng: np.random.Generator) -> np.ndarray:
    # Each note is cut by the next, so it need only ring for the longest gap.
    ring = _longest_gap(b for b, _ in _BASS_PATTERN) * clock.beat_s + 0.1
    sounds: dict[int, np.ndarray] = {}
    hits: list[_Hit] = []
    for bar, name in enumerate(chords):
        root = _CHORDS[name][0]
        next_root = _CHORDS[chords[(bar + 1) % len(chords)]][0]
        notes = {"r": root, "R": root + 12, "f": root + 7, "a": next_root + 2}
        for beat, which in _BASS_PATTERN:
            note = notes[which]
            if note not in sounds:
                sounds[note] = _plucked(clock.sr, note, ring, 0.3, 2500.0)
            hits.append(
                (clock.frame(4 * bar + beat), rng.uniform(0.85, 1.0), sounds[note])
            )
    return _sequence(clock.frames, hits, round(0.015 * clock.sr))


def _guitar(clock: _Clock, chords: list[str], rng: np.random.Generator) -> np.ndarray:
    sr = clock.sr
    ring = _longest_gap(b for b, _ in _STRUMS) * clock.beat_s + 0.1
    strings: dict[int, np.ndarray] = {}
    strums: dict[tuple[str, bool], np.ndarray] = {}
    spread = round(0.012 * sr)  # between strings within one strum
    for name in sorted(set(chords)):
        voicing = _CHORDS[name][1]
        for down in (True, False):
            # Upstrokes catch only the top strings, high to low.
            order = voicing if down else voicing[::-1][:4]
            strum = np.zeros(round(ring * sr) + spread * len(order))
            for i, note in enumerate(order):
                if note not in strings:
                    strings[note] = _plucked(sr, note, ring, 0.18, 5000.0)
                s = strings[note]
                strum[i * spread : i * spread + s.shape[0]] += (0.9**i) * s
            strums[name, down] = strum
    hits: list[_Hit] = []
    for bar, name in enumerate(chords):
        for beat, down in _STRUMS:
            gain = (1.0 if down else 0.6) * rng.uniform(0.85, 1.0)
            hits.append((clock.frame(4 * bar + beat), gain, strums[name, down]))
    return _sequence(clock.frames, hits, round(0.025 * sr))


def _keys(clock: _Clock, chords: list[str]) -> np.ndarray:
    sr = clock.sr
    release = round(0.15 * sr)
    t = np.arange(clock.length(4) + 1 + release) / sr
    amps = np.array([1.0, 0.45, 0.25, 0.12, 0.06])
    sounds: dict[str, np.ndarray] = {}
    for name in sorted(set(chords)):
        chord = sum(
            _partials(2 * np.pi * _midi_hz(n) * t, amps) for n in _CHORDS[name][2]
        )
        envelope = (1 - np.exp(-t / 0.015)) * np.exp(-0.3 * t)
        sounds[name] = _fade_out(chord * envelope, sr)
    hits = [(clock.frame(4 * bar), 1.0, sounds[c]) for bar, c in enumerate(chords)]
    return _sequence(clock.frames, hits, release)


# --- voices ------------------------------------------------------------------------


def _formants(vowel: str, f: np.ndarray) -> np.ndarray:
    """Magnitude of the vocal tract (a cascade of resonances) at ``f`` Hz."""
    gain = np.ones_like(f)
    for centre, width in _VOWELS[vowel]:
        gain *= centre**2 / np.sqrt((centre**2 - f**2) ** 2 + (width * f) ** 2)
    return gain


def _sung_note(
    sr: int,
    note: int,
    seconds: float,
    vowel: str,
    *,
    vibrato: tuple[float, float],
    scoop: float,
    attack: float,
    release: float,
    tilt: float,
) -> np.ndarray:
    """One sung note: a glottal-like harmonic source through vowel formants.

    ``vibrato`` is (rate Hz, depth semitones); it fades in as a singer's does. The
    note starts ``scoop`` semitones flat and slides up into pitch.
    """
    f0 = _midi_hz(note)
    t = np.arange(round((seconds + release) * sr)) / sr
    rate, depth = vibrato
    bend = depth * np.sin(2 * np.pi * rate * t) * np.minimum(t / 0.25, 1.0)
    bend -= scoop * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(f0 * 2.0 ** (bend / 12.0)) / sr
    k = np.arange(1, _harmonic_count(f0, sr, _VOICE_TOP_HZ) + 1)
    # The glottal pulse falls off at about 12 dB/octave, the lips add 6 back.
    amps = k**-tilt * _formants(vowel, k * f0)
    amps /= np.sqrt(np.sum(amps**2))
    envelope = np.interp(t, [0.0, attack, seconds, seconds + release], [0, 1, 0.8, 0])
    return envelope * _partials(phase, amps)


def _lead(clock: _Clock, chords: list[str], rng: np.random.Generator) -> np.ndarray:
    sr, out = clock.sr, np.zeros(clock.frames)
    t = np.arange(round(0.3 * sr)) / sr
    breath = _noise(rng, t.shape[0], sr, 500.0, 4000.0) * np.sin(np.pi * t / 0.3) ** 2
    step = 4  # index into _LEAD_NOTES: start on D4
    prev = None
    vowel = "a"
    for bar, name in enumerate(chords):
        if bar % 4 == 3 and clock.bars >= 4:
            continue  # end of a four-bar phrase: the singer rests
        rhythm = _LEAD_RHYTHMS[int(rng.integers(len(_LEAD_RHYTHMS)))]
        first = 4 * bar + rhythm[0][0]
        _place(out, clock.frame(first) - round(0.33 * sr), 0.012 * breath)
        chord_tones = {n % 12 for n in _CHORDS[name][2]}
        for i, (beat, length) in enumerate(rhythm):
            moves = [m for m in (-2, -1, 1, 2) if 0 <= step + m < len(_LEAD_NOTES)]
            step += int(rng.choice(moves))
            note = _LEAD_NOTES[step]
            if i == len(rhythm) - 1:
                # Phrases land on a chord tone, stepping to it rather than
                # repeating the note before.
                note = min(
                    (n for n in _LEAD_NOTES if n % 12 in chord_tones and n != prev),
                    key=lambda n: abs(n - note),
                )
                step = _LEAD_NOTES.index(note)
            prev = note
            vowel = str(rng.choice([v for v in _VOWELS if v != vowel]))
            sung = _sung_note(
                sr,
                note,
                length * clock.beat_s,
                vowel,
                vibrato=(rng.uniform(5.3, 5.9), 0.3),
                scoop=0.4,
                attack=0.04,
                release=0.06,
                tilt=1.0,
            )
            _place(out, clock.frame(4 * bar + beat), rng.uniform(0.8, 1.0) * sung)
    return out


def _backing(clock: _Clock, chords: list[str], rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(clock.frames)
    note = 67
    for bar, name in enumerate(chords):
        tones = [
            n
            for n in range(_BACK_RANGE[0], _BACK_RANGE[1] + 1)
            if n % 12 in {m % 12 for m in _CHORDS[name][2]}
        ]
        # Move to the nearest chord tone, as a harmony part is voiced.
        note = min(tones, key=lambda n: (abs(n - note), n))
        sung = _sung_note(
            clock.sr,
            note,
            3.4 * clock.beat_s,
            "u",
            vibrato=(rng.uniform(4.9, 5.4), 0.15),
            scoop=0.1,
            attack=0.15,
            release=0.25,
            tilt=1.5,
        )
        _place(out, clock.frame(4 * bar + 0.1), sung)
    return out


def render_stage(sample_rate: int, seconds: float = 16.0, seed: int = 0) -> np.ndarray:
    """Render the virtual band as a seamless loop, one column per input.

    Returns float32 of shape ``(round(seconds * sample_rate), len(STAGE_CHANNELS))``
    in the order of ``STAGE_CHANNELS``, each peaking between -14 and -6 dBFS. The
    tempo is bent from 100 BPM so the loop holds a whole number of bars. The same
    ``seed`` gives the same band. ``seconds`` must be at least 1.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not seconds >= _MIN_SECONDS:
        raise ValueError(f"seconds must be at least {_MIN_SECONDS}, got {seconds}")
    clock = _Clock(sample_rate, seconds)
    chords = [_PROGRESSION[bar % len(_PROGRESSION)] for bar in range(clock.bars)]
    if clock.bars > 1 and clock.bars % len(_PROGRESSION):
        # An unfinished progression ends on the dominant, to lead back to the top.
        chords[-1] = _TURNAROUND
    drums, bass, guitar, lead, back = np.random.default_rng(seed).spawn(5)
    channels = [
        *_drums(clock, drums),
        _bass(clock, chords, bass),
        _guitar(clock, chords, guitar),
        _keys(clock, chords),
        _lead(clock, chords, lead),
        _backing(clock, chords, back),
    ]
    out = np.empty((clock.frames, len(STAGE_CHANNELS)), dtype=np.float32)
    for i, (x, peak_db) in enumerate(zip(channels, _PEAK_DBFS, strict=True)):
        x -= x.mean()
        out[:, i] = x * (10.0 ** (peak_db / 20.0) / np.max(np.abs(x)))
    return out
