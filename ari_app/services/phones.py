"""Phones pushed into Asterisk: agents' and supervisors' SIP endpoints.

Each phone is three PJSIP objects (auth, aor, endpoint) of one name, created
through ARI push configuration into Asterisk's own database (sorcery.conf maps
them to astdb), so a new phone registers at once with no reload and keeps
working across an Asterisk restart. Only the digest PJSIP checks is kept.
"""

from __future__ import annotations

import hashlib

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable

REALM = "ari-app"
PHONES_CONTEXT = "ari-app-agents"  # where the phones dial (feature codes)
PJSIP = "res_pjsip"


class AsteriskRefused(Exception):
    """Asterisk could not take the change; nothing was changed."""


def sip_digest(user: str, password: str) -> str:
    """What PJSIP checks a digest against (md5_cred): md5 of user:realm:password."""
    return hashlib.md5(f"{user}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


def phone_objects(
    endpoint: str, display: str, number: str, digest: str
) -> list[tuple[str, dict[str, str]]]:
    return [
        (
            "auth",
            {"auth_type": "md5", "username": endpoint, "realm": REALM, "md5_cred": digest},
        ),
        (
            "aor",
            {
                "max_contacts": "1",
                "remove_existing": "yes",
                # a phone that stops answering OPTIONS goes unavailable: no calls for it
                "qualify_frequency": "15",
            },
        ),
        (
            "endpoint",
            {
                "transport": "transport-udp",
                "context": PHONES_CONTEXT,
                "disallow": "all",
                "allow": "ulaw,alaw",
                "auth": endpoint,
                "aors": endpoint,
                "identify_by": "username",
                "direct_media": "no",
                "dtmf_mode": "rfc4733",
                "rtp_symmetric": "yes",
                "force_rport": "yes",
                "rewrite_contact": "yes",
                "callerid": f'"{display}" <{number}>',
            },
        ),
    ]


async def push_phone(ari: AriRest, endpoint: str, display: str, number: str, digest: str) -> None:
    """Create or replace the phone; raises AsteriskRefused."""
    try:
        for object_type, fields in phone_objects(endpoint, display, number, digest):
            await ari.put_config(PJSIP, object_type, endpoint, fields)
    except (AriError, AriUnreachable) as exc:
        raise AsteriskRefused(str(exc)) from exc


async def remove_phone(ari: AriRest, endpoint: str) -> None:
    try:
        for object_type in ("endpoint", "aor", "auth"):
            await ari.delete_config(PJSIP, object_type, endpoint)
    except (AriError, AriUnreachable) as exc:
        raise AsteriskRefused(str(exc)) from exc
