"""Speakers from a text-to-speech engine: eSpeak NG voices as a second, independent voice source.

The synthetic corpus (:mod:`xvector.corpora.synthetic`) draws speakers from our own
source-filter generator, so a model tuned on it may have learnt that generator. eSpeak NG
(`apt-get install espeak-ng`) is an unrelated formant synthesiser with ~130 languages and ~100
voice variants; a speaker here is one (language, variant, pitch, speed) and its utterances are
random pseudo-word strings read in that language, with the per-utterance pitch and tempo drifting
around the speaker's own. TTS output has what our generator lacks: exact digital silence
between words and at the edges, and languages shared by several speakers (so some nontarget
trials are same-language pairs). Audio comes back at 22.05 kHz and is resampled to
``sample_rate`` with a polyphase filter (digital silence away from speech stays exactly zero).

Example (``synthesize`` needs espeak-ng; ``tests/corpora/test_tts.py`` runs it when installed):
    >>> import numpy as np
    >>> voices = sample_voices(np.random.default_rng(0), 3, ("de", "fi"))
    >>> sorted({v.language for v in voices}) <= ["de", "fi"], len(set(voices))
    (True, 3)
    >>> len(random_text(np.random.default_rng(0), 5).split())
    5
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050

#: Languages written in the Latin alphabet, so random Latin pseudo-words are read by each one's
#: own letter-to-sound rules.
LANGUAGES = (
    "af", "ca", "cs", "cy", "da", "de", "en-gb", "en-us", "eo", "es", "et", "eu", "fi", "fr-fr",
    "ga", "hr", "hu", "id", "is", "it", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt", "pt-br",
    "ro", "sk", "sl", "sq", "sv", "sw", "tr", "vi",
)  # fmt: skip
#: Voice variants (``voices/!v``): the numbered male/female sets and named voices; whisper and
#: robot voices are left out (no voicing or no speaker-like pitch).
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
    "Mario", "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin", "boris",
    "caleb", "croak", "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda", "max",
    "michel", "norbert", "paul", "pedro", "quincy", "rob", "robert", "steph", "travis", "victor", "zac",
)  # fmt: skip
_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
           "br", "kl", "st", "tr", "gr", "pl", "sp", "ch", "sh")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ei", "y")
_CODAS = ("", "", "", "n", "m", "s", "t", "r", "l", "k")


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` program is on the PATH."""
    return shutil.which(ESPEAK) is not None


@dataclass(frozen=True)
class TTSVoice:
    """One TTS speaker: ``espeak-ng -v language+variant -p pitch -s speed``.

    Attributes:
        language: eSpeak NG language code (one of :data:`LANGUAGES`).
        variant: voice variant (one of :data:`VARIANTS`).
        pitch: base pitch, 0-99 (eSpeak's default 50).
        speed: words per minute (eSpeak's default 175).
    """

    language: str
    variant: str
    pitch: int
    speed: int


def sample_voices(rng: np.random.Generator, n: int, languages: tuple[str, ...]) -> list[TTSVoice]:
    """``n`` distinct voices whose languages are drawn from ``languages`` (shared by several speakers)."""
    voices: dict[tuple, TTSVoice] = {}
    while len(voices) < n:
        v = TTSVoice(str(rng.choice(languages)), str(rng.choice(VARIANTS)), int(rng.integers(15, 85)),
                     int(rng.integers(120, 210)))
        voices.setdefault((v.language, v.variant, v.pitch // 10, v.speed // 20), v)
    return list(voices.values())


def random_text(rng: np.random.Generator, n_words: int) -> str:
    """``n_words`` random pseudo-words of 1-3 syllables (onset, vowel, optional coda)."""
    words = []
    for _ in range(n_words):
        syl = [str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) + str(rng.choice(_CODAS))
               for _ in range(int(rng.integers(1, 4)))]
        words.append("".join(syl))
    return " ".join(words)


def synthesize(voice: TTSVoice, text: str, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """``text`` read by ``voice``, its pitch (±6) and tempo (±10 %) drifted per utterance.

    Returns:
        ``(S,)`` float32 at ``sample_rate``, eSpeak's own level (about -20 dBFS peak-to-RMS of speech).

    Raises:
        RuntimeError: when espeak-ng is missing or fails (its message included).
    """
    pitch = int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 99))
    speed = int(voice.speed * rng.uniform(0.9, 1.1))
    cmd = [ESPEAK, "-v", f"{voice.language}+{voice.variant}", "-p", str(pitch), "-s", str(speed), "--stdout", text]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(f"espeak-ng failed for voice {voice}: {err}") from err
    wav, rate = sf.read(io.BytesIO(out.stdout), dtype="float32")
    if rate != ESPEAK_RATE:
        raise RuntimeError(f"espeak-ng returned {rate} Hz audio, expected {ESPEAK_RATE}")
    g = np.gcd(sample_rate, rate)
    return resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
