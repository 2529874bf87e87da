"""Helpers for tests against the real local Asterisk: SIPp callers, an RTP ear, an ARI observer,
and the service run as its own process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[2]
CALLER_SCENARIO = REPO / "tests" / "sipp" / "caller.xml"
HANGS_UP_SCENARIO = REPO / "tests" / "sipp" / "caller_hangs_up.xml"
CARRIER_SCENARIO = REPO / "tests" / "sipp" / "carrier_answers.xml"
REGISTER_SCENARIO = REPO / "tests" / "sipp" / "register.xml"
STRANGER_SCENARIO = REPO / "tests" / "sipp" / "stranger.xml"
PHONE_DIALS_SCENARIO = REPO / "tests" / "sipp" / "phone_dials.xml"
SUPERVISOR_SCENARIO = REPO / "tests" / "sipp" / "supervisor_dials.xml"
CARRIER_ADDRESS = "127.0.0.2"


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


# -- what the caller hears ----------------------------------------------------------


def ulaw_to_linear(byte: int) -> int:
    """G.711 mu-law to a 16-bit sample (ITU-T G.711)."""
    byte = ~byte & 0xFF
    magnitude = (((byte & 0x0F) << 3) + 0x84) << ((byte >> 4) & 0x07)
    return -(magnitude - 0x84) if byte & 0x80 else magnitude - 0x84


def alaw_to_linear(byte: int) -> int:
    """G.711 A-law to a 16-bit sample (ITU-T G.711)."""
    byte ^= 0x55
    value = (byte & 0x0F) << 4
    segment = (byte & 0x70) >> 4
    value += 8 if segment == 0 else 0x108
    if segment > 1:
        value <<= segment - 1
    return value if byte & 0x80 else -value


def is_tone(samples: list[int], hz: float, rate: int = 8000, floor: float = 300.0) -> bool:
    """Whether these samples are loud and mostly one tone of `hz` (Goertzel)."""
    count = len(samples)
    energy = sum(s * s for s in samples)
    if count == 0 or math.sqrt(energy / count) < floor:
        return False
    coefficient = 2 * math.cos(2 * math.pi * hz / rate)
    before = earlier = 0.0
    for sample in samples:
        before, earlier = sample + coefficient * before - earlier, before
    power = before * before + earlier * earlier - coefficient * before * earlier
    # a pure tone puts count/2 times the frame's energy into its bin
    return power / (energy * count / 2) > 0.5


def _wav_frames(path: Path) -> tuple[int, list[list[int]]]:
    """A 16-bit mono WAV file's rate and its 20 ms frames."""
    with wave.open(str(path), "rb") as audio:
        rate = audio.getframerate()
        data = audio.readframes(audio.getnframes())
    samples = list(struct.unpack(f"<{len(data) // 2}h", data))
    step = rate // 50
    return rate, [samples[i : i + step] for i in range(0, len(samples) - step + 1, step)]


def wav_tone_seconds(path: Path, hz: float) -> float:
    """Seconds of a 16-bit mono WAV file that are mostly a tone of `hz`."""
    rate, frames = _wav_frames(path)
    return sum(is_tone(frame, hz, rate) for frame in frames) * 0.020


def wav_loud_seconds(path: Path, floor: float = 300.0) -> float:
    """Seconds of a 16-bit mono WAV file that are not silence."""
    _, frames = _wav_frames(path)
    return sum(math.sqrt(sum(s * s for s in f) / len(f)) > floor for f in frames) * 0.020


