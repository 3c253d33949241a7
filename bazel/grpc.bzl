"""C++ code generated from a .proto with Debian's protoc and grpc_cpp_plugin."""

def brrr_grpc_library(name, proto, proto_path, import_root, deps = [], visibility = None, testonly = False):
    """Messages and gRPC stubs of one .proto, as a cc_library.

    Args:
      name: the cc_library.
      proto: label of the .proto file.
      proto_path: its path relative to import_root, as other protos import it, for example
          "brrr/admin/v1/admin.proto". The generated headers keep it: "brrr/admin/v1/admin.pb.h".
      import_root: the directory (from the execution root) that proto_path is relative to.
      deps: brrr_grpc_library targets of the protos it imports.
      visibility: of the cc_library.
      testonly: for targets only tests may use.
    """
    base = proto_path[:-len(".proto")]
    srcs = [base + ".pb.cc", base + ".grpc.pb.cc"]
    hdrs = [base + ".pb.h", base + ".grpc.pb.h"]
    native.genrule(
        name = name + "_generate",
        testonly = testonly,
        srcs = [proto],
        outs = srcs + hdrs,
        cmd = ("protoc -I{root} --cpp_out=$(RULEDIR) --grpc_out=$(RULEDIR) " +
               "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) {root}/{path}").format(
            root = import_root,
            path = proto_path,
        ),
    )
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        includes = ["."],
        deps = deps + ["@system//:grpc++"],
        visibility = visibility,
        testonly = testonly,
    )
