"""Every request body of the model's routes is checked here, in the HTTP server, before LitServe
queues it for the inference worker; a client mistake is answered with a 4xx and
`{"error": "<what was wrong>"}`, and never reaches the model.

Why not in LitAPI.decode_request: that runs in the worker, inside the dynamic batch, and LitServe
answers every request of a batch with the error one of them raised. And FastAPI's own validation
would answer a malformed body before decode_request, but knows neither the task nor the limits.

The body is read here (at most `max_body_bytes` of it), checked, and handed on unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from starlette.responses import JSONResponse

from seqtasks.serving.rules import Rules
from seqtasks.serving.schema import ClientError, parse_request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CheckRequests:
    """ASGI middleware (LitServer(middlewares=[(CheckRequests, {...})])) for the POST routes in `paths`."""

    def __init__(self, app: Callable, rules: Rules, paths: Collection[str], stream_paths: Collection[str] = ()):
        self.app, self.rules = app, rules
        self.paths, self.stream_paths = set(paths), set(stream_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            body = await self.read_body(scope, receive)
            if body is None:
                return  # the client went away
            self.rules.job(parse_request(body), stream=scope["path"] in self.stream_paths)
        except ClientError as error:
            await JSONResponse({"error": error.message}, status_code=error.status)(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self.rules.limits.max_body_bytes
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"application/json").decode("latin-1").split(";")[0].strip()
        if not is_json(content_type.lower()):
            raise ClientError(415, f"send the body as JSON (Content-Type: application/json), not {content_type!r}")
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            raise ClientError(413, f"the body is {declared} bytes; this server takes at most {limit} (max_body_bytes)")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                raise ClientError(413, f"the body is over {limit} bytes, the most this server takes (max_body_bytes)")
            if not message.get("more_body", False):
                return b"".join(chunks)


def is_json(content_type: str) -> bool:
    """application/json, or a JSON type of its own (application/problem+json), as FastAPI reads them."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body read already, then whatever the client sends next (a disconnect)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
