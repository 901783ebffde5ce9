#!/usr/bin/env python3
"""Checks a running raftkv cluster with stock Python gRPC tooling.

Usage: kv_client.py ADDR[,ADDR...] [--proto-root DIR]

1. Generates Python stubs from proto/raftkv/v1/kv.proto with
   `python3 -m grpc_tools.protoc` into a temporary directory.
2. Through those stubs: Set, Get, Cas (expected absent and present), NoOp,
   Status, a retried Set, INVALID_ARGUMENT for an empty key, and (with more
   than one address) the not-leader answer of a follower.
3. The standard health service (grpc.health.v1) answers SERVING.
4. Server reflection (grpc.reflection.v1alpha, and v1 when offered) lists
   raftkv.v1.Kv and returns its file descriptor; a stub built from that
   descriptor alone (descriptor_pool + message_factory) performs a Get.

Exits 0 when every check passes, 1 on the first mismatch (with a message
saying what was expected and what came back), 2 on bad usage and 3 when a
required Python package is missing.
"""

import argparse
import importlib
import os
import random
import subprocess
import sys
import tempfile
import time

PIP_INSTALL = (
    "pip install grpcio==1.85.3 grpcio-tools==1.85.1 "
    "grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 protobuf==7.36.2"
)
REQUIRED_MODULES = {
    "grpc": "grpcio",
    "grpc_tools.protoc": "grpcio-tools",
    "grpc_health.v1.health_pb2": "grpcio-health-checking",
    "grpc_reflection.v1alpha.reflection_pb2": "grpcio-reflection",
    "google.protobuf.message_factory": "protobuf",
}

for module, package in REQUIRED_MODULES.items():
    try:
        importlib.import_module(module)
    except ImportError as e:
        print(
            f"MISSING PYTHON PACKAGE: cannot import {module} (package {package}): {e}\n"
            f"install the interop test's dependencies with: {PIP_INSTALL}",
            file=sys.stderr,
        )
        sys.exit(3)

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (  # noqa: E402
    ProtoReflectionDescriptorDatabase,
)

KV_SERVICE = "raftkv.v1.Kv"
KV_PROTO = "raftkv/v1/kv.proto"
RPC_TIMEOUT_S = 5.0
LEADER_WAIT_S = 20.0
REFLECTION_METHODS = {
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
}


class Mismatch(Exception):
    """A check that did not hold."""


def check(condition, what):
    if not condition:
        raise Mismatch(what)


def log(message):
    print(message, flush=True)


def generate_stubs(proto_root, out_dir):
    """Runs grpc_tools.protoc on kv.proto and imports the generated modules."""
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.join(proto_root, KV_PROTO),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise Mismatch(
            f"grpc_tools.protoc failed (exit {result.returncode}) on {KV_PROTO}:\n"
            f"{result.stdout}{result.stderr}"
        )
    sys.path.insert(0, out_dir)
    kv_pb2 = importlib.import_module("raftkv.v1.kv_pb2")
    kv_pb2_grpc = importlib.import_module("raftkv.v1.kv_pb2_grpc")
    log(f"ok   generated stubs from {KV_PROTO} with grpc_tools.protoc")
    return kv_pb2, kv_pb2_grpc


