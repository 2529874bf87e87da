"""The sounds an Asterisk has, and how it picks a language for a prompt."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class SoundCatalog:
    """Sound ids (`hello-world`, `digits/5`, `ari-app/welcome`) by the languages they exist in."""

    languages: dict[str, frozenset[str]]

    @classmethod
    def from_ari(cls, sounds: Iterable[dict[str, object]]) -> SoundCatalog:
        """From ARI's GET /sounds: [{"id": ..., "formats": [{"language": ..., "format": ...}]}]."""
        found: dict[str, set[str]] = {}
        for sound in sounds:
            formats = sound.get("formats")
            languages = {
                str(item.get("language", ""))
                for item in (formats if isinstance(formats, list) else [])
                if isinstance(item, dict)
            }
            found.setdefault(str(sound.get("id")), set()).update(languages)
        return cls({name: frozenset(langs) for name, langs in found.items()})

    def has(self, sound: str, language: str) -> bool:
        """Whether a call speaking `language` hears this sound. Asterisk tries the language
        (fr_CA), then without its region (fr), then the files outside any language folder,
        then its default language (en)."""
        have = self.languages.get(sound, frozenset())
        tried = (language, language.split("_")[0], "", DEFAULT_LANGUAGE)
        return any(candidate in have for candidate in tried)

    def __len__(self) -> int:
        return len(self.languages)
