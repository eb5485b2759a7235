#!/usr/bin/env python3
"""A local stand-in for Replicate's HTTP API, to rehearse the worker's money paths by hand.

Stateful, in the documented shapes (the same behaviour as tests/api/fake_replicate.rs): a create
makes a prediction that echoes its input; `GET /v1/predictions` lists them newest first with
`created_after` and `cursor` pages; a poll moves a prediction to `succeeded`, whose output is the
input photo itself (fetched from the presigned URL the worker gave, served back under /files/);
cancel cancels. Control endpoints let you play the provider's misbehaviour:

    POST /_fake/script          {"answers": ["bad_gateway", "unreadable", "slow", "created"]}
                                the next creates answer like this (the prediction IS made for
                                bad_gateway, unreadable and slow); "refused_502" makes nothing
    POST /_fake/account_fault   {"status": 402}  every API call answers that (null to clear)
    GET  /_fake/state           every prediction, the creates and cancels received

Usage (docs/local-stack.md, "Rehearsing Replicate faults"):

    python3 dev/fake-replicate/fake_replicate.py --port 9100 &
    REPLICATE_API_TOKEN=r8_fake REPLICATE_API_BASE=http://127.0.0.1:9100/v1 scripts/dev
"""

import argparse
import json
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {
    "predictions": [],  # oldest first
    "script": [],
    "account_fault": None,
    "creates": 0,
    "cancels": [],
    "files": {},
}
POLLS_BEFORE_DONE = 1
PAGE_SIZE = 100
SLOW_SECONDS = 80  # longer than the worker's Prefer: wait (30 s) plus its 15 s margin


def now():
    return datetime.now(timezone.utc)


def iso(t):
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def obj(base, p):
    done = p["status"] in ("succeeded", "failed", "canceled", "aborted")
    return {
        "id": p["id"],
        "model": p["model"],
        "version": "hidden",
        "input": p["input"],
        "logs": "",
        "output": [f"{base}/files/{p['id']}"] if p["status"] == "succeeded" else None,
        "error": None,
        "status": p["status"],
        "source": "api",
        "data_removed": False,
        "created_at": iso(p["created_at"]),
        "started_at": None if p["status"] == "starting" else iso(p["created_at"]),
        "completed_at": iso(now()) if done else None,
        "urls": {"get": f"{base}/v1/predictions/{p['id']}", "cancel": f"{base}/v1/predictions/{p['id']}/cancel"},
        "metrics": {"predict_time": 3.2} if p["status"] == "succeeded" else {},
    }


def first_url(value):
    if isinstance(value, str) and value.startswith("http"):
        return value
    if isinstance(value, list):
        for v in value:
            found = first_url(v)
            if found:
                return found
    if isinstance(value, dict):
        for v in value.values():
            found = first_url(v)
            if found:
                return found
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        print("fake-replicate:", self.command, self.path, "->", args[1] if len(args) > 1 else "", flush=True)

    def base(self):
        return f"http://{self.headers.get('Host', '127.0.0.1')}"

    def send_json(self, status, body, delay=0):
        if delay:
            time.sleep(delay)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/_fake/state":
            with LOCK:
                return self.send_json(200, {
                    "predictions": [{"id": p["id"], "status": p["status"], "input": p["input"]} for p in STATE["predictions"]],
                    "creates": STATE["creates"],
                    "cancels": STATE["cancels"],
                })
        if parts[0] == "files" and len(parts) == 2:
            with LOCK:
                data = STATE["files"].get(parts[1])
            if data is None:
                return self.send_json(404, {"detail": "Not found."})
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        if self.fault():
            return
        if parts == ["v1", "predictions"]:
            query = dict(urllib.parse.parse_qsl(url.query))
            after = query.get("created_after")
            after = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
            offset = int(query.get("cursor", "0"))
            with LOCK:
                newest = [p for p in reversed(STATE["predictions"]) if after is None or p["created_at"] >= after]
                page = [obj(self.base(), p) for p in newest[offset:offset + PAGE_SIZE]]
            nxt = None
            if offset + PAGE_SIZE < len(newest):
                query["cursor"] = str(offset + PAGE_SIZE)
                nxt = f"{self.base()}/v1/predictions?{urllib.parse.urlencode(query)}"
            return self.send_json(200, {"next": nxt, "previous": None, "results": page})
        if len(parts) == 3 and parts[:2] == ["v1", "predictions"]:
            with LOCK:
                p = next((p for p in STATE["predictions"] if p["id"] == parts[2]), None)
                if p is None:
                    return self.send_json(404, {"detail": "Not found."})
                if p["status"] in ("starting", "processing"):
                    if p["polls_left"] <= 0:
                        self.finish(p)
                    else:
                        p["polls_left"] -= 1
                        p["status"] = "processing"
                return self.send_json(200, obj(self.base(), p))
        self.send_json(404, {"detail": "Not found."})

    def finish(self, p):
        # The "staged" output is the input photo itself: enough to see the flow end to end.
        source = first_url(p["input"])
        try:
            with urllib.request.urlopen(source, timeout=10) as response:
                STATE["files"][p["id"]] = response.read()
            p["status"] = "succeeded"
        except Exception as err:  # noqa: BLE001 - a fake reports any fetch failure as the model would
            p["status"] = "failed"
            print("fake-replicate: could not fetch the input:", err, flush=True)

    def fault(self):
        with LOCK:
            fault = STATE["account_fault"]
        if fault:
            self.send_json(fault, {"title": "error", "detail": f"simulated account fault {fault}", "status": fault})
            return True
        return False

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        body = self.body()
        if url.path == "/_fake/script":
            with LOCK:
                STATE["script"].extend((body or {}).get("answers", []))
            return self.send_json(200, {"script": STATE["script"]})
        if url.path == "/_fake/account_fault":
            with LOCK:
                STATE["account_fault"] = (body or {}).get("status")
            return self.send_json(200, {"account_fault": STATE["account_fault"]})
        if self.fault():
            return
        if len(parts) == 5 and parts[0] == "v1" and parts[1] == "models" and parts[4] == "predictions":
            with LOCK:
                STATE["creates"] += 1
                answer = STATE["script"].pop(0) if STATE["script"] else "created"
                if answer == "refused_502":
                    return self.send_json(502, {"detail": "Bad Gateway"})
                p = {
                    "id": f"fake{len(STATE['predictions']) + 1}",
                    "model": f"{parts[2]}/{parts[3]}",
                    "input": (body or {}).get("input"),
                    "status": "starting",
                    "created_at": now(),
                    "polls_left": POLLS_BEFORE_DONE,
                }
                STATE["predictions"].append(p)
                created = obj(self.base(), p)
            if answer == "bad_gateway":
                return self.send_json(502, {"detail": "Bad Gateway"})
            if answer == "unreadable":
                data = b"<html>upstream reset</html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return self.wfile.write(data)
            return self.send_json(201, created, delay=SLOW_SECONDS if answer == "slow" else 0)
        if len(parts) == 4 and parts[:2] == ["v1", "predictions"] and parts[3] == "cancel":
            with LOCK:
                STATE["cancels"].append(parts[2])
                p = next((p for p in STATE["predictions"] if p["id"] == parts[2]), None)
                if p is None:
                    return self.send_json(404, {"detail": "Not found."})
                if p["status"] in ("starting", "processing"):
                    p["status"] = "canceled"
                return self.send_json(200, obj(self.base(), p))
        self.send_json(404, {"detail": "Not found."})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"fake Replicate on http://127.0.0.1:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