def linear_to_ulaw(sample: int) -> int:
    """A 16-bit sample to G.711 mu-law (ITU-T G.711)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


class RtpEar(asyncio.DatagramProtocol):
    """Receives the RTP Asterisk sends to a caller and measures how loud it was."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)

    def audio_seconds(self, threshold: float = 300.0) -> float:
        """Seconds of non-silent PCMU audio received (20 ms packets above an RMS threshold)."""
        loud = 0
        for packet in self.packets:
            if len(packet) <= 12 or packet[1] & 0x7F != 0:  # not PCMU
                continue
            samples = [ulaw_to_linear(b) for b in packet[12:]]
            rms = math.sqrt(sum(s * s for s in samples) / len(samples))
            loud += rms > threshold
        return loud * 0.020

    def tone_seconds(self, hz: float) -> float:
        """Seconds of received G.711 audio (PCMU or PCMA: Asterisk sends what the caller
        sends) that are mostly a tone of `hz`."""
        decode = {0: ulaw_to_linear, 8: alaw_to_linear}
        frames = [
            [decode[packet[1] & 0x7F](b) for b in packet[12:]]
            for packet in self.packets
            if len(packet) > 12 and packet[1] & 0x7F in decode
        ]
        return sum(is_tone(frame, hz) for frame in frames) * 0.020


@contextlib.asynccontextmanager
async def rtp_ear() -> AsyncIterator[tuple[RtpEar, int]]:
    port = free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)
    loop = asyncio.get_running_loop()
    transport, ear = await loop.create_datagram_endpoint(RtpEar, local_addr=(CARRIER_ADDRESS, port))
    try:
        yield ear, port
    finally:
        transport.close()


@dataclass
class CallResult:
    returncode: int
    output: str
    ear: RtpEar
    seconds: float


def _collect_traces(folder: Path) -> str:
    """What SIPp wrote to its error trace, and no files left behind."""
    text = "".join(path.read_text(errors="replace") for path in folder.glob("*.log"))
    shutil.rmtree(folder, ignore_errors=True)
    return text


SPEECH_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
KEY_EVENTS = {**{str(digit): digit for digit in range(10)}, "*": 10, "#": 11}


def key_pcap(path: Path, key: str, press: int) -> Path:
    """One RFC 2833 key press as a pcap for SIPp's play_pcap_audio.

    It follows the shape of the pcaps in /usr/share/sip-tester (seven 20 ms updates, then three
    end packets; 280 ms in all), but each press gets its own RTP timestamp and sequence numbers:
    the shipped pcaps all carry one timestamp, so Asterisk takes a second press of the same key
    for a copy of the first and drops it.
    """
    timestamp, sequence = 8000 + press * 16000, 1000 + press * 16
    records = []
    for index in range(10):
        end = index >= 7
        duration = min(index, 7) * 320
        marker = 0x80 if index == 0 else 0
        rtp = struct.pack("!BBHII", 0x80, marker | 101, sequence + index, timestamp, 0x0E05384E)
        rtp += struct.pack("!BBH", KEY_EVENTS[key], (0x80 if end else 0) | 10, duration)
        udp = struct.pack("!HHHH", 49176, 10000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            index,
            0,
            64,
            17,
            0,
            bytes([192, 168, 0, 3]),
            bytes([192, 168, 0, 1]),
        )
        frame = bytes(6) + bytes(6) + b"\x08\x00" + ip + udp
        seconds, micros = divmod(min(index, 7) * 20_000, 1_000_000)
        records.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    return path


def tone_pcap(path: Path, hz: float, seconds: float, part: int) -> Path:
    """A PCMU tone as a pcap for SIPp's play_pcap_audio (20 ms packets). Each `part` has its
    own RTP sequence numbers and timestamps, so plays one after another read as one stream."""
    count = int(seconds * 50)
    sequence, timestamp = 20000 + part * 2000, 1_000_000 + part * 400_000
    records = []
    for index in range(count):
        payload = bytes(
            linear_to_ulaw(int(9000 * math.sin(2 * math.pi * hz * (index * 160 + n) / 8000)))
            for n in range(160)
        )
        rtp = struct.pack("!BBHII", 0x80, 0, sequence + index, timestamp + index * 160, 0x0E05384E)
        udp = struct.pack("!HHHH", 49176, 10000, 8 + len(rtp) + len(payload), 0) + rtp + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index & 0xFFFF, 0, 64, 17, 0,
                         bytes([192, 168, 0, 3]), bytes([192, 168, 0, 1]))  # fmt: skip
        frame = bytes(12) + b"\x08\x00" + ip + udp
        at, micros = divmod(index * 20_000, 1_000_000)
        records.append(struct.pack("<IIII", at, micros, len(frame), len(frame)) + frame)
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(records))
    return path


