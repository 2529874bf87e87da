"""Settings errors name the environment variable to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.settings import SettingsError, load, load_local_asterisk

GOOD = {"ARI_APP_ARI_PASSWORD": "a", "ARI_APP_AMI_PASSWORD": "b"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("ARI_APP_"):
            monkeypatch.delenv(key)


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for key, value in {**GOOD, **env}.items():
        monkeypatch.setenv(key, value)
    return load()


def test_defaults_are_loopback_and_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _load(monkeypatch)
    assert settings.ari_url == "http://127.0.0.1:8088"  # type: ignore[attr-defined]
    assert settings.api_host == "127.0.0.1"  # type: ignore[attr-defined]
    assert settings.database_url.startswith("sqlite:///")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ARI_APP_ARI_URL": "127.0.0.1:8088"}, "ARI_APP_ARI_URL"),
        ({"ARI_APP_DATABASE_URL": "not a url"}, "ARI_APP_DATABASE_URL"),
        ({"ARI_APP_DATABASE_URL": "oracle://x@y/z"}, "ARI_APP_DATABASE_URL"),
        ({"ARI_APP_AMI_PORT": "70000"}, "ARI_APP_AMI_PORT"),
        ({"ARI_APP_MQTT_URL": "tcp://broker"}, "ARI_APP_MQTT_URL"),
        ({"ARI_APP_ARI_APPLICATION": "has space"}, "ARI_APP_ARI_APPLICATION"),
        ({"ARI_APP_LOG_FORMAT": "xml"}, "ARI_APP_LOG_FORMAT"),
        ({"ARI_APP_EVENT_LOOP": "trio"}, "ARI_APP_EVENT_LOOP"),
        ({"ARI_APP_AMI_PASSWORD": ""}, "ARI_APP_AMI_PASSWORD"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(monkeypatch, **env)
    message = str(caught.value)
    assert message.startswith(f"{named}: ")
    assert "\n" not in message


def test_a_malformed_database_url_is_not_echoed_since_it_may_hold_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(monkeypatch, ARI_APP_DATABASE_URL="postgresql://u:hunter2@h:port/db")
    assert "hunter2" not in str(caught.value)


def test_an_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "ari-app.env"
    env_file.write_text("ARI_APP_ARI_PASSWORD=x\nARI_APP_AMI_PASSWORD=y\nARI_APP_CENTER=north\n")
    assert load(env_file).center == "north"


def test_the_local_asterisk_refuses_an_empty_rtp_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_APP_ASTERISK_RTP_START", "20000")
    monkeypatch.setenv("ARI_APP_ASTERISK_RTP_END", "19000")
    with pytest.raises(SettingsError, match="ARI_APP_ASTERISK_RTP_END"):
        load_local_asterisk()


def test_the_service_runs_on_uvloop_unless_told_to_use_asyncios_own_loop() -> None:
    import uvloop

    from ari_app.cli import _loop_factory

    assert _loop_factory("uvloop") is uvloop.new_event_loop
    assert _loop_factory("asyncio") is None
