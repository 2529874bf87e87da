"""The flows in force: reloads that keep what works, prompts checked against Asterisk's sounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.domain.ivr.sounds import SoundCatalog
from ari_app.services.flows import FlowRegistry

FLOW = """
flow: t
version: VERSION
numbers: ["100"]
start: hi
nodes:
  hi:
    kind: hangup
    prompts: [PROMPT]
"""


def _flow(folder: Path, version: int = 1, prompt: str = "sound:hello-world") -> None:
    text = FLOW.replace("VERSION", str(version)).replace("PROMPT", prompt)
    (folder / "t.yaml").write_text(text)


def _catalog(*sounds: str, language: str = "en") -> SoundCatalog:
    return SoundCatalog.from_ari(
        [{"id": sound, "formats": [{"language": language, "format": "gsm"}]} for sound in sounds]
    )


async def test_a_prompt_asterisk_lacks_keeps_the_flow_out(tmp_path: Path) -> None:
    async def sounds() -> SoundCatalog:
        return _catalog("hello-world", "ari-app/welcome")

    _flow(tmp_path, prompt="welcome")
    registry = FlowRegistry(tmp_path, sounds)
    report = await registry.reload()
    assert report.loaded == ["t v1 (t.yaml)"]
    assert report.prompts_checked == "checked against 2 sounds"

    _flow(tmp_path, version=2, prompt="welcom")
    report = await registry.reload()
    assert report.kept == ["t v1"]
    assert report.problems == [
        f"{tmp_path}/t.yaml:9: prompt 'welcom' is not among Asterisk's sounds in 'en'"
    ]
    flow = registry.for_number("100")
    assert flow is not None
    assert flow.version == 1


async def test_flows_load_unchecked_when_asterisk_does_not_answer(tmp_path: Path) -> None:
    async def sounds() -> SoundCatalog:
        raise ConnectionError("refused")

    _flow(tmp_path, prompt="never-built")
    report = await FlowRegistry(tmp_path, sounds).reload()
    assert report.loaded == ["t v1 (t.yaml)"]
    assert report.prompts_checked.startswith("not checked: Asterisk did not answer")


async def test_new_content_under_the_same_version_is_refused(tmp_path: Path) -> None:
    _flow(tmp_path)
    registry = FlowRegistry(tmp_path)
    await registry.reload()
    _flow(tmp_path, prompt="sound:goodbye")
    report = await registry.reload()
    assert report.kept == ["t v1"]
    assert "changed but is still version 1" in report.problems[0]
    again = await registry.reload()  # the same file as in force reloads quietly
    assert again.problems == report.problems
    _flow(tmp_path)
    assert (await registry.reload()).problems == []


@pytest.mark.parametrize(
    ("have", "language", "found"),
    [
        ("fr_CA", "fr_CA", True),
        ("fr", "fr_CA", True),  # the language without its region
        ("en", "fr", True),  # Asterisk's default language
        ("", "de", True),  # a file outside every language folder
        ("fr", "de", False),
        ("en_US", "en", False),
    ],
)
def test_the_catalog_follows_asterisks_language_fallback(
    have: str, language: str, found: bool
) -> None:
    assert _catalog("hello-world", language=have).has("hello-world", language) is found
    assert not _catalog("hello-world", language=have).has("goodbye", language)
