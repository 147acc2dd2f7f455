#!/usr/bin/python3
"""api_client.py - HTTP API load for the benchmarks (log_search.sh, resend.sh, api_send.sh).

Loopback only; standard library only. Every subcommand prints "key value" lines on stdout that
the calling script reads, and human progress on stderr.

  search URL TOKEN_FILE SAMPLES [--cli BIN CONFIG N]
      Times GET /api/v1/messages for every sample line (to ADDR, q WORD,
      range STATUS SINCE UNTIL), one request at a time: first with a new connection per request,
      then again over one keep-alive connection; then N queries of each kind through
      `BIN -c CONFIG log ... --json`. Prints per kind, in milliseconds:
      "stat KIND N P50 P95 P99 MAX MEAN_ROWS" (new connections), "keepalive KIND ..." (same
      fields) and "cli KIND N P50 MAX".
  send URL TOKEN_FILE COUNT CONCURRENCY SIZE
      COUNT messages through POST /api/v1/messages from CONCURRENCY threads, each with its own
      connection: a text part of about SIZE-1024 bytes and a 768-byte attachment (1 KiB of
      base64). A 503 is retried after its Retry-After (at most 1 s here). Prints "accepted",
      "seconds", "rate", "retries", and "first_ms"/"last_ms" (wall clock of the first request and
      the last 202).
  resend URL TOKEN_FILE FILTER_JSON DEADLINE
      POST /api/v1/resend {"filter":FILTER_JSON} and polls GET /api/v1/resend/{job} every
      20 ms until done. Prints "count", "done", "failed", "post_seconds" (the 202 of the POST) and
      "queued_seconds" (until the job says done), both from just before the POST.
"""
import base64
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone


def die(msg):
    print("api_client: ERROR: " + msg, file=sys.stderr)
    sys.exit(1)


