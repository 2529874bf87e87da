"""The compose stack, read as data (these machines have no Docker engine to run it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ari_app.settings import ENV_PREFIX, LocalAsteriskSettings, Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yaml").read_text()))


def _known_settings() -> set[str]:
    service = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    local = {ENV_PREFIX + "ASTERISK_" + name.upper() for name in LocalAsteriskSettings.model_fields}
    return service | local


def test_the_stack_has_asterisk_the_service_postgresql_and_mosquitto() -> None:
    assert {"asterisk", "ari-app", "postgres", "mosquitto"} <= set(_compose()["services"])


def test_every_ari_app_variable_in_the_stack_is_a_setting_the_service_reads() -> None:
    for name, service in _compose()["services"].items():
        for key in service.get("environment", {}):
            if key.startswith(ENV_PREFIX):
                assert key in _known_settings(), (name, key)


def test_the_service_is_given_everything_it_needs_to_reach_the_other_parts() -> None:
    environment = _compose()["services"]["ari-app"]["environment"]
    for required in (
        "ARI_APP_ARI_URL",
        "ARI_APP_ARI_PASSWORD",
        "ARI_APP_AMI_HOST",
        "ARI_APP_AMI_PASSWORD",
        "ARI_APP_DATABASE_URL",
        "ARI_APP_MQTT_URL",
    ):
        assert required in environment
    assert environment["ARI_APP_DATABASE_URL"].startswith("postgresql://")
    Settings.model_validate(  # the values parse as the service would parse them
        {key.removeprefix(ENV_PREFIX).lower(): value for key, value in environment.items()}
    )


def test_no_password_has_a_default() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for match in re.finditer(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text):
        assert match.group(2).startswith(":?"), match.group(0)


def test_control_ports_are_published_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        if "ports" not in service:
            assert service.get("network_mode") in (None, "host"), name


def test_the_asterisk_image_uses_debian_unstable_with_the_local_package_list() -> None:
    dockerfile = (DOCKER / "Dockerfile.asterisk").read_text()
    assert "FROM debian:sid" in dockerfile
    for package in LocalAsteriskSettings().packages:
        assert package in dockerfile


def test_the_own_prompts_are_built_into_a_volume_asterisk_reads() -> None:
    services = _compose()["services"]
    command = services["prompts"]["command"]
    assert command[:2] == ["prompts", "build"]
    out = command[command.index("--out") + 1]
    assert f"ari-app-prompts:{out}" in services["prompts"]["volumes"]
    assert f"ari-app-prompts:{out}:ro" in services["asterisk"]["volumes"]
    assert f"{out}/en/ari-app" in (DOCKER / "Dockerfile.asterisk").read_text()
    assert "espeak-ng sox" in (DOCKER / "Dockerfile").read_text()


def test_the_image_points_every_folder_setting_at_the_copied_tree() -> None:
    # the package is installed into site-packages, so folders found beside the source
    # would be looked for there: every folder the service or the CLI reads is set
    dockerfile = (DOCKER / "Dockerfile").read_text()
    folders = {
        ENV_PREFIX + name.upper()
        for name in Settings.model_fields
        # recordings are data (below); Asterisk's own configuration folder is Asterisk's
        if name.endswith(("_dir", "_file"))
        and name not in ("recordings_dir", "asterisk_config_dir")
    } | {
        ENV_PREFIX + "ASTERISK_" + name.upper()
        for name in ("conf_dir", "dialplan_dir", "prompts_dir")
    }
    for name in folders:
        assert re.search(rf"{name}=/opt/ari-app/\S+", dockerfile), name
    # recordings are data: in the image's data folder, a volume in the compose file
    assert "ARI_APP_RECORDINGS_DIR=/var/lib/ari-app/recordings" in dockerfile


def test_the_files_ops_change_through_the_api_are_the_services_and_outlive_a_container() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "chown -R ari-app /opt/ari-app/dialplan" in dockerfile  # before USER ari-app
    assert dockerfile.index("chown -R ari-app") < dockerfile.index("USER ari-app")
    assert "ari-app-center:/opt/ari-app/dialplan" in services["ari-app"]["volumes"]
    # what Asterisk's configuration is rendered from is what ops last left
    assert "ari-app-center:/opt/ari-app/dialplan:ro" in services["asterisk-config"]["volumes"]
