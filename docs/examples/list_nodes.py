#!/usr/bin/env python3
"""usage: list_nodes.py wss://HOST:PORT/ CERT KEY CA  -- print each node's moniker and state.
The example of docs/protocol.md: needs google.protobuf and, on PYTHONPATH, the modules that
`protoc -I proto --python_out=DIR proto/dfnet/v1/*.proto` writes."""
import base64, contextlib, hashlib, os, socket, ssl, struct, sys
from urllib.parse import urlsplit
from dfnet.v1 import envelope_pb2, node_pb2, query_pb2, session_pb2, status_pb2

BINARY, CLOSE, PING, PONG = 0x2, 0x8, 0x9, 0xA  # websocket opcodes (RFC 6455 5.2)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3

def read(rfile, n):
    if len(data := rfile.read(n)) < n:
        raise ConnectionError("the manager closed the connection")
    return data

def send_frame(sock, opcode, payload=b""):  # one final frame, masked as a client's must be
    n, mask = len(payload), os.urandom(4)
    ext = b"" if n < 126 else n.to_bytes(2, "big") if n < 65536 else n.to_bytes(8, "big")
    head = bytes([0x80 | opcode, 0x80 | (n if n < 126 else 126 if n < 65536 else 127)]) + ext
    sock.sendall(head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))

def recv_envelope(sock, rfile):  # the next binary message, decoded; answers pings on the way
    data = b""
    while True:
        b0, b1 = read(rfile, 2)  # the manager's frames are never masked
        n = b1 & 0x7F
        n = int.from_bytes(read(rfile, {126: 2, 127: 8}[n]), "big") if n > 125 else n
        payload = read(rfile, n)
        if b0 & 0x0F == PING:
            send_frame(sock, PONG, payload)  # the pong echoes the ping's bytes
        elif b0 & 0x0F == CLOSE:  # a close frame: 2 bytes of code, then the reason
            raise ConnectionAbortedError(f"session closed: {payload[2:].decode()}")
        elif b0 & 0x0F in (BINARY, 0):  # a binary frame, or a continuation (opcode 0) of one
            data += payload
            if b0 & 0x80:
                return envelope_pb2.Envelope.FromString(data)

def main(url, cert, key, ca):
    u = urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)  # checks the CA and the URL's name in the SANs
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    sock = ctx.wrap_socket(socket.create_connection((u.hostname, u.port or 443), timeout=30),
                           server_hostname=u.hostname)
    if (("organizationalUnitName", "manager"),) not in sock.getpeercert()["subject"]:
        sys.exit(f"{u.hostname}'s certificate does not carry the role manager (subject OU)")
    rfile, key64 = sock.makefile("rb"), base64.b64encode(os.urandom(16))
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol:"
                 b" dfnet.client.v1\r\n\r\n" % ((u.path or "/").encode(), u.netloc.encode(), key64))
    head = b"".join(iter(rfile.readline, b"\r\n"))  # the status line and the headers
    accept = base64.b64encode(hashlib.sha1(key64 + WS_GUID).digest())
    if head[9:13] != b"101 " or accept not in head or b"dfnet.client.v1" not in head:
        sys.exit(f"websocket upgrade refused: {head.decode(errors='replace').strip()}")
    send = lambda **f: send_frame(sock, BINARY, envelope_pb2.Envelope(**f).SerializeToString())
    send(id=1, hello=session_pb2.Hello(protocol_version=1))  # one Envelope per binary message
    if (env := recv_envelope(sock, rfile)).id != 1 or not env.HasField("welcome"):
        sys.exit(f"no Welcome: {env}")
    send(id=3, list_nodes=query_pb2.ListNodes())  # every node, not verbose
    while (env := recv_envelope(sock, rfile)).id != 3 or not env.HasField("status"):
        if env.id == 3 and env.HasField("node_info"):
            print(env.node_info.moniker, node_pb2.NodeState.Name(env.node_info.state))
    send_frame(sock, CLOSE, struct.pack("!H", 1000))  # 1000: normal closure
    with contextlib.suppress(ConnectionAbortedError):  # until the manager's close frame answers
        while True:
            recv_envelope(sock, rfile)
    sock.close()
    if env.status.code != status_pb2.OK:
        sys.exit(f"ListNodes: {status_pb2.Code.Name(env.status.code)}: {env.status.message}")

if __name__ == "__main__":
    try:
        main(*sys.argv[1:]) if len(sys.argv) == 5 else sys.exit(__doc__)
    except OSError as e:  # ssl.SSLError and ConnectionError are OSErrors
        sys.exit(f"list_nodes.py: {e}")
