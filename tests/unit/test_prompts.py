"""The project's own prompts: prompt files checked with their lines, spoken into 8 kHz WAVs."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from ari_app.adapters.speech import SpeechError, speak
from ari_app.cli import main
from ari_app.services.prompts import MANIFEST, PromptSet, build, read_prompt_file

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "en.yaml"
    path.write_text(text)
    return path


def test_the_shipped_prompt_files_are_fine() -> None:
    for path in sorted((REPO / "dialplan" / "prompts").glob("*.yaml")):
        prompt_set, problems = read_prompt_file(path)
        assert problems == []
        assert prompt_set is not None
        assert prompt_set.texts


def test_the_demo_flow_has_every_own_prompt_it_plays() -> None:
    from ari_app.domain.ivr.check import prompts_of
    from ari_app.services.flows import check_file

    flow, _ = check_file(REPO / "dialplan" / "flows" / "demo.yaml")
    english, _ = read_prompt_file(REPO / "dialplan" / "prompts" / "en.yaml")
    assert flow is not None
    assert english is not None
    own = {
        prompt.removeprefix("sound:ari-app/")
        for node in flow.nodes.values()
        for prompt in prompts_of(node)
        if not prompt.startswith("sound:") or prompt.startswith("sound:ari-app/")
    }
    assert own
    assert own <= set(english.texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("language: en\nvoice: en-us\nprompts:\n  hi: ''\n", "en.yaml:4: prompt 'hi' says nothing"),
        (
            "language: english\nvoice: en-us\nprompts: {hi: Hello}\n",
            "en.yaml:1: language must be a code such as en or fr_FR",
        ),
        (
            "language: en\nvoice: en-us\nprompts:\n  hi: Hello\n  hi: Again\n",
            "en.yaml:5: 'hi' is given twice (first on line 4)",
        ),
        (
            "language: en\nvoice: en-us\nspeed: 3\nprompts: {hi: Hello}\n",
            "en.yaml:3: unknown field 'speed'",
        ),
        (
            "language: en\nvoice: en-us\nprompts:\n  ../escape: Hello\n",
            "en.yaml:4: prompt name '../escape': letters, digits, _ and - only",
        ),
        ("language: en\nprompts: {hi: Hello}\n", "voice must name an espeak-ng voice"),
        ("language: en\nvoice: en-us\nprompts: [a, b]\n", "prompts must map prompt names"),
    ],
)
def test_a_bad_prompt_file_is_refused_with_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    prompt_set, problems = read_prompt_file(_write(tmp_path, text))
    assert prompt_set is None
    assert any(expected in problem for problem in problems), problems


def test_a_bad_prompt_file_builds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "language: en\nvoice: en-us\nprompts:\n  hi: ''\n")
    out = tmp_path / "sounds"
    assert main(["prompts", "build", str(path), "--out", str(out)]) == 1
    assert "says nothing" in capsys.readouterr().out
    assert not out.exists()


def test_a_build_speaks_only_what_changed_and_removes_what_is_gone(tmp_path: Path) -> None:
    spoken: list[str] = []

    def render(text: str, voice: str, dest: Path) -> None:
        spoken.append(text)
        dest.write_bytes(text.encode())

    def folder_for(language: str) -> Path:
        return tmp_path / language

    first = PromptSet("en.yaml", "en", "en-us", {"hi": "Hello", "bye": "Goodbye"})
    report = build([first], folder_for, render=render)
    assert sorted(report.made) == ["en/bye", "en/hi"]
    assert (tmp_path / "en" / "ari-app" / "hi.wav").read_bytes() == b"Hello"

    second = PromptSet("en.yaml", "en", "en-us", {"hi": "Hello there"})
    spoken.clear()
    report = build([second], folder_for, render=render)
    assert spoken == ["Hello there"]
    assert report.made == ["en/hi"]
    assert report.removed == ["en/bye"]
    assert not (tmp_path / "en" / "ari-app" / "bye.wav").exists()

    spoken.clear()
    assert build([second], folder_for, render=render).kept == ["en/hi"]
    assert spoken == []
    manifest = json.loads((tmp_path / "en" / "ari-app" / MANIFEST).read_text())
    assert set(manifest) == {"hi"}


def test_a_prompt_that_cannot_be_spoken_names_its_file_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    def render(text: str, voice: str, dest: Path) -> None:
        if text == "broken":
            raise SpeechError("espeak-ng: no such voice")
        dest.write_bytes(b"x")

    prompts = PromptSet("en.yaml", "en", "en-us", {"a": "fine", "b": "broken"})
    with pytest.raises(SpeechError, match=r"en\.yaml: prompt 'b': espeak-ng: no such voice"):
        build([prompts], lambda language: tmp_path / language, render=render)
    manifest = json.loads((tmp_path / "en" / "ari-app" / MANIFEST).read_text())
    assert set(manifest) == {"a"}  # a later build does not speak 'a' again


def test_espeak_ng_and_sox_make_an_8_khz_mono_16_bit_wav(tmp_path: Path) -> None:
    dest = tmp_path / "welcome.wav"
    speak("Welcome to the demo center.", "en-us", dest)
    with wave.open(str(dest)) as audio:
        assert audio.getframerate() == 8000
        assert audio.getnchannels() == 1
        assert audio.getsampwidth() == 2
        seconds = audio.getnframes() / 8000
        frames = audio.readframes(audio.getnframes())
    assert 1.0 < seconds < 5.0
    assert (
        max(
            abs(int.from_bytes(frames[i : i + 2], "little", signed=True))
            for i in range(0, len(frames), 2)
        )
        > 1000
    )  # speech, not silence


def test_an_unknown_voice_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="espeak-ng"):
        speak("Hello", "zz-none", tmp_path / "x.wav")


def test_prompts_build_writes_language_folders_under_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "language: en\nvoice: en-us\nprompts: {hi: Hello}\n")
    out = tmp_path / "sounds"
    assert main(["prompts", "build", str(path), "--out", str(out)]) == 0
    assert (out / "en" / "ari-app" / "hi.wav").stat().st_size > 1000
    assert "1 spoken" in capsys.readouterr().out
    assert main(["prompts", "build", str(path), "--out", str(out)]) == 0
    assert "0 spoken, 1 unchanged" in capsys.readouterr().out
