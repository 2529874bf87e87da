"""Deploying the dialplan ops edit into the real Asterisk: a broken one is refused (or,
when Asterisk loads something other than the files say, taken back) and the next real
call still follows the dialplan before; a good one counts for the next call with no
restart; a call in progress during a deploy goes on to its end."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ari_app.adapters.ami import AmiClient
from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.adapters.dialplan_deploy import DeployFailed, DialplanInstaller
from ari_app.services.dialplan import DialplanDesk, entries
from tests.integration.telephony import (
    CARRIER_ADDRESS,
    REPO,
    free_port,
    place_call,
    start_service,
)

REFUSED_SCENARIO = REPO / "tests" / "sipp" / "carrier_refused.xml"
OURS = REPO / "dialplan"
# the numbers this test adds to the service numbers' context, outside the flows' 1XX
BUSY = "exten => 299,1,Hangup(17)\n"  # a caller hears busy (486)
REJECTED = "exten => 299,1,Hangup(21)\n"  # rejected (403)
LONG = "exten => 298,1,Answer()\n same => n,Wait(6)\n same => n,Hangup()\n"


def _variant(folder: Path, *added: str, change: tuple[str, str] | None = None) -> Path:
    """The repository's dialplan with lines added to [ari-app-services] (and a change)."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(OURS, folder, ignore=shutil.ignore_patterns("flows", "prompts", "*.yaml"))
    path = folder / "ari_app.conf"
    text = path.read_text().replace("[ari-app-services]\n", "[ari-app-services]\n" + "".join(added))
    if change is not None:
        assert change[0] in text
        text = text.replace(*change)
    path.write_text(text)
    return folder


@pytest.fixture
def env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The service's settings for the test Asterisk; its own dialplan put back after."""
    yield service_env
    done = _deploy(service_env, OURS)
    assert done.returncode == 0, done.stdout + done.stderr


