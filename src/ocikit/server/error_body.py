"""ocikit errors as the Distribution spec's error responses: ``{"errors": [{code, message, detail}]}``."""

from __future__ import annotations

import json

from aiohttp import web

from ..core.errors import ERROR_CODES, OcikitError

SPEC_CODES = frozenset(ERROR_CODES)


def error_body(*errors: OcikitError) -> bytes:
    items = []
    for e in errors:
        item = e.to_registry_error()
        if item["code"] not in SPEC_CODES:
            item["code"] = "UNSUPPORTED" if 400 <= e.status < 500 else "UNKNOWN"
        items.append(item)
    return json.dumps({"errors": items}).encode()


def error_response(exc: OcikitError) -> web.Response:
    """The HTTP answer for an error: its status, a JSON body, and the headers it implies."""
    headers = {"Content-Type": "application/json"}
    challenge = getattr(exc, "challenge", None)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    if exc.status == 416 and "offset" in detail:
        headers["Range"] = f"0-{max(int(detail['offset']) - 1, 0)}"
    for k, v in (getattr(exc, "headers", None) or {}).items():
        headers[k] = v
    return web.Response(status=exc.status, body=error_body(exc), headers=headers)


def simple_error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        body=json.dumps({"errors": [{"code": code, "message": message}]}).encode())
