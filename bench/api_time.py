#!/usr/bin/env python3
"""Median round trip of one API request on a UNIX socket, without any client start-up cost.
Usage: api_time.py SOCKET PATH [RUNS]"""
import socket, statistics, sys, time

sock_path, path = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 30

def once():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    while s.recv(1 << 16):
        pass
    s.close()

for _ in range(3):
    once()
times = []
for _ in range(runs):
    t = time.perf_counter()
    once()
    times.append(time.perf_counter() - t)
print(f"{statistics.median(times) * 1000:.2f}")
