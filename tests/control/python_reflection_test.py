#!/usr/bin/python3
"""A client with no brrr .proto: Python finds and calls brrr-echo's admin plane through server
reflection, the way grpcurl does, in both versions of the protocol (grpc.reflection.v1 and
v1alpha).

For each version it lists the services, fetches the files that describe brrr.admin.v1.Admin
and grpc.health.v1.Health, builds a DescriptorPool and message classes from them at run time,
sends bytes through the echo port, then calls Admin/GetStats and Health/Check with generic
calls. Only the reflection messages are generated (by protoc --python_out, into --generated);
nothing of brrr is.

Run by python_reflection_test.sh, which starts brrr-echo with --loops=2. Exits 0 if every
check holds, 1 with a message saying which one did not.

Needs Debian's python3-grpcio and python3-protobuf: run it with /usr/bin/python3.
"""

import argparse
import importlib.util
import os
import re
import socket
import sys

try:
    import grpc
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool
    from google.protobuf import json_format
    from google.protobuf import message_factory
except ImportError as e:
    sys.exit(f"python_reflection_test: FAIL: {e}; install python3-grpcio and python3-protobuf "
             "(tools/bootstrap.sh) and run with /usr/bin/python3")

VERSIONS = ("v1", "v1alpha")
SERVICES = {
    "brrr.admin.v1.Admin",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
LOOPS = 2  # python_reflection_test.sh starts brrr-echo with --loops=2
TIMEOUT_S = 10


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def load_reflection_messages(generated_dir, version):
    """The module protoc generated from grpc/reflection/<version>/reflection.proto.

    Loaded from its path: the import path grpc.reflection.* would collide with grpcio's
    own `grpc` package.
    """
    path = os.path.join(generated_dir, "grpc", "reflection", version, "reflection_pb2.py")
    spec = importlib.util.spec_from_file_location(f"brrr_test_reflection_{version}_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ReflectionClient:
    """grpc.reflection.<version>.ServerReflection/ServerReflectionInfo, one stream per question."""

    def __init__(self, channel, version, messages):
        self.version = version
        self._messages = messages
        self._call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=messages.ServerReflectionRequest.SerializeToString,
            response_deserializer=messages.ServerReflectionResponse.FromString)

    def ask(self, **question):
        request = self._messages.ServerReflectionRequest(**question)
        responses = list(self._call(iter([request]), timeout=TIMEOUT_S))
        check(len(responses) == 1, f"{self.version}: {question}: {len(responses)} responses, want 1")
        response = responses[0]
        check(response.original_request == request, f"{self.version}: {question}: original_request not echoed")
        check(not response.HasField("error_response"),
              f"{self.version}: {question}: error {response.error_response.error_code}: "
              f"{response.error_response.error_message}")
        return response

    def services(self):
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def files_for_symbol(self, symbol):
        """The file that defines `symbol` and all it imports, by name.

        Imports missing from an answer are fetched by file name, as grpcurl does.
        """
        files = {}
        answer = self.ask(file_containing_symbol=symbol)
        self._keep(answer, files)
        check(files, f"{self.version}: {symbol}: no file in the answer")
        missing = [d for f in list(files.values()) for d in f.dependency if d not in files]
        while missing:
            name = missing.pop()
            if name in files:
                continue
            self._keep(self.ask(file_by_filename=name), files)
            check(name in files, f"{self.version}: file_by_filename {name}: not in the answer")
            missing.extend(d for d in files[name].dependency if d not in files)
        return files

    @staticmethod
    def _keep(answer, files):
        for serialized in answer.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
            files[file.name] = file


def build_pool(files):
    """A DescriptorPool of `files` (name -> FileDescriptorProto), each added after its imports
    (the C++ implementation of python3-protobuf builds a file when it is added)."""
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        added.add(name)
        for dependency in files[name].dependency:
            add(dependency)
        pool.Add(files[name])

    for name in files:
        add(name)
    return pool


def message_class(pool, full_name):
    descriptor = pool.FindMessageTypeByName(full_name)
    get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
    if get_class is not None:
        return get_class(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def unary_method(channel, pool, service_name, method_name):
    """A callable for a unary method found in `pool`, with its request and response classes."""
    service = pool.FindServiceByName(service_name)
    method = service.methods_by_name.get(method_name)
    check(method is not None, f"{service_name} has no method {method_name}")
    shape = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(shape)
    check(not shape.client_streaming and not shape.server_streaming, f"{service_name}/{method_name} is not unary")
    request_class = message_class(pool, method.input_type.full_name)
    response_class = message_class(pool, method.output_type.full_name)
    call = channel.unary_unary(f"/{service_name}/{method_name}",
                               request_serializer=request_class.SerializeToString,
                               response_deserializer=response_class.FromString)
    return call, request_class, response_class


def echo(port, payload):
    """Sends `payload` to the echo server and reads it back."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as connection:
        connection.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = connection.recv(65536)
            check(chunk, f"echo: connection closed after {len(received)} of {len(payload)} bytes")
            received += chunk
    check(received == payload, "echo: the bytes that came back differ from those sent")


def check_version(channel, version, messages, echo_port, sent_so_far):
    """Every check for one version of reflection. Returns the bytes sent to the echo port so far."""
    reflection = ReflectionClient(channel, version, messages)

    services = reflection.services()
    check(SERVICES <= set(services), f"{version}: list_services gave {services}, missing {SERVICES - set(services)}")

    admin_files = reflection.files_for_symbol("brrr.admin.v1.Admin")
    check("brrr/admin/v1/admin.proto" in admin_files, f"{version}: brrr.admin.v1.Admin: got files {list(admin_files)}")
    admin_pool = build_pool(admin_files)
    get_stats, stats_request, _ = unary_method(channel, admin_pool, "brrr.admin.v1.Admin", "GetStats")

    payload = os.urandom(50000)
    echo(echo_port, payload)
    sent_so_far += len(payload)
    stats = get_stats(stats_request(), timeout=TIMEOUT_S)
    check(len(stats.loops) == LOOPS, f"{version}: GetStats: {len(stats.loops)} loop entries, want {LOOPS}")
    check(stats.total.bytes_in >= sent_so_far,
          f"{version}: GetStats: total.bytes_in {stats.total.bytes_in} < {sent_so_far} bytes sent")

    health_files = reflection.files_for_symbol("grpc.health.v1.Health")
    health_pool = build_pool(health_files)
    health_check, health_request, health_response = unary_method(channel, health_pool, "grpc.health.v1.Health",
                                                                 "Check")
    serving = health_response.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_name["SERVING"].number
    for service in ("", "brrr.admin.v1.Admin"):
        status = health_check(health_request(service=service), timeout=TIMEOUT_S).status
        check(status == serving, f"{version}: Health/Check({service!r}): status {status}, want SERVING ({serving})")

    print(f"python_reflection_test: {version}: {len(services)} services; GetStats: {len(stats.loops)} loops, "
          f"{stats.total.bytes_in} bytes in; health SERVING")
    return sent_so_far


def echoed_fields(request, response):
    """Checks that `response` holds, under the same name, every field set in `request` that its
    type has (InjectTask answers with the injection, SetThrottle with the throttles now in
    force). Returns how many fields it compared."""
    compared = 0
    for field, value in request.ListFields():
        if field.name not in response.DESCRIPTOR.fields_by_name:
            continue
        got = getattr(response, field.name)
        check(got == value, f"{type(request).__name__}.{field.name} = {value!r}, but the answer has {got!r}")
        compared += 1
    return compared


def check_readme_examples(channel, admin_pool, readme):
    """Sends the request bodies of the README's `grpcurl -d '...' ... Service/Method` lines, parsed
    from JSON into reflection-built messages as grpcurl parses them, and checks what each call
    answers: a unary call's answer holds the request's fields, a stream sends `count` messages
    (each with every loop, uptime rising) when the request has a count."""
    examples = re.findall(r"grpcurl -plaintext -d '(\{.*?\})' \S+ brrr\.admin\.v1\.Admin/(\w+)", open(readme).read())
    check(len(examples) >= 3, f"{readme}: found only {len(examples)} grpcurl -d examples")
    service = admin_pool.FindServiceByName("brrr.admin.v1.Admin")
    for body, method_name in examples:
        method = service.methods_by_name.get(method_name)
        check(method is not None, f"README: brrr.admin.v1.Admin has no method {method_name}")
        request_class = message_class(admin_pool, method.input_type.full_name)
        response_class = message_class(admin_pool, method.output_type.full_name)
        try:
            request = json_format.Parse(body, request_class())
        except json_format.ParseError as e:
            raise CheckFailed(f"README: {method_name} body {body} does not parse: {e}")
        path = f"/brrr.admin.v1.Admin/{method_name}"
        shape = descriptor_pb2.MethodDescriptorProto()
        method.CopyToProto(shape)
        if shape.server_streaming:
            call = channel.unary_stream(path, request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
            answers = list(call(request, timeout=60))
            check(answers, f"README: {method_name} {body} streamed nothing")
            count = getattr(request, "count", 0)
            if count:
                check(len(answers) == count, f"README: {method_name} {body}: {len(answers)} messages, want {count}")
            if "uptime_seconds" in response_class.DESCRIPTOR.fields_by_name:
                uptimes = [a.uptime_seconds for a in answers]
                check(uptimes == sorted(set(uptimes)), f"README: {method_name}: uptimes not rising: {uptimes}")
            if "loops" in response_class.DESCRIPTOR.fields_by_name:
                check(all(len(a.loops) == LOOPS for a in answers), f"README: {method_name}: a message without every loop")
            what = f"{len(answers)} messages"
        else:
            call = channel.unary_unary(path, request_serializer=request_class.SerializeToString,
                                       response_deserializer=response_class.FromString)
            answer = call(request, timeout=TIMEOUT_S)
            compared = echoed_fields(request, answer)
            check(compared > 0, f"README: {method_name} {body}: the answer ({response_class.__name__}) has none of the "
                                f"request's fields; say here what to check of it")
            what = f"the answer holds the request's {compared} field(s)"
        print(f"python_reflection_test: README example {method_name} {body}: {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin", required=True, help="host:port of brrr-echo's admin plane")
    parser.add_argument("--echo_port", type=int, required=True, help="brrr-echo's echo port on 127.0.0.1")
    parser.add_argument("--generated", required=True, help="where protoc --python_out wrote the reflection messages")
    parser.add_argument("--readme", help="README.md whose grpcurl -d examples to send")
    args = parser.parse_args()

    sent = 0
    with grpc.insecure_channel(args.admin) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
            for version in VERSIONS:
                sent = check_version(channel, version, load_reflection_messages(args.generated, version),
                                     args.echo_port, sent)
            if args.readme:
                reflection = ReflectionClient(channel, VERSIONS[0], load_reflection_messages(args.generated, VERSIONS[0]))
                check_readme_examples(channel, build_pool(reflection.files_for_symbol("brrr.admin.v1.Admin")),
                                      args.readme)
        except CheckFailed as e:
            sys.exit(f"python_reflection_test: FAIL: {e}")
        except grpc.RpcError as e:
            sys.exit(f"python_reflection_test: FAIL: RPC failed: {e.code()}: {e.details()}")
        except OSError as e:
            sys.exit(f"python_reflection_test: FAIL: echo port {args.echo_port}: {e}")
        except grpc.FutureTimeoutError:
            sys.exit(f"python_reflection_test: FAIL: no connection to {args.admin} within {TIMEOUT_S} s")
    print("python_reflection_test: PASS")


if __name__ == "__main__":
    main()
