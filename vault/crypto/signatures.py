"""Help Scout's signatures now live with the rest of Help Scout, in vault.helpdesks.helpscout.

This name stays for the `vault helpscout replay` command, which signs with `helpscout_sign`,
until it imports from there. It is no crypto module any more: tests/test_layers.py places it
beside the helpdesks, and vault.crypto's own modules never import it.
"""

from __future__ import annotations

from vault.helpdesks.helpscout import (
    SIGNATURE,
    BadSignature,
    helpscout_body_signed,
    helpscout_query_context,
    helpscout_sign,
    helpscout_sign_query,
)

__all__ = ["SIGNATURE", "BadSignature", "helpscout_body_signed", "helpscout_query_context",
           "helpscout_sign", "helpscout_sign_query"]