def _deploy(env: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    """`ari-app dialplan deploy`, as ops run it."""
    return subprocess.run(
        [sys.executable, "-m", "ari_app", "dialplan", "deploy", "--dir", str(folder)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def _final_answer(sip_port: int, number: str) -> int:
    """The carrier offers a call to `number`; the final SIP status it gets (404, 486)."""
    folder = Path(tempfile.mkdtemp(prefix="ari-app-refused-"))
    process = await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(REFUSED_SCENARIO),
        "-i", CARRIER_ADDRESS, "-p", str(free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)),
        "-s", number, "-m", "1", "-recv_timeout", "10s", "-nostdin", "-trace_msg",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=folder,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    codes, messages = _final_codes(folder)
    assert codes, out.decode(errors="replace") + messages
    return codes[-1]


def _final_codes(folder: Path) -> tuple[list[int], str]:
    """The final statuses SIPp received, from its message trace (the folder goes)."""
    messages = "".join(p.read_text(errors="replace") for p in folder.glob("*_messages.log"))
    shutil.rmtree(folder, ignore_errors=True)
    return [int(code) for code in re.findall(r"SIP/2\.0 ([4-6]\d\d) ", messages)], messages


async def test_a_good_deploy_counts_for_the_next_call_and_a_broken_one_changes_nothing(
    local_asterisk: LocalAsterisk, env: dict[str, str], tmp_path: Path
) -> None:
    port = local_asterisk.settings.sip_port
    assert await _final_answer(port, "299") == 404  # not a number of this center yet
    good = _deploy(env, _variant(tmp_path / "good", BUSY))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "contexts loaded and verified" in good.stdout
    assert await _final_answer(port, "299") == 486  # the next call, no restart
    broken = {
        "a syntax error": _variant(tmp_path / "syntax", REJECTED, "exten => 297,1,Answer(\n"),
        "an unknown application": _variant(tmp_path / "app", "exten => 299,1,Hangupp(21)\n"),
        "a number routed nowhere": _variant(
            tmp_path / "route", REJECTED,
            change=("[ari-app-services]\n", "[ari-app-service]\n"),
        ),
    }  # fmt: skip
    said = {
        "a syntax error": "not an application call: 'Answer('",
        "an unknown application": "application Hangupp is not in the connected Asterisk",
        "a number routed nowhere": "includes 'ari-app-services', which is not there",
    }
    for kind, folder in broken.items():
        refused = _deploy(env, folder)
        assert refused.returncode == 1, (kind, refused.stdout, refused.stderr)
        assert said[kind] in refused.stdout, (kind, refused.stdout)
        assert "nothing was installed" in refused.stderr
        assert await _final_answer(port, "299") == 486, kind  # the dialplan before
    assert (await place_call(port, number="100", timeout=30)).returncode == 0


async def test_what_asterisk_loads_other_than_the_files_say_is_taken_back(
    local_asterisk: LocalAsterisk, env: dict[str, str], tmp_path: Path
) -> None:
    port = local_asterisk.settings.sip_port
    assert _deploy(env, _variant(tmp_path / "good", BUSY)).returncode == 0
    config_dir = Path(env["ARI_APP_ASTERISK_CONFIG_DIR"])
    before = {name: (config_dir / name).read_text() for name in ("extensions.conf", "ari_app.conf")}
    ami = AmiClient(
        env["ARI_APP_AMI_HOST"], int(env["ARI_APP_AMI_PORT"]), env["ARI_APP_AMI_USER"],
        env["ARI_APP_AMI_PASSWORD"], events="off",
    )  # fmt: skip
    async with ami.session():
        installer = DialplanInstaller(ami, config_dir)
        desk = DialplanDesk(
            _variant(tmp_path / "next", REJECTED),
            "ari-app",
            Path(env["ARI_APP_FLOWS_DIR"]),
            installer,
        )
        checked = await desk.check()
        assert checked.problems == []
        # Asterisk is made to miss a context: the files hold none of that name
        expected = {**entries(checked.plan), "ari-app-ghost": frozenset({"s"})}
        with pytest.raises(DeployFailed) as failed:
            await installer.install(checked.files, expected)
        assert failed.value.restored
        assert failed.value.problems == ["Asterisk did not load context 'ari-app-ghost'"]
        loaded = await installer.loaded(["ari-app-services"])
    assert {name: (config_dir / name).read_text() for name in before} == before
    assert "299" in (loaded.contexts["ari-app-services"] or set())
    assert await _final_answer(port, "299") == 486  # busy, as before: not rejected


async def test_a_call_in_progress_during_a_deploy_goes_on_to_its_end(
    local_asterisk: LocalAsterisk, env: dict[str, str], tmp_path: Path
) -> None:
    port = local_asterisk.settings.sip_port
    assert _deploy(env, _variant(tmp_path / "first", LONG)).returncode == 0
    call = asyncio.create_task(place_call(port, number="298", timeout=30))
    await asyncio.sleep(2)  # answered, waiting in Wait(6)
    later = await asyncio.to_thread(_deploy, env, _variant(tmp_path / "second", LONG, BUSY))
    assert later.returncode == 0, later.stdout + later.stderr
    result = await call
    assert result.returncode == 0, result.output  # Asterisk hung up at the end: a BYE
    assert result.seconds >= 6, result.seconds  # not cut short by the reload
    assert await _final_answer(port, "299") == 486


async def test_ops_put_a_dialplan_file_through_the_api_with_its_diff_in_the_audit(
    local_asterisk: LocalAsterisk, env: dict[str, str], tmp_path: Path
) -> None:
    port = local_asterisk.settings.sip_port
    source = _variant(tmp_path / "source")  # the service's dialplan folder: a copy of ours
    service = await start_service({**env, "ARI_APP_DIALPLAN_DIR": str(source)})
    try:
        async with service.client() as admin:
            made = await admin.post(
                "/api/v1/users", json={"id": "olga", "name": "Olga", "role": "ops"}
            )
            assert made.status_code == 201, made.text
            minted = await admin.post("/api/v1/users/olga/tokens", json={})
            olga = {"Authorization": f"Bearer {minted.json()['token']}"}
            text = (source / "ari_app.conf").read_text()
            busy = text.replace("[ari-app-services]\n", "[ari-app-services]\n" + BUSY)
            broken = busy.replace(BUSY, "exten => 299,1,Hangupp(17)\n")
            url = "/api/v1/dialplan/ari_app.conf"
            plain = {**olga, "Content-Type": "text/plain"}
            tried = await admin.put(f"{url}?dry_run=true", content=broken, headers=plain)
            assert tried.status_code == 422, tried.text  # Asterisk's applications asked
            assert any("Hangupp" in p for p in tried.json()["problems"])
            dry = await admin.put(f"{url}?dry_run=true", content=busy, headers=plain)
            assert dry.status_code == 200, dry.text
            assert "+exten => 299,1,Hangup(17)" in dry.json()["diff"]
            assert (source / "ari_app.conf").read_text() == text  # nothing installed
            assert await _final_answer(port, "299") == 404
            refused = await admin.put(
                url, content=broken, headers={**olga, "Content-Type": "text/plain"}
            )
            assert refused.status_code == 422, refused.text
            assert any("Hangupp" in p for p in refused.json()["problems"])
            assert (source / "ari_app.conf").read_text() == text  # nothing changed
            assert await _final_answer(port, "299") == 404
            done = await admin.put(
                url, content=busy, headers={**olga, "Content-Type": "text/plain"}
            )
            assert done.status_code == 200, done.text
            assert "+exten => 299,1,Hangup(17)" in done.json()["diff"]
            assert (source / "ari_app.conf").read_text() == busy
            assert await _final_answer(port, "299") == 486
            rows = (await admin.get("/api/v1/audit?actor=olga")).json()
            deployed, tried = rows[0], rows[1]
            assert (deployed["outcome"], tried["outcome"]) == (200, 422)
            assert deployed["before"]["text"] == text
            assert deployed["after"]["text"] == busy
            assert "+exten => 299,1,Hangup(17)" in deployed["after"]["diff"]
            async with httpx.AsyncClient(base_url=service.api) as nobody:
                assert (await nobody.get(url)).status_code == 401
            assert (await admin.get(url)).text == busy
    finally:
        await service.stop()
