"""Text to telephone audio: espeak-ng speaks, sox makes it 8 kHz 16-bit mono for Asterisk."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

TOOLS = ("espeak-ng", "sox")


class SpeechError(Exception):
    """A prompt could not be rendered."""


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise SpeechError(
            f"{' and '.join(missing)} not installed (Debian: apt install espeak-ng sox)"
        )


def speak(text: str, voice: str, dest: Path, *, words_per_minute: int = 150) -> None:
    """Write `text` spoken by espeak-ng's `voice` to `dest` as an 8 kHz 16-bit mono WAV."""
    with tempfile.TemporaryDirectory(prefix="ari-app-speech-") as scratch:
        raw = Path(scratch) / "raw.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--", text])
        part = dest.with_name(dest.name + ".part")
        _run(
            [
                "sox",
                str(raw),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                "-t",
                "wav",
                str(part),
            ]
        )
        part.replace(dest)


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[0]
        raise SpeechError(f"{argv[0]}: {reason}")
