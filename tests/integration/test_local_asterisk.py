"""The project's own Asterisk: the module set, loopback-only listeners, start and stop."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest

from ari_app.adapters.asterisk_local import LocalAsterisk, LocalAsteriskError
from ari_app.cli import main
from ari_app.settings import LocalAsteriskSettings
from tests.integration.telephony import ari_observer, place_call, read_env_file

pytestmark = pytest.mark.asterisk

REQUIRED = [
    "chan_pjsip.so",
    "res_ari.so",
    "res_stasis.so",
    "app_stasis.so",
    "res_ari_channels.so",
    "res_stasis_playback.so",
    "res_stasis_snoop.so",
    "res_stasis_recording.so",
    "bridge_simple.so",
    "bridge_softmix.so",
    "codec_ulaw.so",
    "codec_alaw.so",
    "codec_gsm.so",
    "format_gsm.so",
    "app_playback.so",
    "res_musiconhold.so",
]
FORBIDDEN = [
    "res_resolver_unbound.so",
    "res_stun_monitor.so",
    "chan_iax2.so",
    "pbx_dundi.so",
    "res_stir_shaken.so",
    "res_config_ldap.so",
    "res_xmpp.so",
    "app_jack.so",
    "res_timing_pthread.so",
    "res_curl.so",
]


def _loaded(asterisk: LocalAsterisk) -> set[str]:
    return set(re.findall(r"^(\S+\.so)\s", asterisk.cli("module show"), flags=re.MULTILINE))


def test_the_module_set_is_deliberate(local_asterisk: LocalAsterisk) -> None:
    loaded = _loaded(local_asterisk)
    assert set(REQUIRED) <= loaded
    assert not set(FORBIDDEN) & loaded


def test_every_module_that_autoload_finds_loads_without_errors(
    local_asterisk: LocalAsterisk,
) -> None:
    log = local_asterisk.console_log.read_text()
    last_start = log.rsplit("Asterisk Ready", 2)[-2]  # the most recent boot
    assert "declined to load" not in last_start
    assert "Error loading module" not in last_start


def test_sip_ari_and_ami_listen_on_loopback_only(local_asterisk: LocalAsterisk) -> None:
    s = local_asterisk.settings
    transports = local_asterisk.cli("pjsip show transports")
    assert f"127.0.0.1:{s.sip_port}" in transports
    assert "0.0.0.0" not in transports
    http = local_asterisk.cli("http show status")
    assert f"127.0.0.1:{s.http_port}" in http
    manager = local_asterisk.cli("manager show settings")
    assert re.search(rf"TCP Bindaddress:\s+127\.0\.0\.1:{s.ami_port}\s", manager)
    # and what the kernel says: every socket on those ports is bound to 127.0.0.1
    for table, port in (("tcp", s.http_port), ("tcp", s.ami_port), ("udp", s.sip_port)):
        bound = _bound_addresses(table, range(port, port + 1))
        assert bound == {"0100007F"}, (table, port, bound)


def _bound_addresses(table: str, ports: range) -> set[str]:
    """The local addresses (hex, as the kernel lists them) of the sockets on these ports."""
    rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
    local = (row.split()[1].split(":") for row in rows)
    return {address for address, hex_port in local if int(hex_port, 16) in ports}


def test_unknown_sip_peers_are_refused_and_the_carrier_is_matched_by_address(
    local_asterisk: LocalAsterisk,
) -> None:
    identify = local_asterisk.cli("pjsip show identifies")
    assert f"{local_asterisk.settings.carrier_address}/32" in identify
    assert "anonymous" not in local_asterisk.cli("pjsip show endpoints").lower()


def test_the_root_has_the_hostname_in_etc_hosts(local_asterisk: LocalAsterisk) -> None:
    hosts = (local_asterisk.root / "etc" / "hosts").read_text()
    assert socket.gethostname() in hosts.split()


def test_cli_status_down_and_up_act_on_this_instance_only(
    local_asterisk: LocalAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    other = LocalAsterisk(LocalAsteriskSettings(instance="neverstarted"))
    assert other.down() is False  # nothing of another instance is touched
    assert main(["asterisk", "status"]) == 0
    assert "running" in capsys.readouterr().out
    assert main(["asterisk", "cli", "core show version"]) == 0
    assert "Asterisk 22" in capsys.readouterr().out
    pid = local_asterisk.pid()
    assert main(["asterisk", "down"]) == 0
    assert local_asterisk.pid() is None
    assert main(["asterisk", "status"]) == 3
    assert main(["asterisk", "up"]) == 0
    assert local_asterisk.pid() not in (None, pid)


def test_up_refuses_a_port_in_use_and_names_its_setting(local_asterisk: LocalAsterisk) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        clash = LocalAsterisk(
            LocalAsteriskSettings(
                instance="portclash",
                http_port=busy,
                sip_port=25160,
                ami_port=25138,
                rtp_start=22000,
                rtp_end=22099,
            )
        )
        with pytest.raises(LocalAsteriskError, match=f"ARI_APP_ASTERISK_HTTP_PORT: port {busy}"):
            clash.up()
    assert clash.pid() is None


async def test_call_media_is_bound_to_loopback_too(local_asterisk: LocalAsterisk) -> None:
    s = local_asterisk.settings
    env = read_env_file(local_asterisk.env_file)
    async with ari_observer(env) as observer:
        call = asyncio.create_task(place_call(s.sip_port))  # the fallback apology, ~3 s
        await observer.wait_for("ChannelStateChange", channel__state="Up")
        rtp = _bound_addresses("udp", range(s.rtp_start, s.rtp_end + 1))
        result = await call
    assert result.returncode == 0, result.output
    assert rtp == {"0100007F"}