class Api:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, url, token, keepalive=True):
        u = urllib.parse.urlsplit(url)
        self.keepalive = keepalive
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            die("the API must be on loopback, not " + str(u.hostname))
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"Authorization": "Bearer " + token}
        self.conn = None

    def request(self, method, path, body=None):
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if not self.keepalive or r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheader("Retry-After"), data
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def token_of(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def pct(values, p):
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, int(-(-p * len(values) // 100)) - 1))
    return values[k]


def load_samples(path):
    kinds = {"to": [], "q": [], "range": []}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "to" and len(parts) == 2:
                kinds["to"].append({"to": parts[1]})
            elif parts[0] == "q" and len(parts) == 2:
                kinds["q"].append({"q": parts[1]})
            elif parts[0] == "range" and len(parts) == 4:
                kinds["range"].append({"status": parts[1], "since": parts[2], "until": parts[3]})
            else:
                die("bad sample line: " + line.strip())
    return kinds


def time_queries(api, params_list):
    """Sorted latencies (ms) and the total rows returned."""
    times, rows = [], 0
    for params in params_list:
        path = "/api/v1/messages?" + urllib.parse.urlencode(dict(params, limit="50"))
        t0 = time.perf_counter()
        status, _, data = api.request("GET", path)
        dt = (time.perf_counter() - t0) * 1000.0
        if status != 200:
            die("GET %s: %d %s" % (path, status, data[:200]))
        rows += len(json.loads(data)["messages"])
        times.append(dt)
    times.sort()
    return times, rows


def cmd_search(argv):
    url, token_file, samples = argv[:3]
    cli = argv[4:7] if len(argv) >= 7 and argv[3] == "--cli" else None
    token = token_of(token_file)
    kinds = load_samples(samples)
    # Pass 1: a new connection per query (connect included), as curl or a script would.
    # Pass 2: the same queries over one keep-alive connection, as a browser or a client library
    # would. The database cache is not warmed beforehand.
    for tag, api in (("stat", Api(url, token, keepalive=False)), ("keepalive", Api(url, token))):
        for kind in ("to", "range", "q"):
            times, rows = time_queries(api, kinds[kind])
            n = len(times)
            print("%s %s %d %.2f %.2f %.2f %.2f %.1f" % (
                tag, kind, n, pct(times, 50), pct(times, 95), pct(times, 99),
                times[-1] if times else 0.0, rows / n if n else 0.0))
            sys.stdout.flush()
    if cli:
        cmd_search_cli(cli[0], cli[1], int(cli[2]), kinds)


def cli_args(kind, params):
    if kind == "to":
        return ["--to", params["to"]]
    if kind == "q":
        return ["--search", params["q"]]
    iso = lambda s: datetime.fromtimestamp(int(s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ["--status", params["status"], "--since", iso(params["since"]),
            "--until", iso(params["until"])]


def cmd_search_cli(binary, config, n, kinds):
    for kind in ("to", "range", "q"):
        times = []
        for params in kinds[kind][:n]:
            args = [binary, "-c", config, "log"] + cli_args(kind, params) + ["--limit", "50",
                                                                             "--json"]
            t0 = time.perf_counter()
            r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
            dt = (time.perf_counter() - t0) * 1000.0
            if r.returncode != 0:
                die("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr[:300]))
            json.loads(r.stdout)
            times.append(dt)
        times.sort()
        print("cli %s %d %.2f %.2f" % (kind, len(times), pct(times, 50), times[-1]))
        sys.stdout.flush()


def message_json(i, size):
    att = base64.b64encode(bytes((i + k) % 256 for k in range(768))).decode("ascii")
    line = "The quick brown fox jumps over the lazy dog, message %08d.\n" % i
    text = (line * max(1, (size - 1024) // len(line)))
    return json.dumps({
        "from": {"address": "app@example.com", "name": "Bench App"},
        "to": ["user%05d@example.net" % (i % 100000)],
        "subject": "Benchmark message %d" % i,
        "text": text,
        "headers": {"X-Bench": str(i)},
        "attachments": [{"filename": "data-%d.bin" % i, "content_type":
                         "application/octet-stream", "content_base64": att}],
    }).encode("utf-8")


def cmd_send(argv):
    url, token_file = argv[0], argv[1]
    count, conc, size = int(argv[2]), int(argv[3]), int(argv[4])
    token = token_of(token_file)
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "retries": 0, "last": 0.0, "error": None}
    bodies = [message_json(i, size) for i in range(min(count, 1000))]

    def worker():
        api = Api(url, token)
        while True:
            with lock:
                if state["next"] >= count or state["error"]:
                    return
                i = state["next"]
                state["next"] += 1
            body = bodies[i % len(bodies)] if i < len(bodies) else message_json(i, size)
            while True:
                try:
                    status, retry_after, data = api.request("POST", "/api/v1/messages", body)
                except OSError as e:
                    with lock:
                        state["error"] = "POST: %s" % e
                    return
                if status == 202:
                    with lock:
                        state["accepted"] += 1
                        state["last"] = time.time()
                    break
                if status == 503:
                    with lock:
                        state["retries"] += 1
                    time.sleep(min(1.0, float(retry_after or 1)))
                    continue
                with lock:
                    state["error"] = "POST: %d %s" % (status, data[:200])
                return

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    first = time.time()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    if state["error"]:
        die(state["error"])
    print("accepted %d" % state["accepted"])
    print("seconds %.3f" % secs)
    print("rate %.2f" % (state["accepted"] / secs if secs > 0 else 0.0))
    print("retries %d" % state["retries"])
    print("first_ms %d" % int(first * 1000))
    print("last_ms %d" % int(state["last"] * 1000))


def cmd_resend(argv):
    url, token_file, deadline = argv[0], argv[1], float(argv[3])
    api = Api(url, token_of(token_file))
    body = json.dumps({"filter": json.loads(argv[2])}).encode("utf-8")
    t0 = time.perf_counter()
    code, _, data = api.request("POST", "/api/v1/resend", body)
    t_post = time.perf_counter() - t0
    if code != 202:
        die("POST /api/v1/resend: %d %s" % (code, data[:200]))
    ans = json.loads(data)
    job = ans["job"]
    while True:
        code, _, data = api.request("GET", "/api/v1/resend/" + job)
        if code != 200:
            die("GET /api/v1/resend/%s: %d %s" % (job, code, data[:200]))
        st = json.loads(data)
        if st.get("state") == "done":
            break
        if time.perf_counter() - t0 > deadline:
            die("job %s not done within %.0f s: %s" % (job, deadline, data[:300]))
        time.sleep(0.02)
    t_done = time.perf_counter() - t0
    print("count %d" % ans["count"])
    print("done %d" % st["done"])
    print("failed %d" % st["failed"])
    print("post_seconds %.3f" % t_post)
    print("queued_seconds %.3f" % t_done)
    if st.get("errors"):
        print("api_client: first errors: %s" % json.dumps(st["errors"][:5]), file=sys.stderr)


def main():
    cmds = {"search": (cmd_search, 3), "send": (cmd_send, 5), "resend": (cmd_resend, 4)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) - 2 < cmds[sys.argv[1]][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    fn, _ = cmds[sys.argv[1]]
    fn(sys.argv[2:])


if __name__ == "__main__":
    main()
