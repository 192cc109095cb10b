"""A minimal fake provider for the latency bench: one canned OpenAI chat completion, answered at once.

Runs in a process of its own (``python -m bench.fake_upstream``; it prints its URL, then serves until its stdin
closes), on a bare asyncio HTTP/1.1 keep-alive server: it does nothing per request but read the body and write
the same bytes back, so the time it takes is the network stack's, well under a millisecond.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Three bullet points.", "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(ANSWER)).encode()
    + b"\r\n\r\n"
    + ANSWER
)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _main() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def watch_parent() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_parent, daemon=True).start()
    async with server:
        await done.wait()


if __name__ == "__main__":
    asyncio.run(_main())
