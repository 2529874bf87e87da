"""Settings, read from `ARI_APP_*` environment variables and an optional env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REPO_DIR = Path(__file__).resolve().parent.parent
ENV_PREFIX = "ARI_APP_"


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it and is one line."""


class Settings(BaseSettings):
    """What `ari-app run` needs: where Asterisk is, where to store, where to publish."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "ari-app"
    ari_password: SecretStr = SecretStr("")
    ari_application: str = Field("ari-app", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    ami_host: str = "127.0.0.1"
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_user: str = "ari-app"
    ami_password: SecretStr = SecretStr("")
    ami_ping_seconds: float = Field(5.0, gt=0)

    database_url: str = "sqlite:///var/ari_app.db"

    mqtt_url: str = ""
    mqtt_topic_prefix: str = "ari-app"
    center: str = Field("default", pattern=r"^[a-z0-9_-]{1,32}$")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    flows_dir: Path = REPO_DIR / "dialplan" / "flows"
    queues_file: Path = REPO_DIR / "dialplan" / "queues.yaml"
    # the dialplan ops edit (`dialplan/*.conf`), and the folder the running Asterisk reads
    # its configuration from, where `ari-app dialplan deploy` installs it (unset: no deploy)
    dialplan_dir: Path = REPO_DIR / "dialplan"
    asterisk_config_dir: Path | None = None
    recordings_dir: Path = Path("var/recordings")
    recordings_keep_days: int = Field(0, ge=0)  # 0: keep for ever
    # the sound the agent hears when a supervisor starts monitoring; empty: none
    monitor_tone: str = Field("beep", pattern=r"^[A-Za-z0-9_/-]{0,80}$")
    reconnect_max_seconds: float = Field(10.0, gt=0)
    # the files Asterisk writes CDRs and channel events to (cdr_custom, cel_custom), read
    # from a checkpoint so that no CDR is lost while the service or its AMI link is down
    cdr_backstop: Path | None = None
    cel_backstop: Path | None = None
    backstop_poll_seconds: float = Field(2.0, gt=0)
    # KPIs (ari_app/domain/kpi.py): a caller who hangs up within this many seconds of
    # entering a queue is a short abandon; a repeat call within the window undoes FCR
    short_abandon_seconds: float = Field(5.0, ge=0, le=600)
    fcr_window_hours: float = Field(24.0, gt=0, le=24 * 30)

    @field_validator("ari_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8088")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:
            # the value is not echoed: a malformed URL may still hold a password
            raise ValueError(
                "cannot parse it as a database URL "
                "(expected sqlite:///PATH or postgresql://USER@HOST:PORT/NAME)"
            ) from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        if value and (urlsplit(value).scheme != "mqtt" or not urlsplit(value).hostname):
            raise ValueError("must be empty (no broker) or an mqtt://host:port URL")
        return value


class LocalAsteriskSettings(BaseSettings):
    """The project's own Asterisk for development and tests (`ari-app asterisk ...`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX + "ASTERISK_", extra="ignore")

    home: Path = Path.home() / ".cache" / "ari-app" / "asterisk"
    instance: str = Field("dev", pattern=r"^[a-z0-9_-]{1,32}$")
    suite: str = "sid"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = (
        "asterisk",
        "asterisk-modules",
        "asterisk-core-sounds-en-gsm",
        "asterisk-moh-opsound-gsm",
    )
    sip_port: int = Field(5060, ge=1, le=65535)
    http_port: int = Field(8088, ge=1, le=65535)
    ami_port: int = Field(5038, ge=1, le=65535)
    rtp_start: int = Field(10000, ge=1024, le=65534)
    rtp_end: int = Field(10999, ge=1025, le=65535)
    carrier_address: str = "127.0.0.2"
    application: str = "ari-app"
    conf_dir: Path = REPO_DIR / "asterisk_conf"
    dialplan_dir: Path = REPO_DIR / "dialplan"
    prompts_dir: Path = REPO_DIR / "dialplan" / "prompts"  # what `prompts build` speaks


def env_name(field: str, prefix: str = ENV_PREFIX) -> str:
    """The environment variable that sets a field."""
    return prefix + field.upper()


def explain(exc: ValidationError, prefix: str = ENV_PREFIX) -> str:
    """One line per bad setting, each naming its environment variable."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{env_name(field, prefix)}: {message}")
    return "; ".join(lines)


def load(env_file: Path | None = None) -> Settings:
    """Read the service settings or raise SettingsError naming the bad one."""
    try:
        settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(explain(exc)) from exc
    for field in ("ari_password", "ami_password"):
        if not getattr(settings, field).get_secret_value():
            raise SettingsError(f"{env_name(field)}: is not set (there are no default passwords)")
    return settings


def load_local_asterisk(env_file: Path | None = None) -> LocalAsteriskSettings:
    """Read the local Asterisk settings or raise SettingsError naming the bad one."""
    prefix = ENV_PREFIX + "ASTERISK_"
    try:
        settings = LocalAsteriskSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(explain(exc, prefix)) from exc
    if settings.rtp_end <= settings.rtp_start:
        raise SettingsError(f"{prefix}RTP_END: must be above {prefix}RTP_START")
    return settings
