#!/usr/bin/env python3
"""Cost of half-open connections: RSS per connection that sent half a request head, and when
the gateway closes them. Loopback only, bounded count.

    scripts/halfopen.py [--bin target/release/cors-edge] [--count 2000] [--wait 70]
                        [--extra-server 'header_timeout: 10s']

Starts the gateway (one worker thread, 16 MiB cache) with a route to a port nobody listens on
(the half-sent requests never get that far), reads VmRSS from /proc, opens COUNT connections
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


def free_listener_port():
    # The gateway gets port 0 in no config of its own here, so let the OS pick one and hand it
    # over; the tiny race is acceptable for a hand-run measurement, not for tests.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, limit=15):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gateway exited: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"gateway did not listen on {port}")


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

    listen, admin, dead = free_listener_port(), free_listener_port(), free_listener_port()
    extra = "".join(f"  {line.strip()}\n" for line in args.extra_server.split(";") if line.strip())
    config = (
        f'listen: ["127.0.0.1:{listen}"]\nadmin: {{ listen: "127.0.0.1:{admin}" }}\n'
        f"cache: {{ max_bytes: 16MiB }}\n"
        f'upstreams:\n  api:\n    servers: ["127.0.0.1:{dead}"]\n'
        f"routes:\n  - name: api\n    upstream: api\n"
        f"server:\n  threads: 1\n{extra}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gw.yaml")
        with open(path, "w") as f:
            f.write(config)
        proc = subprocess.Popen([args.bin, "run", "-c", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_port(listen, proc)
            wait_port(admin, proc)
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
