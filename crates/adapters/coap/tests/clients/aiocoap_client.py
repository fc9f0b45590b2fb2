#!/usr/bin/env python3
"""A small aiocoap client for Ingot's CoAP integration tests.

Each command prints one JSON document on stdout, which the Rust test parses:

  request METHOD URI [--payload TEXT | --payload-file FILE] [--content-format N]
          [--accept N] [--non]
      One request (aiocoap does Block1 and Block2 transfers by itself).
      -> {"code": "2.01", "mtype": "ACK", "payload": "...", "payload_len": N,
          "block1": bool, "block2": bool}

  observe URI --post-uri URI --count N [--non]
      Registers an observation, then POSTs N events {"value": 20 + i} to --post-uri and
      collects the notifications they cause.
      -> {"code": "2.05", "observe": true, "first": "...", "notifications": ["...", ...]}
"""

import argparse
import asyncio
import json
import sys

from aiocoap import CON, NON, Code, Context, Message
from aiocoap.numbers.contentformat import ContentFormat


def describe(response):
    return {
        "code": response.code.dotted,
        "mtype": response.mtype.name if response.mtype is not None else None,
        "payload": response.payload.decode("utf-8", "replace"),
        "payload_len": len(response.payload),
        "block1": response.opt.block1 is not None,
        "block2": response.opt.block2 is not None,
        "max_age": response.opt.max_age,
        "size1": response.opt.size1,
        "observe": response.opt.observe,
    }


async def request(args):
    ctx = await Context.create_client_context()
    try:
        if args.payload_file:
            with open(args.payload_file, "rb") as f:
                payload = f.read()
        else:
            payload = (args.payload or "").encode()
        message = Message(
            code=getattr(Code, args.method.upper()),
            uri=args.uri,
            payload=payload,
            mtype=NON if args.non else CON,
        )
        if args.content_format is not None:
            message.opt.content_format = ContentFormat(args.content_format)
        if args.accept is not None:
            message.opt.accept = ContentFormat(args.accept)
        response = await ctx.request(message).response
        return describe(response)
    finally:
        await ctx.shutdown()


async def observe(args):
    ctx = await Context.create_client_context()
    try:
        registration = ctx.request(
            Message(code=Code.GET, uri=args.uri, observe=0, mtype=NON if args.non else CON)
        )
        first = await registration.response
        result = describe(first)
        result["first"] = result.pop("payload")
        result["observe"] = first.opt.observe is not None
        notifications = []
        observation = registration.observation.__aiter__()
        for i in range(args.count):
            post = Message(
                code=Code.POST,
                uri=args.post_uri,
                payload=json.dumps({"kind": "temperature", "value": 20 + i}).encode(),
            )
            post.opt.content_format = ContentFormat(50)
            created = await ctx.request(post).response
            if created.code.dotted != "2.01":
                result["post_error"] = describe(created)
                break
            note = await observation.__anext__()
            notifications.append(note.payload.decode("utf-8", "replace"))
        registration.observation.cancel()
        result["notifications"] = notifications
        return result
    finally:
        await ctx.shutdown()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("request")
    r.add_argument("method")
    r.add_argument("uri")
    r.add_argument("--payload")
    r.add_argument("--payload-file")
    r.add_argument("--content-format", type=int)
    r.add_argument("--accept", type=int)
    r.add_argument("--non", action="store_true")
    o = sub.add_parser("observe")
    o.add_argument("uri")
    o.add_argument("--post-uri", required=True)
    o.add_argument("--count", type=int, default=3)
    o.add_argument("--non", action="store_true")
    args = parser.parse_args()
    command = request if args.command == "request" else observe
    result = asyncio.run(asyncio.wait_for(command(args), timeout=20))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
