#!/usr/bin/env python3
"""Cost of half-open connections: RSS per connection that sent half a request head, and when
the gateway closes them. Loopback only, bounded count.

    scripts/halfopen.py [--bin target/release/cors-edge] [--count 2000] [--wait 70]
                        [--extra-server 'header_timeout: 10s']

Starts the gateway on port 0 (it reports its ports in its ready file; one worker thread, 16 MiB
cache) with a route to the discard port (the half-sent requests never get that far), reads VmRSS from /proc, opens COUNT connections
that each send `GET /slow HTTP/1.1\r\nHost: x\r\n` and stop, measures RSS again, then watches
for up to WAIT seconds how long the gateway takes to close them and whether a complete request
still answers meanwhile (from the admin listener's /healthz: the proxy's upstream is down).
"""
import argparse
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_ready(path, proc, limit=30):
    """The gateway binds port 0 and writes its bound addresses to the ready file."""
    import json
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gateway exited: {proc.returncode}")
        try:
            with open(path) as f:
                ready = json.load(f)
            port = lambda addr: int(addr.rsplit(":", 1)[1])
            return port(ready["listen"][0]), port(ready["admin"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    sys.exit("gateway did not write its ready file")


def healthz(port):
    start = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(100)
    return data.split(b"\r\n")[0].decode(), (time.time() - start) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cors-edge")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--wait", type=float, default=70)
    ap.add_argument("--extra-server", default="")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.count + 200)), hard))

    extra = "".join(f"  {line.strip()}\n" for line in args.extra_server.split(";") if line.strip())
    config = (
        'listen: ["127.0.0.1:0"]\nadmin: { listen: "127.0.0.1:0" }\n'
        "cache: { max_bytes: 16MiB }\n"
        # The discard port: nothing listens there; the half-sent requests never get that far.
        'upstreams:\n  api:\n    servers: ["127.0.0.1:9"]\n'
        f"routes:\n  - name: api\n    upstream: api\n"
        f"server:\n  threads: 1\n{extra}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gw.yaml")
        with open(path, "w") as f:
            f.write(config)
        ready_file = os.path.join(tmp, "ready.json")
        proc = subprocess.Popen([args.bin, "run", "-c", path, "--ready-file", ready_file],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            listen, admin = wait_ready(ready_file, proc)
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            socks = []
            opened = time.time()
            for _ in range(args.count):
                s = socket.create_connection(("127.0.0.1", listen), timeout=5)
                s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            time.sleep(1.0)
            after = rss_kib(proc.pid)
            status, ms = healthz(admin)
            print(f"connections      {args.count}")
            print(f"rss before       {before} KiB")
            print(f"rss with them    {after} KiB")
            print(f"per connection   {(after - before) / args.count:.1f} KiB")
            print(f"healthz meanwhile {status!r} in {ms:.1f} ms")
            # When are they closed?
            pending = {s.fileno(): s for s in socks}
            poller = select.poll()
            for fd in pending:
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            closed_at = []
            answers = {}
            deadline = opened + args.wait
            while pending and time.time() < deadline:
                ready = [fd for fd, _ in poller.poll(500)]
                for fd in ready:
                    s = pending[fd]
                    try:
                        data = s.recv(200)
                    except OSError:
                        data = b""
                    if data:
                        line = data.split(b"\r\n")[0].decode(errors="replace")
                        answers[line] = answers.get(line, 0) + 1
                        continue
                    closed_at.append(time.time() - opened)
                    poller.unregister(fd)
                    del pending[fd]
                    s.close()
            if closed_at:
                print(f"closed           {len(closed_at)} of {args.count}, first after "
                      f"{min(closed_at):.1f} s, last after {max(closed_at):.1f} s")
            print(f"still open       {len(pending)} after {args.wait:.0f} s")
            print(f"answers sent     {answers or 'none'}")
            print(f"rss at the end   {rss_kib(proc.pid)} KiB")
            for s in pending.values():
                s.close()
        finally:
            proc.send_signal(2)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
