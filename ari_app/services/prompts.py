"""The project's own prompts: texts per language, spoken into files Asterisk plays.

A prompt file (dialplan/prompts/en.yaml) names a language, an espeak-ng voice
and the texts by prompt name. Building writes LANGUAGE/ari-app/NAME.wav under a
sounds folder, which a flow plays as the bare prompt NAME. A manifest beside
the files remembers what each was spoken from, so a build redoes only the
prompts whose text or voice changed, and removes the ones no longer defined.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ari_app.adapters import flow_files
from ari_app.adapters.flow_files import Located
from ari_app.adapters.speech import SpeechError, speak
from ari_app.domain.ivr.flow import OWN_PROMPTS, Problem

MANIFEST = ".sources.json"
NAME = re.compile(r"[A-Za-z0-9_-]+")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]+)?")
MAX_TEXT = 1000


@dataclass(frozen=True)
class PromptSet:
    source: str
    language: str
    voice: str
    texts: dict[str, str]


@dataclass
class BuildReport:
    made: list[str] = field(default_factory=list)  # "en/welcome"
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def read_prompt_file(path: Path) -> tuple[PromptSet | None, list[str]]:
    """A prompt file, or its problems as `file:line: reason` lines."""
    document = flow_files.read(path)
    if document.problems:
        return None, [str(problem) for problem in document.problems]
    data, problems = document.data, list[Located]()

    def problem(where: tuple[str, ...], message: str) -> None:
        problems.append(document.locate(Problem(where, message)))

    if not isinstance(data, dict):
        return None, [
            f"{document.source}:1: a prompt file is a mapping of language, voice, prompts"
        ]
    for key in data:
        if key not in ("language", "voice", "prompts"):
            problem((key,), f"unknown field '{key}'")
    language, voice, texts = data.get("language"), data.get("voice"), data.get("prompts")
    if not isinstance(language, str) or not LANGUAGE.fullmatch(language):
        problem(("language",), "language must be a code such as en or fr_FR")
    if not isinstance(voice, str) or not voice.strip():
        problem(("voice",), "voice must name an espeak-ng voice (espeak-ng --voices)")
    if not isinstance(texts, dict) or not texts:
        problem(("prompts",), "prompts must map prompt names to what they say")
        texts = {}
    for name, text in texts.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            problem(("prompts", str(name)), f"prompt name {name!r}: letters, digits, _ and - only")
        elif not isinstance(text, str) or not text.strip():
            problem(("prompts", name), f"prompt '{name}' says nothing")
        elif len(text) > MAX_TEXT:
            problem(("prompts", name), f"prompt '{name}' is over {MAX_TEXT} characters")
    if problems:
        return None, [str(found) for found in sorted(problems, key=lambda p: p.line)]
    return PromptSet(str(path), str(language), str(voice), dict(texts)), []


def build(
    sets: list[PromptSet],
    folder_for: Callable[[str], Path],
    *,
    render: Callable[[str, str, Path], None] = speak,
) -> BuildReport:
    """Speak every prompt whose text or voice changed into folder_for(language)/ari-app/."""
    report = BuildReport()
    for prompt_set in sets:
        folder = folder_for(prompt_set.language) / OWN_PROMPTS
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        fresh = {}
        for name, text in sorted(prompt_set.texts.items()):
            digest = hashlib.sha256(f"{prompt_set.voice}\n{text}".encode()).hexdigest()
            target = folder / f"{name}.wav"
            label = f"{prompt_set.language}/{name}"
            if manifest.get(name) == digest and target.exists():
                report.kept.append(label)
            else:
                try:
                    render(text, prompt_set.voice, target)
                except SpeechError as exc:
                    _write_manifest(manifest_path, {**manifest, **fresh})
                    raise SpeechError(f"{prompt_set.source}: prompt '{name}': {exc}") from exc
                report.made.append(label)
            fresh[name] = digest
        for name in sorted(set(manifest) - set(fresh)):
            (folder / f"{name}.wav").unlink(missing_ok=True)
            report.removed.append(f"{prompt_set.language}/{name}")
        _write_manifest(manifest_path, fresh)
    return report


def _write_manifest(path: Path, manifest: dict[str, str]) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    part.replace(path)
