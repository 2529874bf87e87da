"""What a waiting caller is told now and then: their place in line and the expected wait.

The words are Asterisk's own queue prompts (the ones app_queue plays), with numbers
spoken by Asterisk (`number:` media), so every language Asterisk has sounds for works.
"""

from __future__ import annotations

import math


def announcement(position: int, expected_seconds: float | None) -> tuple[str, ...]:
    """The media to play: the place in line, then the expected wait when one is known."""
    if position <= 1:
        # "Your call is now first in line and will be answered by the next available
        # representative."
        media = ["sound:queue-youarenext"]
    else:
        # "You are currently caller number" N "waiting to speak to a representative."
        media = ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if expected_seconds is not None:
        # "The estimated hold time is currently" [less than] N minute(s)
        minutes = math.ceil(expected_seconds / 60)
        media.append("sound:queue-holdtime")
        if expected_seconds < 60:
            media += ["sound:queue-less-than", "number:1", "sound:queue-minute"]
        else:
            media += [f"number:{minutes}", "sound:queue-minutes"]
    media.append("sound:queue-thankyou")  # "Thank you for your patience."
    return tuple(media)


def expected_wait(position: int, serving: int, handle_seconds: float | None) -> float | None:
    """The expected wait of the caller at `position`: the callers ahead and this one shared
    among the agents serving the queue, each call taking the queue's average handle time
    (talk plus wrap-up), the calls in progress half done on average. None until calls of
    the queue have been handled, or while nobody serves it."""
    if handle_seconds is None or serving <= 0:
        return None
    return (math.ceil(position / serving) - 0.5) * handle_seconds
