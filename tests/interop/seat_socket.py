"""The seat socket against an independent WebSocket implementation (Python
`websockets`), with and without permessage-deflate: the same JSON either
way, fragmented and compressed messages from the client read, a message
whose inflated size passes 64 KiB closed with 1009.

Run by scripts/ws-interop.sh against a running server (SHOWGATE_URL).
"""

import asyncio
import json
import os
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

BASE = os.environ["SHOWGATE_URL"]
WS = BASE.replace("http://", "ws://", 1)


def http(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data) as res:
        return res.status, json.loads(res.read() or b"null")


def a_show():
    _, movies = http("GET", "/api/v1/movies")
    _, shows = http("GET", f"/api/v1/movies/{movies['movies'][0]['id']}/shows")
    # The last show of the week: on sale whatever the hour.
    return shows["shows"][-1]["id"]


async def next_delta(ws, seat):
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] == "delta" and any(c["seatId"] == seat for c in msg["changes"]):
            return msg


async def check(show, compression, user):
    url = f"{WS}/api/v1/shows/{show}/seats/ws"
    async with connect(url, compression=compression, max_size=None) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if compression:
            assert agreed.startswith("permessage-deflate"), agreed
            assert "server_no_context_takeover" in agreed, agreed
        else:
            assert agreed == "", agreed
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot", snapshot
        free = [s["id"] for s in snapshot["seats"] if s["status"] == "AVAILABLE"]
        _, token = http("POST", "/api/v1/dev/token", {"userId": user})
        status, hold = http("POST", "/api/v1/holds", {"showId": show, "seatIds": [free[0]]}, token["token"])
        assert status == 201, hold
        delta = await next_delta(ws, free[0])
        assert {"seatId": free[0], "status": "HELD"} in delta["changes"], delta
        # A fragmented message (compressed as a whole where agreed), then a
        # ping: the socket is still open and answering.
        await ws.send(["{", '"hello"', ": 1}"])
        await asyncio.wait_for(await ws.ping(), 5)
        # 100 KiB of one letter: ~100 bytes compressed, 100 KiB inflated.
        await ws.send("x" * (100 * 1024))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009, closed
        return len(snapshot["seats"])


async def main():
    show = a_show()
    deflated = await check(show, "deflate", "interop-deflate")
    plain = await check(show, None, "interop-plain")
    assert deflated == plain
    print(f"ws-interop: seat socket ok with and without permessage-deflate ({plain} seats)")


asyncio.run(main())