def keyed_scenario(
    folder: Path, keys: list[tuple[float, str]], template: Path, hang_up_after: float | None
) -> Path:
    """A caller scenario with key presses: (seconds to wait first, key) each; the key
    "speech" plays seven seconds of speech (for a voicemail) instead.

    SIPp reads a pause's length when it loads the scenario, so the caller's hang-up delay is
    written into the file here rather than passed as a -key.
    """
    steps = []
    for press, (wait, key) in enumerate(keys):
        if key == "speech":  # seven seconds of G.711 speech instead of a key
            pcap = SPEECH_PCAP
        else:
            pcap = key_pcap(folder / f"key-{press}.pcap", key, press)
        steps.append(
            f'<pause milliseconds="{int(wait * 1000)}"/>'
            f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'
        )
    text = template.read_text().replace(
        "<!-- keys: tests put RFC 2833 key presses here (pauses and pcap plays) -->",
        "\n".join(steps),
    )
    if hang_up_after is not None:
        text = text.replace("[hangup_ms]", str(int(hang_up_after * 1000)))
    path = folder / "caller_keys.xml"
    path.write_text(text)
    return path


async def place_call(
    sip_port: int,
    *,
    number: str = "100",
    caller: str = "5551234",
    keys: list[tuple[float, str]] | None = None,
    hang_up_after: float | None = None,
    timeout: float = 60.0,
) -> CallResult:
    """One call from the carrier trunk (SIPp on 127.0.0.2) that waits for the far end's BYE,
    or hangs up itself `hang_up_after` seconds after its last key.

    `keys` are pressed as RFC 2833 events, each after waiting its seconds.
    """
    template = CALLER_SCENARIO if hang_up_after is None else HANGS_UP_SCENARIO
    for _ in range(3):
        result = await _one_call(
            sip_port, template, number, caller, keys or [], hang_up_after, timeout
        )
        # a port free when chosen can be taken before SIPp binds it (it binds the
        # media port's neighbours too): SIPp gives up at once, before any INVITE
        if not (result.returncode != 0 and result.seconds < 5 and _unbound(result.output)):
            break
    return result


def _unbound(output: str) -> bool:
    return "bind" in output.lower()


async def _one_call(
    sip_port: int,
    template: Path,
    number: str,
    caller: str,
    keys: list[tuple[float, str]],
    hang_up_after: float | None,
    timeout: float,
) -> CallResult:
    async with rtp_ear() as (ear, rtp_port):
        traces = tempfile.mkdtemp(prefix="ari-app-sipp-")
        scenario = keyed_scenario(Path(traces), keys, template, hang_up_after)
        media = ["-mp", str(free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS))]
        local_port = free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)
        started = asyncio.get_running_loop().time()
        process = await asyncio.create_subprocess_exec(
            "sipp",
            f"127.0.0.1:{sip_port}",
            "-sf",
            str(scenario),
            *media,
            "-i",
            CARRIER_ADDRESS,
            "-p",
            str(local_port),
            "-s",
            number,
            "-key",
            "caller",
            caller,
            "-key",
            "rtp_port",
            str(rtp_port),
            "-m",
            "1",
            "-recv_timeout",
            "120s",
            "-nostdin",
            "-trace_err",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=traces,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            out, _ = await process.communicate()
        seconds = asyncio.get_running_loop().time() - started
        output = out.decode(errors="replace") + _collect_traces(Path(traces))
        return CallResult(process.returncode or 0, output, ear, seconds)


@contextlib.asynccontextmanager
async def carrier_far_end(answer_for: float = 1.0) -> AsyncIterator[Path]:
    """The carrier trunk's far end (SIPp on the carrier address, port 5060) for a transfer:
    it answers one call, stays answer_for seconds and hangs up. Yields the folder where its
    message trace (`*_messages.log`) ends up."""
    folder = Path(tempfile.mkdtemp(prefix="ari-app-carrier-"))
    scenario = folder / "carrier.xml"
    scenario.write_text(
        CARRIER_SCENARIO.read_text().replace("[answer_ms]", str(int(answer_for * 1000)))
    )
    process = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(scenario),
        "-i",
        CARRIER_ADDRESS,
        "-p",
        "5060",
        "-mp",
        str(free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)),
        "-m",
        "1",
        "-nostdin",
        "-trace_msg",
        "-trace_err",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=folder,
    )
    try:
        yield folder
    finally:
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()


