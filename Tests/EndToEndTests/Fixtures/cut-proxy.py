#!/usr/bin/env python3
"""A TCP relay on loopback that dies part way, like a server that is stopped mid-transfer.

    cut-proxy.py TARGET_PORT UP_LIMIT DOWN_LIMIT

Listens on a free 127.0.0.1 port (printed on stdout as the first line), relays every connection
to 127.0.0.1:TARGET_PORT, and once UP_LIMIT bytes have gone to the target or DOWN_LIMIT bytes
have come back (over all connections), closes every connection and its listening socket: later
connections are refused. Exits after that, or after 120 seconds in any case.
"""
import socket, sys, threading, time

target, up_limit, down_limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
moved = {"up": 0, "down": 0}
dead = threading.Event()
sockets = []

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)

def die():
    dead.set()
    with lock:
        for s in sockets + [listener]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

def pump(src, dst, direction, limit):
    try:
        while not dead.is_set():
            data = src.recv(65536)
            if not data:
                break
            with lock:
                moved[direction] += len(data)
                over = moved[direction] > limit
            if over:
                die()
                return
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def serve():
    while not dead.is_set():
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", target))
        with lock:
            sockets.extend([client, upstream])
        threading.Thread(target=pump, args=(client, upstream, "up", up_limit), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, "down", down_limit), daemon=True).start()

threading.Thread(target=serve, daemon=True).start()
deadline = time.time() + 120
while not dead.is_set() and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.2)