class Cluster:
    """Channels to every node, and a way to reach whichever one leads."""

    def __init__(self, addrs, kv_pb2, kv_pb2_grpc):
        self.addrs = addrs
        self.pb = kv_pb2
        self.channels = {a: grpc.insecure_channel(a) for a in addrs}
        self.stubs = {a: kv_pb2_grpc.KvStub(c) for a, c in self.channels.items()}
        self.leader = None

    def close(self):
        for channel in self.channels.values():
            channel.close()

    def find_leader(self):
        deadline = time.monotonic() + LEADER_WAIT_S
        last = {}
        while time.monotonic() < deadline:
            for addr, stub in self.stubs.items():
                try:
                    status = stub.Status(self.pb.StatusRequest(), timeout=1.0)
                except grpc.RpcError as e:
                    last[addr] = f"{e.code().name}: {e.details()}"
                    continue
                last[addr] = f"{self.pb.Role.Name(status.role)} term {status.term}"
                if status.role == self.pb.ROLE_LEADER:
                    self.leader = addr
                    return addr, status
            time.sleep(0.05)
        raise Mismatch(f"no node reported ROLE_LEADER within {LEADER_WAIT_S}s: {last}")

    def call(self, method, request):
        """Calls `method` on the leader. A not-leader or no-leader answer means
        nothing was applied, so the same request (same session) is resent to
        the leader found next."""
        deadline = time.monotonic() + LEADER_WAIT_S
        while True:
            if self.leader is None:
                self.find_leader()
            try:
                return getattr(self.stubs[self.leader], method)(request, timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as e:
                retry = e.code() in (
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.UNAVAILABLE,
                ) and not _metadata(e).get("session-expired")
                if not retry or time.monotonic() > deadline:
                    raise
                log(f"     {method} on {self.leader}: {e.code().name} {e.details()!r}; finding the leader again")
                self.leader = None
                time.sleep(0.05)


def _metadata(error):
    return {k: v for k, v in (error.trailing_metadata() or ())}


def rpc_error(fn):
    """Runs fn, which must fail with a gRPC status; returns that error."""
    try:
        response = fn()
    except grpc.RpcError as e:
        return e
    raise Mismatch(f"expected an error status, got a response: {response!r}")


def check_kv(cluster, key_prefix):
    pb = cluster.pb
    client_id = random.getrandbits(63) | 1
    seq = 0

    def session():
        nonlocal seq
        seq += 1
        return pb.Session(client_id=client_id, seq=seq)

    key = f"{key_prefix}/greeting"
    value = b"hello from grpcio \x00\xff"

    set_request = pb.SetRequest(session=session(), key=key, value=value)
    set_index = cluster.call("Set", set_request).index
    check(set_index > 0, f"Set returned index {set_index}, expected > 0")
    log(f"ok   Set {key!r} -> index {set_index}")

    retry_index = cluster.call("Set", set_request).index
    check(
        retry_index == set_index,
        f"a retried Set (same client_id/seq) returned index {retry_index}, expected the stored {set_index}",
    )
    log(f"ok   retried Set with the same session returned the stored index {retry_index}")

    got = cluster.call("Get", pb.GetRequest(key=key))
    check(got.HasField("value"), f"Get {key!r}: value unset, expected {value!r}")
    check(got.value == value, f"Get {key!r} returned {got.value!r}, expected {value!r}")
    check(got.index >= set_index, f"Get served at index {got.index}, before the Set's {set_index}")
    log(f"ok   Get {key!r} -> {got.value!r} at index {got.index}")

    missing = cluster.call("Get", pb.GetRequest(key=f"{key_prefix}/never-set"))
    check(not missing.HasField("value"), f"Get of an unset key returned {missing.value!r}, expected unset")
    log("ok   Get of an unset key -> value unset")

    cas_key = f"{key_prefix}/cas"
    first = cluster.call("Cas", pb.CasRequest(session=session(), key=cas_key, new_value=b"v1"))
    check(first.applied, f"Cas expected=absent on an absent key: applied=false ({first})")
    check(not first.HasField("previous"), f"Cas on an absent key: previous={first.previous!r}, expected unset")
    log(f"ok   Cas {cas_key!r} absent -> v1 applied at index {first.index}")

    again = cluster.call("Cas", pb.CasRequest(session=session(), key=cas_key, new_value=b"other"))
    check(not again.applied, "Cas expected=absent on a present key was applied")
    check(
        again.HasField("previous") and again.previous == b"v1",
        f"Cas expected=absent on a present key: previous={again.previous!r}, expected b'v1'",
    )
    log("ok   Cas expected=absent on a present key -> not applied, previous v1")

    wrong = cluster.call(
        "Cas", pb.CasRequest(session=session(), key=cas_key, expected=b"nope", new_value=b"other")
    )
    check(not wrong.applied, "Cas with a wrong expected value was applied")
    check(wrong.previous == b"v1", f"Cas with a wrong expected value: previous={wrong.previous!r}, expected b'v1'")
    log("ok   Cas expected=wrong -> not applied")

    swap = cluster.call("Cas", pb.CasRequest(session=session(), key=cas_key, expected=b"v1", new_value=b"v2"))
    check(swap.applied, f"Cas v1 -> v2 with the current value expected was not applied ({swap})")
    check(swap.previous == b"v1", f"Cas v1 -> v2: previous={swap.previous!r}, expected b'v1'")
    log(f"ok   Cas {cas_key!r} v1 -> v2 applied at index {swap.index}")

    after = cluster.call("Get", pb.GetRequest(key=cas_key))
    check(after.value == b"v2", f"Get {cas_key!r} after Cas returned {after.value!r}, expected b'v2'")
    log(f"ok   Get {cas_key!r} -> v2")

    noop = cluster.call("NoOp", pb.NoOpRequest(session=session()))
    check(noop.index > swap.index, f"NoOp index {noop.index} not after the last Cas index {swap.index}")
    log(f"ok   NoOp -> index {noop.index}")

    status = cluster.call("Status", pb.StatusRequest())
    check(status.role == pb.ROLE_LEADER, f"Status on the leader: role {pb.Role.Name(status.role)}")
    check(1 <= status.node_id <= len(cluster.addrs), f"Status node_id {status.node_id} out of range")
    check(status.term >= 1, f"Status term {status.term}, expected >= 1")
    check(status.leader_id == status.node_id, f"leader reports leader_id {status.leader_id}, its id is {status.node_id}")
    check(
        status.leader_addr == cluster.leader,
        f"leader reports leader_addr {status.leader_addr!r}, it was reached at {cluster.leader!r}",
    )
    check(status.commit_index >= noop.index, f"commit_index {status.commit_index} < NoOp index {noop.index}")
    check(status.applied_index >= noop.index, f"applied_index {status.applied_index} < NoOp index {noop.index}")
    check(
        status.last_log_index >= status.commit_index,
        f"last_log_index {status.last_log_index} < commit_index {status.commit_index}",
    )
    log(
        f"ok   Status: node {status.node_id} {pb.Role.Name(status.role)} term {status.term} "
        f"commit {status.commit_index} applied {status.applied_index} last {status.last_log_index}"
    )

    leader_stub = cluster.stubs[cluster.leader]
    for name, call in [
        ("Set", lambda: leader_stub.Set(pb.SetRequest(session=session(), key="", value=b"x"), timeout=RPC_TIMEOUT_S)),
        ("Get", lambda: leader_stub.Get(pb.GetRequest(key=""), timeout=RPC_TIMEOUT_S)),
    ]:
        e = rpc_error(call)
        check(
            e.code() == grpc.StatusCode.INVALID_ARGUMENT,
            f"{name} with an empty key: {e.code().name} {e.details()!r}, expected INVALID_ARGUMENT",
        )
        check(bool(e.details()), f"{name} with an empty key: INVALID_ARGUMENT without a message")
        log(f"ok   {name} with an empty key -> INVALID_ARGUMENT {e.details()!r}")

    return status, key, value


def check_follower(cluster, leader_status, key):
    pb = cluster.pb
    followers = [a for a in cluster.addrs if a != cluster.leader]
    if not followers:
        return
    addr = followers[0]
    e = rpc_error(lambda: cluster.stubs[addr].Get(pb.GetRequest(key=key), timeout=RPC_TIMEOUT_S))
    check(
        e.code() == grpc.StatusCode.FAILED_PRECONDITION,
        f"Get on follower {addr}: {e.code().name} {e.details()!r}, expected FAILED_PRECONDITION",
    )
    md = _metadata(e)
    check(
        md.get("leader-id") == str(leader_status.node_id),
        f"follower {addr} hints leader-id {md.get('leader-id')!r}, expected {leader_status.node_id}",
    )
    check(
        md.get("leader-addr") == cluster.leader,
        f"follower {addr} hints leader-addr {md.get('leader-addr')!r}, expected {cluster.leader!r}",
    )
    log(f"ok   Get on follower {addr} -> FAILED_PRECONDITION {e.details()!r}, metadata {md}")


def check_health(addr):
    with grpc.insecure_channel(addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in [KV_SERVICE, ""]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
            check(
                reply.status == health_pb2.HealthCheckResponse.SERVING,
                f"health of {service!r} on {addr}: "
                f"{health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}, expected SERVING",
            )
            log(f"ok   health {service!r} on {addr} -> SERVING")
        e = rpc_error(
            lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT_S)
        )
        check(
            e.code() == grpc.StatusCode.NOT_FOUND,
            f"health of an unknown service: {e.code().name}, expected NOT_FOUND",
        )
        log("ok   health of an unknown service -> NOT_FOUND")


def reflect(channel, version, request):
    """Sends one request on the reflection stream of `version`. Both versions
    share one wire format, so the v1alpha messages serve for v1 too."""
    call = channel.stream_stream(
        REFLECTION_METHODS[version],
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(call(iter([request]), timeout=RPC_TIMEOUT_S))
    check(len(responses) == 1, f"reflection {version}: {len(responses)} responses to one request")
    response = responses[0]
    if response.HasField("error_response"):
        err = response.error_response
        raise Mismatch(f"reflection {version}: error {err.error_code} {err.error_message!r} for {request}")
    return response


def pool_from_files(serialized_files):
    """A descriptor pool holding the given FileDescriptorProtos, added after
    their dependencies."""
    files = {}
    for data in serialized_files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(data)
        files[proto.name] = proto
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        check(name in files, f"reflection did not return {name!r}, a dependency (got {sorted(files)})")
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool, files


def dynamic_get(channel, pool, key):
    """Get through classes made from a reflected descriptor only."""
    service = pool.FindServiceByName(KV_SERVICE)
    method = service.methods_by_name["Get"]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    request = request_class()
    request.key = key
    return call(request, timeout=RPC_TIMEOUT_S)


def check_reflection(addr, kv_pb2, key, value):
    expected_methods = [m.name for m in kv_pb2.DESCRIPTOR.services_by_name["Kv"].methods]
    offered = []
    with grpc.insecure_channel(addr) as channel:
        for version in ["v1alpha", "v1"]:
            try:
                listed = reflect(channel, version, reflection_pb2.ServerReflectionRequest(list_services=""))
            except grpc.RpcError as e:
                if version == "v1" and e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log("note reflection v1 not offered by the server (UNIMPLEMENTED); v1alpha checked")
                    continue
                raise Mismatch(f"reflection {version} list_services: {e.code().name} {e.details()!r}")
            names = sorted(s.name for s in listed.list_services_response.service)
            check(KV_SERVICE in names, f"reflection {version} lists {names}, without {KV_SERVICE}")
            check(
                "grpc.health.v1.Health" in names,
                f"reflection {version} lists {names}, without grpc.health.v1.Health",
            )
            log(f"ok   reflection {version} lists {names}")

            by_symbol = reflect(
                channel, version, reflection_pb2.ServerReflectionRequest(file_containing_symbol=KV_SERVICE)
            )
            pool, files = pool_from_files(by_symbol.file_descriptor_response.file_descriptor_proto)
            check(KV_PROTO in files, f"reflection {version}: {KV_SERVICE} came in {sorted(files)}, not {KV_PROTO}")
            methods = [m.name for m in pool.FindServiceByName(KV_SERVICE).methods]
            check(
                methods == expected_methods,
                f"reflection {version}: {KV_SERVICE} has methods {methods}, {KV_PROTO} has {expected_methods}",
            )
            log(f"ok   reflection {version} file_containing_symbol {KV_SERVICE} -> {KV_PROTO}, methods {methods}")

            by_name = reflect(channel, version, reflection_pb2.ServerReflectionRequest(file_by_filename=KV_PROTO))
            names = [
                descriptor_pb2.FileDescriptorProto.FromString(d).name
                for d in by_name.file_descriptor_response.file_descriptor_proto
            ]
            check(KV_PROTO in names, f"reflection {version} file_by_filename {KV_PROTO} returned {names}")
            log(f"ok   reflection {version} file_by_filename {KV_PROTO}")

            got = dynamic_get(channel, pool, key)
            check(
                got.HasField("value") and got.value == value,
                f"dynamic Get {key!r} (reflection {version}) returned {got.value!r}, expected {value!r}",
            )
            log(f"ok   dynamic stub from reflection {version}: Get {key!r} -> {got.value!r}")
            offered.append(version)

        # The stock client-side database of grpcio-reflection, as generic tools use it.
        database = ProtoReflectionDescriptorDatabase(channel)
        services = list(database.get_services())
        check(KV_SERVICE in services, f"ProtoReflectionDescriptorDatabase lists {services}")
        pool = descriptor_pool.DescriptorPool(database)
        got = dynamic_get(channel, pool, key)
        check(got.value == value, f"Get via ProtoReflectionDescriptorDatabase returned {got.value!r}")
        log(f"ok   ProtoReflectionDescriptorDatabase pool: Get {key!r} -> {got.value!r}")
    check("v1alpha" in offered, "reflection v1alpha not checked")
    return offered


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addrs", help="comma-separated node addresses, e.g. 127.0.0.1:7001,127.0.0.1:7002")
    parser.add_argument(
        "--proto-root",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto"),
        help="directory holding raftkv/v1/kv.proto (default: the repository's proto/)",
    )
    args = parser.parse_args()
    addrs = [a.strip() for a in args.addrs.split(",") if a.strip()]
    if not addrs:
        parser.error("no address given")
    proto_root = os.path.normpath(args.proto_root)
    if not os.path.isfile(os.path.join(proto_root, KV_PROTO)):
        parser.error(f"{KV_PROTO} not found under {proto_root}")

    log(f"grpcio {grpc.__version__}, cluster {addrs}")
    try:
        with tempfile.TemporaryDirectory(prefix="raftkv-stubs-") as out_dir:
            kv_pb2, kv_pb2_grpc = generate_stubs(proto_root, out_dir)
            cluster = Cluster(addrs, kv_pb2, kv_pb2_grpc)
            try:
                leader, _ = cluster.find_leader()
                log(f"ok   leader at {leader}")
                key_prefix = f"interop-{random.getrandbits(32):08x}"
                status, key, value = check_kv(cluster, key_prefix)
                check_follower(cluster, status, key)
                for addr in addrs:
                    check_health(addr)
                offered = check_reflection(cluster.leader, kv_pb2, key, value)
            finally:
                cluster.close()
    except Mismatch as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    except grpc.RpcError as e:
        print(f"FAIL: unexpected gRPC status {e.code().name}: {e.details()!r}", file=sys.stderr, flush=True)
        return 1
    log(f"PASS: stubs, Kv RPCs, health and reflection ({', '.join(offered)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
