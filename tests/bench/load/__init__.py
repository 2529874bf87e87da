"""The load benchmark: the same call through Asterisk's dialplan and app_queue (A) and
through ari_app (B), side by side on one Asterisk, driven by SIPp over loopback.

    python -m tests.bench.load            # `make bench` runs it; about 15 minutes
    python -m tests.bench.load --smoke    # a few calls at 1 call/s: the table and the JSON
"""
