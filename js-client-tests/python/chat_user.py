"""A chat user driven by python-socketio (Debian's python3-socketio), for the cluster test.

Connects to the chat at argv[1] as the nickname argv[2], joins #general, then reads commands,
one JSON object a line, on stdin and answers each with one JSON line on stdout:

    {"do": "emit", "event": "message", "data": {...}}  ->  {"ack": <the server's answer>}
    {"do": "got"}                                      ->  {"got": {"message": [...], ...}}
    {"do": "quit"}                                     ->  disconnects and exits

It prints {"ready": <the join answer>} once connected, with its nickname and in #general.
"""

import json
import sys
import threading

import socketio

URL, NICK = sys.argv[1], sys.argv[2]
NS = "/chat"
TIMEOUT = 10

got = {"message": [], "private": [], "members": [], "notice": []}
lock = threading.Lock()
sio = socketio.Client(reconnection=False)


def recorder(event):
    def record(data):
        with lock:
            got[event].append(data)

    return record


for event in got:
    sio.on(event, recorder(event), namespace=NS)


def say(value):
    print(json.dumps(value), flush=True)


sio.connect(URL, namespaces=[NS], transports=["websocket"], socketio_path="socket.io")
nick = sio.call("nick", NICK, namespace=NS, timeout=TIMEOUT)
if nick != {"ok": NICK}:
    say({"error": nick})
    sys.exit(1)
say({"ready": sio.call("join", "general", namespace=NS, timeout=TIMEOUT)})

for line in sys.stdin:
    command = json.loads(line)
    if command["do"] == "emit":
        say({"ack": sio.call(command["event"], command["data"], namespace=NS, timeout=TIMEOUT)})
    elif command["do"] == "got":
        with lock:
            say({"got": got})
    elif command["do"] == "quit":
        break

sio.disconnect()
