#!/usr/bin/env python3
"""A TLS front for the Close API emulator, with slow handshakes.

The real api.close.com takes a while to complete a TLS handshake; requests
that close_fdw starts together (a cut search's parts, a batch of writes)
then sit in their handshake while the backend does other things.  This
front terminates TLS on 127.0.0.1 with the given certificate and forwards
the plain bytes to the emulator; each handshake waits --delay-ms before
the server answers, and handshakes are served one at a time (like a busy
server), so that the connections of a batch finish theirs one after
another.  Standard library only; binds 127.0.0.1 only.

    tls_front.py --cert C --key K --target-port P --port-file F [--delay-ms D]
"""

import argparse
import os
import socket
import ssl
import threading
import time


def pump(src, dst):
    """Copy bytes from src to dst until either side closes."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, context, target_port, delay, handshake_lock):
    try:
        with handshake_lock:
            time.sleep(delay)
            tls = context.wrap_socket(conn, server_side=True,
                                      do_handshake_on_connect=False)
            tls.settimeout(10)
            tls.do_handshake()
        tls.settimeout(None)
        upstream = socket.create_connection(("127.0.0.1", target_port))
    except (OSError, ssl.SSLError):
        conn.close()
        return
    threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
    pump(tls, upstream)
    tls.close()
    upstream.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--delay-ms", type=int, default=100,
                   help="wait before answering each handshake")
    args = p.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(listener.getsockname()[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    handshake_lock = threading.Lock()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve,
                         args=(conn, context, args.target_port,
                               args.delay_ms / 1000.0, handshake_lock),
                         daemon=True).start()


if __name__ == "__main__":
    main()
