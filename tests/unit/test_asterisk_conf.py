"""Rendering the shipped Asterisk configuration and dialplan."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ari_app.adapters.asterisk_conf import TemplateError, render, render_tree, voicemail_pin
from ari_app.adapters.asterisk_local import ROOT_MARKER, LocalAsterisk, root_key
from ari_app.settings import REPO_DIR, LocalAsteriskSettings

VALUES = {
    "instance_dir": "/srv/ari-app/dev",
    "module_dir": "/usr/lib/asterisk/modules",
    "ari_user": "ari-app",
    "ari_password": "secret-a",
    "ami_user": "ari-app",
    "ami_password": "secret-b",
    "application": "ari-app",
    "http_port": 8088,
    "ami_port": 5038,
    "sip_port": 5060,
    "rtp_start": 10000,
    "rtp_end": 10999,
    "carrier_address": "127.0.0.2",
    "voicemail_pin": "12345678",
}
SOURCES = [REPO_DIR / "asterisk_conf", REPO_DIR / "dialplan"]


def test_placeholders_are_replaced_and_asterisk_syntax_is_left_alone() -> None:
    text = 'exten => 100,1,Stasis({{ application }})\n same => n,GotoIf($["${X}" = "1"]?a)\n'
    assert render(text, {"application": "app"}) == (
        'exten => 100,1,Stasis(app)\n same => n,GotoIf($["${X}" = "1"]?a)\n'
    )


def test_an_unknown_placeholder_is_an_error_naming_file_and_line() -> None:
    with pytest.raises(TemplateError, match=r"x\.conf:2: unknown placeholder \{\{ nope \}\}"):
        render("a\nb {{ nope }}\n", {}, source="x.conf")


def test_every_shipped_template_renders_with_the_values_the_local_asterisk_gives() -> None:
    files = render_tree(SOURCES, VALUES)
    assert {
        "asterisk.conf",
        "pjsip.conf",
        "ari.conf",
        "http.conf",
        "manager.conf",
        "extensions.conf",
        "ari_app.conf",
        "modules.conf",
    } <= set(files)
    assert not any("{{" in text for text in files.values())


def test_the_local_asterisk_gives_every_value_the_templates_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalAsterisk(LocalAsteriskSettings(home=tmp_path))
    monkeypatch.setattr(local, "root_facts", lambda: {"module_dir": "/usr/lib/asterisk/modules"})
    given = local.template_values()
    used = set()
    for folder in SOURCES:
        for path in folder.glob("*.conf"):
            used |= set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", path.read_text()))
    assert used <= set(given)
    assert set(given) == set(VALUES)
    # secrets are generated, kept, and private
    assert len(str(given["ari_password"])) >= 24
    assert local.template_values()["ari_password"] == given["ari_password"]
    assert (local.instance_dir / "secrets.json").stat().st_mode & 0o077 == 0


def test_every_listener_binds_to_loopback_and_no_password_is_a_default() -> None:
    files = render_tree(SOURCES, VALUES)
    assert "bindaddr = 127.0.0.1" in files["http.conf"]
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]
    assert "bind = 127.0.0.1:5060" in files["pjsip.conf"]
    assert "password = secret-a" in files["ari.conf"]
    assert "secret = secret-b" in files["manager.conf"]


def test_the_service_number_falls_back_to_an_apology_when_stasis_fails() -> None:
    dialplan = render_tree(SOURCES, VALUES)["ari_app.conf"]
    assert "Stasis(ari-app)" in dialplan
    assert '$["${STASISSTATUS}" = "FAILED"]?ari-app-fallback,s,1' in dialplan
    fallback = dialplan.split("[ari-app-fallback]", 1)[1]
    assert "Answer()" in fallback
    assert "Playback(" in fallback


def test_modules_conf_is_a_noload_list_on_autoload() -> None:
    text = (REPO_DIR / "asterisk_conf" / "modules.conf").read_text()
    noload = re.findall(r"^noload => (\S+)$", text, flags=re.MULTILINE)
    assert "autoload = yes" in text
    assert len(noload) == len(set(noload))  # each named once
    assert {"res_resolver_unbound.so", "chan_iax2.so", "pbx_dundi.so"} <= set(noload)


def test_a_new_package_list_means_a_new_root() -> None:
    base = LocalAsteriskSettings()
    more = LocalAsteriskSettings(packages=(*base.packages, "sox"))
    assert root_key(base) != root_key(more)
    assert root_key(base) == root_key(LocalAsteriskSettings())


def test_instances_live_apart_inside_one_root(tmp_path: Path) -> None:
    dev = LocalAsterisk(LocalAsteriskSettings(home=tmp_path, instance="dev"))
    test = LocalAsterisk(LocalAsteriskSettings(home=tmp_path, instance="test"))
    assert dev.root == test.root
    assert dev.instance_dir != test.instance_dir
    assert dev.instance_dir.is_relative_to(dev.root)


def test_a_new_root_replaces_old_ones_unless_an_asterisk_still_runs_there(
    tmp_path: Path,
) -> None:
    def old_root(name: str, pid: int | None) -> Path:
        root = tmp_path / name
        (root / "srv/ari-app/dev/run").mkdir(parents=True)
        (root / ROOT_MARKER).write_text("{}")
        if pid is not None:
            (root / "srv/ari-app/dev/run/asterisk.pid").write_text(f"{pid}\n")
        return root

    idle = old_root("root-aaaaaaaaaaaa", None)
    busy = old_root("root-bbbbbbbbbbbb", os.getpid())  # a live process stands for Asterisk
    local = LocalAsterisk(LocalAsteriskSettings(home=tmp_path))
    local.root.mkdir()
    local._prune_old_roots()
    assert not idle.exists()
    assert busy.exists()
    assert local.root.exists()


def test_the_mailbox_pin_is_eight_digits_made_from_the_instances_secret() -> None:
    pin = voicemail_pin("secret-b")
    assert re.fullmatch(r"\d{8}", pin)
    assert pin == voicemail_pin("secret-b")
    assert pin != voicemail_pin("secret-c")
    assert "800 => 12345678," in render_tree(SOURCES, VALUES)["voicemail.conf"]
