#!/usr/bin/python3
"""A foreign gRPC client for Vigo's agent port, written against proto/ only.

It uses Python's grpcio (BoringSSL) and `cryptography`, nothing from the Vigo codebase, and
prints one JSON object describing what the server answered. The Rust integration tests drive
it and assert on the status codes.
"""
import atexit
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils, x25519


def load_stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="vigo-pystubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir, "--python_out", out,
         "--grpc_python_out", out, "vigo/v1/agent.proto"],
        check=True)
    sys.path.insert(0, out)
    from vigo.v1 import agent_pb2, agent_pb2_grpc  # noqa: E402
    return agent_pb2, agent_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def self_signed(key, cn):
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])
    now = __import__("datetime").datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - __import__("datetime").timedelta(hours=1))
            .not_valid_after(now + __import__("datetime").timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(key, None))
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def signing_message(method, envoy_id, ts, seq, payload):
    h = hashes.Hash(hashes.SHA256())
    h.update(payload)
    return (b"vigo-request-v1\0" + method.encode() + b"\0" + envoy_id.encode() + b"\0"
            + ts.to_bytes(8, "big", signed=True) + seq.to_bytes(8, "big") + h.finalize())


class Agent:
    """An enrolled envoy's files, read from its base dir."""

    def __init__(self, base):
        self.state = json.loads(read(os.path.join(base, "agent.json")))
        self.key_pem = read(os.path.join(base, "identity.key"))
        self.cert_pem = read(os.path.join(base, "client.crt"))
        self.key = serialization.load_pem_private_key(self.key_pem, None)

    def envelope(self, pb, method, payload, key=None, seq=None, ts=None):
        ts = ts if ts is not None else int(time.time() * 1000)
        seq = seq if seq is not None else int(time.time() * 1_000_000)
        sig = (key or self.key).sign(signing_message(method, self.state["envoy_id"], ts, seq, payload))
        return pb.SignedRequest(envoy_id=self.state["envoy_id"], timestamp_ms=ts, sequence=seq,
                                payload=payload, signature=sig)


def call(stub_method, request):
    try:
        # Generous: a debug-built server on a loaded CI machine may take seconds to refuse.
        stub_method(request, timeout=60)
        return "OK", ""
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


def channel(addr, ca, cert=None, key=None):
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(addr, creds)


