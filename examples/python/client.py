#!/usr/bin/env python3
"""A Python client for Switchboard using only the JSON protocol over WebSocket.

It mints an HS256 connection token (as an app backend would), connects,
subscribes to a channel, publishes through the HTTP server API, waits for that
publication to arrive over the WebSocket, then reads the channel's history.

Needs Debian's python3-websockets (no PyPI here): run it with /usr/bin/python3.

    /usr/bin/python3 examples/python/client.py \
        --url http://127.0.0.1:8000 --secret SECRET --api-key KEY --channel news

Exits 0 when the publication came back, 1 otherwise; prints one JSON line per step.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request

import websockets


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint_token(secret: str, user: str, ttl: int = 600) -> str:
    """An HS256 JWT with sub and exp: what the app backend hands its clients."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": user, "exp": int(time.time()) + ttl}).encode())
    signing_input = f"{header}.{claims}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(sig)}"


def api(base: str, key: str, method: str, params: dict) -> dict:
    """POST /api/<method> with the API key; returns the JSON body (error bodies too)."""
    req = urllib.request.Request(
        f"{base}/api/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}")


def step(name: str, **fields) -> None:
    print(json.dumps({"step": name, **fields}), flush=True)


class Client:
    """Commands with ids and replies matched by id; pushes queued; pings answered."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.pushes: asyncio.Queue = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            # The JSON protocol batches replies as newline-delimited JSON.
            for line in frame.splitlines():
                if not line.strip():
                    continue
                msg = json.loads(line)
                if msg == {}:
                    await self.ws.send("{}")  # server ping → client pong
                elif "id" in msg and msg["id"] in self.pending:
                    self.pending.pop(msg["id"]).set_result(msg)
                elif "push" in msg:
                    await self.pushes.put(msg["push"])

    async def call(self, method: str, params: dict) -> dict:
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, method: params}))
        reply = await asyncio.wait_for(fut, 10)
        if "error" in reply:
            raise RuntimeError(f"{method}: error {reply['error']}")
        return reply.get(method, {})


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the server's HTTP base URL")
    p.add_argument("--secret", required=True, help="client.token.hmac_secret_key")
    p.add_argument("--api-key", required=True, help="http_api.key")
    p.add_argument("--channel", default="news")
    p.add_argument("--user", default="python-demo")
    a = p.parse_args()

    ws_url = a.url.replace("http", "ws", 1) + "/connection/websocket"
    async with websockets.connect(ws_url, subprotocols=None) as ws:
        c = Client(ws)
        connected = await c.call("connect", {"token": mint_token(a.secret, a.user), "name": "python"})
        step("connected", client=connected["client"], version=connected.get("version"))

        await c.call("subscribe", {"channel": a.channel})
        step("subscribed", channel=a.channel)

        event = {"type": "greeting", "text": "hello from Python", "at": time.time()}
        published = api(a.url, a.api_key, "publish", {"channel": a.channel, "data": event})
        if "error" in published:
            step("publish failed", error=published["error"])
            return 1
        step("published", result=published["result"])

        push = await asyncio.wait_for(c.pushes.get(), 10)
        got = push.get("pub", {}).get("data")
        step("received", channel=push.get("channel"), data=got)

        history = api(a.url, a.api_key, "history", {"channel": a.channel, "limit": 10})
        step("history", publications=len(history.get("result", {}).get("publications", [])))

        bad = api(a.url, a.api_key, "publish", {"channel": a.channel})
        step("bad input answered", error=bad.get("error"))
        c.reader.cancel()
        return 0 if got == event else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
