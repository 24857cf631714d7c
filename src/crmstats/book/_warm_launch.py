"""The command of a warm kernel: ask the build's kernel server for a forked kernel, wait for it.

Run as a script by path (``python -I -S _warm_launch.py SOCKET -f CONNECTION_FILE ...``),
so it imports nothing but the standard library. Jupyter sees this process as
the kernel: it forwards SIGINT and SIGTERM to the forked kernel and exits when
the kernel does (the server hands the kernel this connection; its end means
the kernel is gone). When the server cannot be reached it becomes an ordinary
kernel (``python -m ipykernel_launcher`` with the same arguments). See
:mod:`crmstats.book.warm`.
"""

import json
import os
import signal
import socket
import sys


def _ordinary_kernel(args):
    exe = sys.executable
    os.execv(exe, [exe, "-m", "ipykernel_launcher", *args])


def main(argv):
    path, args = argv[0], argv[1:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(64)
            if not chunk:
                raise OSError("the kernel server closed the connection")
            reply += chunk
        pid = int(reply)
    except (OSError, ValueError):
        conn.close()
        _ordinary_kernel(args)
        return

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            if not conn.recv(64):
                break  # the kernel exited
        except InterruptedError:
            continue
        except OSError:
            break


if __name__ == "__main__":
    main(sys.argv[1:])