def push_connect(addr, ca_path, agent_base):
    """A TLS connection to the agent port that asks for the push channel."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=ca_path)
    ctx.load_cert_chain(os.path.join(agent_base, "client.crt"), os.path.join(agent_base, "identity.key"))
    ctx.set_alpn_protocols(["vigo-push/2"])
    sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=60), server_hostname=host)
    if sock.selected_alpn_protocol() != "vigo-push/2":
        sys.exit(f"the server chose ALPN {sock.selected_alpn_protocol()!r}")
    return sock


def push_send(sock, body):
    sock.sendall(struct.pack(">I", len(body)) + body)


def push_recv(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the server closed the push channel")
            data += chunk
        return data
    (length,) = struct.unpack(">I", exactly(4))
    return exactly(length)


def main():
    cmd, proto_dir, addr, ca_path = sys.argv[1:5]
    rest = sys.argv[5:]
    pb, pbg = load_stubs(proto_dir)
    ca = read(ca_path)
    result = {}
    if cmd == "no-cert":
        # Every RPC, with no client certificate at all.
        stub = pbg.VigoAgentStub(channel(addr, ca))
        for name, req in [("Enroll", pb.EnrollRequest()), ("CheckIn", pb.SignedRequest()),
                          ("ResolveSecrets", pb.SignedRequest()), ("ReportRun", pb.SignedRequest())]:
            result[name] = call(getattr(stub, name), req)[0]
    elif cmd == "self-signed":
        # A valid self-signed Ed25519 certificate: Enroll only; everything else refused.
        key = ed25519.Ed25519PrivateKey.generate()
        stub = pbg.VigoAgentStub(channel(addr, ca, self_signed(key, "intruder"), key_pem(key)))
        for name in ["CheckIn", "ResolveSecrets", "ReportRun"]:
            result[name] = call(getattr(stub, name), pb.SignedRequest(envoy_id="x"))[0]
        result["Enroll-bad-token"] = call(stub.Enroll, pb.EnrollRequest(
            token="AAAA", public_key=key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)))[0]
    elif cmd == "other-ca":
        cert_path, key_path = rest
        stub = pbg.VigoAgentStub(channel(addr, ca, read(cert_path), read(key_path)))
        result["CheckIn"] = call(stub.CheckIn, pb.SignedRequest())[0]
    elif cmd == "enroll-existing":
        # An enrolled (perhaps revoked) identity asking to enroll again with a fresh token.
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        token_secret = rest[1].split(".")[1]
        pub = agent.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        result["enroll"] = call(stub.Enroll, pb.EnrollRequest(token=token_secret, public_key=pub, name="again"))
    elif cmd == "bloat":
        # Oversized fields in requests the server refuses or records: what each would make it
        # append to an audit log that can never be trimmed.
        key = ed25519.Ed25519PrivateKey.generate()
        stub = pbg.VigoAgentStub(channel(addr, ca, self_signed(key, "bloat"), key_pem(key)))
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        result["enroll"] = call(stub.Enroll, pb.EnrollRequest(token="AAAA", public_key=pub, name="n" * 1_000_000))[0]
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        env = agent.envelope(pb, "CheckIn", pb.CheckInRequest().SerializeToString())
        env.envoy_id = "e" * 1_000_000
        result["long-id"] = call(stub.CheckIn, env)[0]
        reply = x25519.X25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        for label, keys in [("repeated", [rest[1]] * 50_000), ("unentitled", ["x/%d" % i for i in range(50_000)])]:
            payload = pb.ResolveSecretsRequest(keys=keys, reply_public_key=reply).SerializeToString()
            result[label] = call(stub.ResolveSecrets, agent.envelope(pb, "ResolveSecrets", payload))[0]
    elif cmd == "probe-other":
        # Signing as one envoy (its own key and certificate) while naming another envoy's id,
        # and then an id nobody has: the answers must not tell the two apart.
        agent, other = Agent(rest[0]), Agent(rest[1])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        body = pb.CheckInRequest().SerializeToString()
        for label, envoy_id in [("other", other.state["envoy_id"]), ("unknown", "00000000-0000-4000-8000-00000000abcd")]:
            env = agent.envelope(pb, "CheckIn", body)
            env.envoy_id = envoy_id
            env.signature = agent.key.sign(signing_message("CheckIn", envoy_id, env.timestamp_ms, env.sequence, body))
            result[label] = call(stub.CheckIn, env)
    elif cmd == "far-sequence":
        # Sequences the real agent could never reach for a long time: a lock-out attempt.
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        body = pb.CheckInRequest().SerializeToString()
        hour_ahead = int(time.time() * 1_000_000) + 3600 * 1_000_000
        for label, seq in [("max", 2**64 - 1), ("i64-max", 2**63 - 1), ("wraps-negative", 2**63 + 5), ("hour-ahead", hour_ahead)]:
            result[label] = call(stub.CheckIn, agent.envelope(pb, "CheckIn", body, seq=seq))
    elif cmd == "far-time":
        # Signed request times at the ends of the i64 range, and the one whose distance from
        # now wraps to i64::MIN when subtracted naively (which then passes as "close").
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        body = pb.CheckInRequest().SerializeToString()
        wraps = -(2**63) + int(time.time() * 1000)
        for label, ts in [("min", -(2**63)), ("max", 2**63 - 1), ("wraps", wraps)]:
            result[label] = call(stub.CheckIn, agent.envelope(pb, "CheckIn", body, ts=ts))
    elif cmd == "replay-denied":
        # One ResolveSecrets for a key the envoy may not have, sent twice.
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        reply = x25519.X25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        payload = pb.ResolveSecretsRequest(keys=rest[1].split(","), reply_public_key=reply).SerializeToString()
        env = agent.envelope(pb, "ResolveSecrets", payload)
        result["first"] = call(stub.ResolveSecrets, env)
        result["replay"] = call(stub.ResolveSecrets, env)
    elif cmd == "watch":
        # The push channel with Python's own ssl module: TLS with the agent's certificate and
        # ALPN vigo-push/2, length-prefixed frames. Says "open" once the server accepted the
        # Watch envelope, sends the same envelope on a second connection (a replay), checks
        # the first nudge's signature with the CA certificate alone, then makes calls on the
        # channel: a CheckIn, the same again (a replay), one signed for another method, one
        # the channel does not carry, and the first CheckIn's envelope again over gRPC.
        agent = Agent(rest[0])
        env = agent.envelope(pb, "Watch", pb.WatchRequest().SerializeToString())
        first = push_connect(addr, ca_path, rest[0])
        push_send(first, env.SerializeToString())
        answer = pb.WatchAnswer()
        answer.ParseFromString(push_recv(first))
        result["refused"] = answer.refused
        print("open", flush=True)
        second = push_connect(addr, ca_path, rest[0])
        push_send(second, env.SerializeToString())
        again = pb.WatchAnswer()
        again.ParseFromString(push_recv(second))
        result["replay_refused"] = again.refused
        push_send(first, b"")
        # The publish runs beside this client, so its nudge may come before or after the
        # answer to the ping (an empty frame): take both, in either order.
        pong, n = False, None
        while not (pong and n is not None):
            body = push_recv(first)
            if body == b"":
                pong = True
                continue
            frame = pb.PushFrame()
            frame.ParseFromString(body)
            if frame.WhichOneof("frame") == "nudge":
                n = frame.nudge
        result["ping_answered"] = pong
        envoy_id = agent.state["envoy_id"]
        message = (b"vigo-nudge-v1\0" + envoy_id.encode() + b"\0" + n.reason.encode() + b"\0"
                   + n.timestamp_ms.to_bytes(8, "big", signed=True) + n.sequence.to_bytes(8, "big")
                   + n.spread_ms.to_bytes(4, "big"))
        der = utils.encode_dss_signature(int.from_bytes(n.signature[:32], "big"),
                                         int.from_bytes(n.signature[32:], "big"))
        try:
            x509.load_pem_x509_certificate(ca).public_key().verify(der, message, ec.ECDSA(hashes.SHA256()))
            result["verified"] = True
        except Exception as e:  # noqa: BLE001 - any failure is "does not verify"
            result["verified"] = repr(e)
        result["reason"] = n.reason
        result["spread_ms"] = n.spread_ms

        def carried(method, env):
            push_send(first, pb.PushCall(method=method, request=env).SerializeToString())
            while True:
                frame = pb.PushFrame()
                frame.ParseFromString(push_recv(first))
                if frame.WhichOneof("frame") == "answer":
                    return frame.answer
        body = pb.CheckInRequest(agent_version="foreign").SerializeToString()
        env = agent.envelope(pb, "CheckIn", body)
        answer = carried("CheckIn", env)
        checked_in = pb.CheckInResponse()
        checked_in.ParseFromString(answer.payload)
        result["check_in"] = [answer.code, len(checked_in.bundle.bundle_hash)]
        result["check_in_replayed"] = [carried("CheckIn", env).code, carried("CheckIn", env).message]
        result["wrong_method"] = carried("CheckIn", agent.envelope(pb, "ReportRun", body)).code
        renew = agent.envelope(pb, "RenewCertificate", pb.RenewCertificateRequest().SerializeToString())
        result["not_carried"] = carried("RenewCertificate", renew).code
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        result["replayed_over_grpc"] = call(stub.CheckIn, env)[0]
    elif cmd in ("watch-hold", "watch-flood", "watch-oversized", "watch-garbage"):
        # Opens a push channel, says "open", then reads until the server closes it (or 60 s
        # pass). watch-flood first sends fifty pings in one go; watch-oversized announces a
        # call one byte over the 256 KiB a call may be; watch-garbage sends a frame that is
        # not a PushCall.
        agent = Agent(rest[0])
        sock = push_connect(addr, ca_path, rest[0])
        push_send(sock, agent.envelope(pb, "Watch", pb.WatchRequest().SerializeToString()).SerializeToString())
        answer = pb.WatchAnswer()
        answer.ParseFromString(push_recv(sock))
        result["refused"] = answer.refused
        if cmd == "watch-flood":
            sock.sendall(struct.pack(">I", 0) * 50)
        if cmd == "watch-oversized":
            sock.sendall(struct.pack(">I", 256 * 1024 + 1))
        if cmd == "watch-garbage":
            push_send(sock, b"\xff\xff not a call")
        print("open", flush=True)
        started, frames = time.monotonic(), 0
        try:
            while True:
                push_recv(sock)
                frames += 1
        except (socket.timeout, TimeoutError):
            result["closed"] = False
        except (EOFError, OSError):  # a close, a reset, or a TLS-level end
            result["closed"] = True
        result["frames"] = frames
        result["seconds"] = time.monotonic() - started
    elif cmd == "reports":
        # Run reports: `count` of them, each with one result whose output is `size` bytes.
        agent = Agent(rest[0])
        count, size = int(rest[1]), int(rest[2])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        result["codes"] = []
        for i in range(count):
            res = pb.ResourceResult(name="r", type="exec", status="changed", output="x" * size)
            report = pb.RunReport(status="changed", noop=True, results=[res])
            payload = pb.ReportRunRequest(report=report).SerializeToString()
            code, details = call(stub.ReportRun, agent.envelope(pb, "ReportRun", payload))
            result["codes"].append(code)
            result["last_details"] = details
    elif cmd in ("replay", "forged", "resolve", "send"):
        agent = Agent(rest[0])
        stub = pbg.VigoAgentStub(channel(addr, ca, agent.cert_pem, agent.key_pem))
        body = pb.CheckInRequest(agent_version="foreign").SerializeToString()
        if cmd == "replay":
            env = agent.envelope(pb, "CheckIn", body)
            result["first"] = call(stub.CheckIn, env)[0]
            result["replay"] = call(stub.CheckIn, env)[0]
            with open(rest[1], "wb") as f:
                f.write(env.SerializeToString())
            # The calls that store something (an audit row, a run report): each one twice.
            reply = x25519.X25519PrivateKey.generate().public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            resolve = pb.ResolveSecretsRequest(keys=[], reply_public_key=reply).SerializeToString()
            report = pb.ReportRunRequest(report=pb.RunReport(status="converged", noop=True)).SerializeToString()
            for method, payload in [("ResolveSecrets", resolve), ("ReportRun", report)]:
                env = agent.envelope(pb, method, payload)
                result[method] = [call(getattr(stub, method), env)[0], call(getattr(stub, method), env)[0]]
        elif cmd == "send":
            env = pb.SignedRequest()
            env.ParseFromString(read(rest[1]))
            result["again"] = call(stub.CheckIn, env)
        elif cmd == "forged":
            wrong = ed25519.Ed25519PrivateKey.generate()
            result["wrong-key"] = call(stub.CheckIn, agent.envelope(pb, "CheckIn", body, key=wrong))[0]
            env = agent.envelope(pb, "CheckIn", body)
            env.payload = pb.CheckInRequest(agent_version="tampered").SerializeToString()
            result["tampered-payload"] = call(stub.CheckIn, env)[0]
            env = agent.envelope(pb, "CheckIn", body)
            env.envoy_id = "00000000-0000-4000-8000-000000000000"
            result["unknown-envoy"] = call(stub.CheckIn, env)[0]
            env = agent.envelope(pb, "ReportRun", body)
            result["wrong-method"] = call(stub.CheckIn, env)[0]
        else:
            reply = ed25519.Ed25519PrivateKey.generate()  # any 32 bytes do for a refused call
            payload = pb.ResolveSecretsRequest(keys=rest[1].split(","), reply_public_key=reply.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).SerializeToString()
            result["resolve"] = call(stub.ResolveSecrets, agent.envelope(pb, "ResolveSecrets", payload))
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