def carrier_messages(folder: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in folder.glob("*_messages.log"))


async def run_sipp(
    scenario: Path, sip_port: int, *args: str, timeout: float = 20.0
) -> tuple[int, str]:
    """One SIPp run from 127.0.0.1 (a phone, not the carrier): exit status and its traces."""
    folder = Path(tempfile.mkdtemp(prefix="ari-app-phone-"))
    process = await asyncio.create_subprocess_exec(
        "sipp",
        f"127.0.0.1:{sip_port}",
        "-sf",
        str(scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port(socket.SOCK_DGRAM)),
        "-m",
        "1",
        "-recv_timeout",
        "10s",
        "-nostdin",
        "-trace_msg",
        "-trace_err",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=folder,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace") + _collect_traces(folder)


async def register_phone(
    sip_port: int, user: str, password: str, *, expires: int = 120
) -> tuple[int, str]:
    """An agent's phone registers (REGISTER, 401, REGISTER with the digest, 200)."""
    return await run_sipp(
        REGISTER_SCENARIO,
        sip_port,
        "-au",
        user,
        "-ap",
        password,
        "-key",
        "user",
        user,
        "-key",
        "contact_port",
        str(free_port(socket.SOCK_DGRAM)),
        "-key",
        "expires",
        str(expires),
    )


async def phone_dials(sip_port: int, user: str, password: str, number: str) -> tuple[int, str]:
    """An agent's phone dials a number (a feature code) and stays until Asterisk hangs up."""
    return await run_sipp(
        PHONE_DIALS_SCENARIO, sip_port, "-au", user, "-ap", password, "-key", "user", user,
        "-s", number,
    )  # fmt: skip


async def supervisor_dials(
    sip_port: int,
    user: str,
    password: str,
    number: str,
    steps: list[tuple[str, Any]],
    *,
    hz: float = 1400.0,
) -> tuple[int, str]:
    """A supervisor's phone (SIPp) dials a feature code, then goes through `steps`: ("tone",
    seconds) sends a tone of `hz` for that long, ("key", digit) presses a key (RFC 2833);
    then it hangs up."""
    folder = Path(tempfile.mkdtemp(prefix="ari-app-supervisor-"))
    lines = []
    for index, (kind, value) in enumerate(steps):
        if kind == "tone":
            pcap = tone_pcap(folder / f"tone-{index}.pcap", hz, value, index)
            wait = int(value * 1000)
        else:
            pcap = key_pcap(folder / f"key-{index}.pcap", value, index)
            wait = 300
        lines.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        lines.append(f'<pause milliseconds="{wait}"/>')
    scenario = folder / "supervisor.xml"
    scenario.write_text(SUPERVISOR_SCENARIO.read_text().replace(
        "<!-- steps: tests put tone plays, key presses and pauses here -->", "\n".join(lines)
    ))  # fmt: skip
    total = sum(value if kind == "tone" else 0.3 for kind, value in steps)
    try:
        return await run_sipp(
            scenario, sip_port, "-au", user, "-ap", password, "-key", "user", user,
            "-s", number, "-mp", str(free_port(socket.SOCK_DGRAM)), timeout=total + 20,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class AgentPhone:
    """A baresip softphone registered as an agent's phone; `lines` is what it logged, and
    `heard` the file of what it heard (its last call, complete once that call is over)."""

    user: str
    folder: Path
    control_port: int = 0
    lines: list[str] = field(default_factory=list)
    registered: bool = False

    async def command(self, name: str, params: str = "") -> dict[str, Any]:
        """A command to the phone through baresip's ctrl_tcp (netstring-framed JSON), as
        a key pressed on it would: `hold`, `resume` during a call."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        try:
            body = json.dumps({"command": name, "params": params, "token": name}).encode()
            writer.write(str(len(body)).encode() + b":" + body + b",")
            await writer.drain()
            async with asyncio.timeout(5):
                size = int((await reader.readuntil(b":"))[:-1])
                reply = json.loads(await reader.readexactly(size))
        finally:
            writer.close()
            await writer.wait_closed()
        if not reply.get("ok"):
            raise AssertionError(f"{self.user}: {name} refused: {reply}")
        return dict(reply)

    @property
    def heard(self) -> Path:
        """What the phone received in its last call, decoded (baresip's sndfile dump)."""
        dumps = sorted(self.folder.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        if not dumps:
            raise AssertionError(f"{self.user} recorded no call: {list(self.folder.iterdir())}")
        return dumps[-1]

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines)


async def _baresip(folder: Path, user: str) -> tuple[AgentPhone, asyncio.subprocess.Process, Any]:
    """Start baresip on a fresh SIP port; return once it registered or stopped."""
    control = free_port()
    (folder / "config").write_text(
        f"sip_listen 127.0.0.1:{free_port(socket.SOCK_DGRAM)}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule account.so\nmodule menu.so\n"
        f"module ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{control}\n"
        f"module sndfile.so\nsnd_path {folder}\n"
        f"audio_source aufile,{folder}/speech.wav\n"
        f"audio_player aufile,{folder}/heard.wav\n"
        f"audio_alert aufile,{folder}/alert.wav\n"
        "ausrc_srate 8000\nauplay_srate 8000\n"
    )
    process = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(folder),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    phone = AgentPhone(user, folder, control)

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            phone.lines.append(raw.decode(errors="replace").strip())

    reader = asyncio.create_task(read())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            while not phone.said("200 OK") and process.returncode is None:
                await asyncio.sleep(0.05)
    phone.registered = phone.said("200 OK")
    if not phone.registered and process.returncode is None:
        process.kill()
        await process.wait()
    return phone, process, reader


@contextlib.asynccontextmanager
async def agent_phone(
    sip_port: int, user: str, password: str, *, answers: bool = True, tone: int | None = None
) -> AsyncIterator[AgentPhone]:
    """baresip registered as `user`; it answers every call (and sends speech, or a minute
    of a `tone` of so many Hz) or only rings."""
    from ari_app.adapters.speech import speak

    folder = Path(tempfile.mkdtemp(prefix="ari-app-baresip-"))
    # baresip ends the call when its audio file ends: the greeting, then a minute of silence
    if tone is not None:
        synth = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(folder / "speech.wav"),
                 "synth", "60", "sine", str(tone), "vol", "0.3"]  # fmt: skip
        await asyncio.to_thread(subprocess.run, synth, check=True)
    else:
        greeting = "Hello, this is your agent. How can I help you today?"
        await asyncio.to_thread(speak, greeting, "en-us", folder / "words.wav")
        pad = ["sox", str(folder / "words.wav"), str(folder / "speech.wav"), "pad", "0", "60"]
        await asyncio.to_thread(subprocess.run, pad, check=True)
    mode = "auto" if answers else "manual"
    (folder / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{sip_port};transport=udp>;auth_pass={password};"
        f"answermode={mode};regint=60\n"
    )
    # baresip binds its SIP port for UDP, TCP and TLS: a port free for one may be taken for
    # another by then, which it reports before giving up; such a start is tried again
    for _ in range(5):
        phone, process, reader = await _baresip(folder, user)
        if phone.registered or not phone.said("Address already in use"):
            break
        await reader
    try:
        if not phone.registered:
            raise AssertionError("baresip did not register:\n" + "\n".join(phone.lines))
        yield phone
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader
        shutil.rmtree(folder, ignore_errors=True)


# -- what Asterisk reports ----------------------------------------------------------


@dataclass
class Observer:
    """An ARI application subscribed to everything, to see what Asterisk did."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]

    async def wait_for(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.of_type(kind):
                    if all(_dig(event, key) == value for key, value in match.items()):
                        return event
                await asyncio.sleep(0.05)


def _dig(event: dict[str, Any], dotted: str) -> Any:
    value: Any = event
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@contextlib.asynccontextmanager
async def ari_observer(env: dict[str, str]) -> AsyncIterator[Observer]:
    token = base64.b64encode(
        f"{env['ARI_APP_ARI_USER']}:{env['ARI_APP_ARI_PASSWORD']}".encode()
    ).decode()
    url = env["ARI_APP_ARI_URL"].replace("http://", "ws://") + "/ari/events?app=test-observer"
    observer = Observer()
    async with connect(url, additional_headers={"Authorization": f"Basic {token}"}) as socket_:
        # every channel and bridge, but no device state: an application subscribed to all
        # device states can deadlock Asterisk 22's ARI when it goes away while device
        # states change (asterisk/asterisk#2170), which is what phones do as a test ends
        async with httpx.AsyncClient(
            auth=(env["ARI_APP_ARI_USER"], env["ARI_APP_ARI_PASSWORD"])
        ) as http:
            reply = await http.post(
                env["ARI_APP_ARI_URL"] + "/ari/applications/test-observer/subscription",
                params={"eventSource": "channel:,bridge:"},
            )
            reply.raise_for_status()

        async def read() -> None:
            async for message in socket_:
                observer.events.append(json.loads(message))

        reader = asyncio.create_task(read())
        try:
            yield observer
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


# -- a cable between the service and Asterisk that a test can cut ---------------------


class TcpProxy:
    """Forwards a loopback port to Asterisk; `cut()` drops every connection at once and
    `freeze()` keeps them open while nothing passes (a half-dead link)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.frozen = asyncio.Event()
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                while self.frozen.is_set():
                    await asyncio.sleep(0.05)
                sink.write(data)
                await sink.drain()
        sink.close()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()


# -- an HTTP backend in the test's own loop --------------------------------------------


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Serve an ASGI app (a self-service backend) on 127.0.0.1:port for the block."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


# -- the service as its own process ---------------------------------------------------

TOKEN_LINE = re.compile(r"first admin token \(shown once, keep it\): (\S+)")


@dataclass
class Service:
    process: asyncio.subprocess.Process
    api: str
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    token: str | None = None
    _reader: asyncio.Task[None] | None = None

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.AsyncClient(base_url=self.api, headers=headers, timeout=5.0)

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.api, timeout=2.0) as client:
            reply = await client.get("/healthz")
        return reply.status_code, reply.json()

    async def wait_healthy(self, timeout: float = 45.0) -> dict[str, Any]:
        body: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.process.returncode is not None:
                        raise AssertionError("service exited:\n" + "\n".join(self.lines[-20:]))
                    with contextlib.suppress(httpx.HTTPError):
                        code, body = await self.healthz()
                        if code == 200:
                            return body
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(
                f"service not healthy in {timeout:g} s: {body}\n" + "\n".join(self.lines[-30:])
            ) from None

    async def call(self, call_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The call row once it is finished (ended_at set)."""
        reply = None
        try:
            async with self.client() as client, asyncio.timeout(timeout):
                while True:
                    reply = await client.get(f"/api/v1/calls/{call_id}")
                    if reply.status_code == 200 and reply.json()["ended_at"]:
                        return dict(reply.json())
                    await asyncio.sleep(0.1)
        except TimeoutError:
            seen = reply.text if reply is not None else "no answer"
            raise AssertionError(
                f"call {call_id} not finished: {seen}\n" + "\n".join(self.lines[-30:])
            ) from None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                stacks = await _stacks(self.process.pid)
                self.process.kill()  # not left running into the next tests
                await self.process.wait()
                raise AssertionError(
                    f"the service did not stop within {timeout:g} s of signal {sig}:\n"
                    + "\n".join(self.lines[-30:])
                    + f"\nwhere its threads were:\n{stacks}"
                ) from None
        if self._reader is not None:
            await self._reader
        return self.process.returncode or 0


async def _stacks(pid: int) -> str:
    """Every thread's Python stack of a process (py-spy, from the dev extras)."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return "(py-spy is not installed)"
    process = await asyncio.create_subprocess_exec(
        str(spy), "dump", "--pid", str(pid),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        printed, _ = await asyncio.wait_for(process.communicate(), 20)
    except TimeoutError:
        process.kill()
        return "(py-spy did not answer)"
    return printed.decode(errors="replace")


# every service started in this test session, for the log of a failed test
STARTED: list[Service] = []


async def start_service(env: dict[str, str], *, wait: bool = True) -> Service:
    api_port = int(env.setdefault("ARI_APP_API_PORT", str(free_port())))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ari_app",
        "run",
        env={**os.environ, "ARI_APP_LOG_FORMAT": "json", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
    )
    service = Service(process, f"http://127.0.0.1:{api_port}", env)
    STARTED.append(service)

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            service.lines.append(line)
            found = TOKEN_LINE.search(line)
            if found:
                service.token = found.group(1)

    service._reader = asyncio.create_task(read())
    if wait:
        try:
            await service.wait_healthy()
        except AssertionError:
            # a service that did not come up is not left running (it would hold its
            # connections to Asterisk through every later test)
            await service.stop(signal.SIGKILL)
            raise
    return service


@contextlib.asynccontextmanager
async def center_service(
    env: dict[str, str], folder: Path, flows: dict[str, str], queues: str, **more: str
) -> AsyncIterator[Service]:
    """A running service with its own flows and queues (written under `folder`)."""
    (folder / "flows").mkdir()
    for name, text in flows.items():
        (folder / "flows" / name).write_text(text)
    (folder / "queues.yaml").write_text(queues)
    running = await start_service(
        {
            **env,
            "ARI_APP_FLOWS_DIR": str(folder / "flows"),
            "ARI_APP_QUEUES_FILE": str(folder / "queues.yaml"),
            "ARI_APP_RECORDINGS_DIR": str(folder / "recordings"),
            **more,
        }
    )
    try:
        yield running
    finally:
        await running.stop()


async def run_to_exit(env: dict[str, str], timeout: float = 30.0) -> tuple[int, list[str]]:
    """Run `ari-app run` expecting it to stop by itself; its exit code and output lines."""
    service = await start_service(env, wait=False)
    await asyncio.wait_for(service.process.wait(), timeout)
    assert service._reader is not None
    await service._reader
    return service.process.returncode or 0, service.lines


def main() -> None:
    """`make call`: one call to a service number, and what the caller heard."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--number", default="100")
    parser.add_argument("--caller", default="5551234", help="the calling number")
    parser.add_argument(
        "--keys",
        default="",
        help="keys to press, each 1.2 s after the one before; a comma waits 3 s more "
        '(e.g. "1,,123456#" for billing, then an account)',
    )
    args = parser.parse_args()
    keys, wait = [], 3.0
    for char in args.keys:
        if char == ",":
            wait += 3.0
        elif char in KEY_EVENTS:
            keys.append((wait, char))
            wait = 1.2
        else:
            parser.error(f"--keys: {char!r} is not a key (0-9, *, #) or a comma")
    result = asyncio.run(
        place_call(args.sip_port, number=args.number, caller=args.caller, keys=keys, timeout=150)
    )
    heard = result.ear.audio_seconds()
    outcome = "completed" if result.returncode == 0 else f"FAILED (sipp exit {result.returncode})"
    if "unexpected BYE" in result.output:
        outcome = "ended by the service before every key was pressed"
    print(
        f"call to {args.number}: {outcome} in {result.seconds:.1f} s; heard {heard:.1f} s of audio"
    )
    if result.returncode != 0:
        print(result.output)
    raise SystemExit(0 if result.returncode == 0 and heard > 0 else 1)


if __name__ == "__main__":
    main()


async def wait_for_agent(client: Any, agent_id: str, **fields: Any) -> dict[str, Any]:
    """The agent through the API, once every field has the value given (20 s at most)."""
    agent: dict[str, Any] = {}
    try:
        async with asyncio.timeout(20):
            while True:
                agent = (await client.get(f"/api/v1/agents/{agent_id}")).json()
                if all(agent.get(key) == value for key, value in fields.items()):
                    return agent
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{agent_id} never had {fields}: {agent}") from None
