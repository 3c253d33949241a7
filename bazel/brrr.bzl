"""Target macros for the whole tree: shared warnings, test defaults, reactor plugins, fuzz targets.

Every BUILD file loads these instead of the native rules, so flags live in one place.
"""

# Our own code builds warning-free. Generated code (protobuf/gRPC) does not use these.
BRRR_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
    # g++ 12 at -O1 (the ASan config) flags std::regex and std::function internals as "maybe
    # uninitialized": false positives in system headers. It stays a warning, not an error.
    "-Wno-error=maybe-uninitialized",
    # A coroutine that awaits a task which finishes at once resumes through a symmetric
    # transfer; g++ makes that a tail call (constant stack) only with sibling-call
    # optimisation, which -O0 leaves off. See runtime/task.h.
    "-foptimize-sibling-calls",
]

BRRR_C_COPTS = BRRR_COPTS + ["-std=c11", "-D_GNU_SOURCE"]

def brrr_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = BRRR_COPTS + copts, **kwargs)

def brrr_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = BRRR_COPTS + copts, **kwargs)

def brrr_cc_test(name, deps = [], copts = [], data = [], size = "small", **kwargs):
    """A GoogleTest test with gtest_main (and gmock) linked in.

    Its runfiles carry the ThreadSanitizer suppressions that --config=tsan names.
    """
    native.cc_test(
        name = name,
        copts = BRRR_COPTS + copts,
        data = data + ["//tools:tsan_suppressions"],
        deps = deps + ["@system//:gtest_main"],
        size = size,
        **kwargs
    )

def brrr_cc_benchmark(name, deps = [], copts = [], **kwargs):
    """A Google Benchmark program. Run with -c opt: bazel run -c opt //bench:NAME."""
    native.cc_binary(
        name = name,
        copts = BRRR_COPTS + copts,
        deps = deps + ["@system//:benchmark_main"],
        **kwargs
    )

# Plugin code: C, everything hidden but the entry point, position-independent.
_PLUGIN_COPTS = BRRR_C_COPTS + ["-fvisibility=hidden", "-fPIC"]

def reactor_plugin_library(name, srcs, hdrs = [], deps = [], linkopts = []):
    """C code that several reactor plugins link in statically (reactors/common).

    Built like a plugin's own code (hidden symbols, -fPIC), against //runtime:reactor_abi (and
    //runtime:hot_path, one macro) and libc only, so a plugin that links it still exports its
    one entry point and nothing else.
    `linkopts` reach every plugin that links it.
    """
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        copts = _PLUGIN_COPTS,
        linkopts = linkopts,
        deps = deps + ["//runtime:hot_path", "//runtime:reactor_abi"],
        # The fault-injection test plugins (tests/reactors/faults) link the same code.
        visibility = ["//reactors:__subpackages__", "//tests/reactors/faults:__pkg__"],
    )

def reactor_plugin(name, srcs, deps = [], copts = [], linkopts = [], visibility = None, testonly = False):
    """A reactor backend plugin: lib<name>.so, written in C against //runtime:reactor_abi.

    Everything is hidden except the one entry point the plugin marks
    BRRR_REACTOR_EXPORT; the plugin links libc (and whatever `linkopts` adds) only.
    """
    # Not name + "_impl": a cc_library's outputs include lib<its name>.so, and
    # libbrrr_reactor_NAME_impl.so beside the plugin in bazel-bin/reactors would be taken for a
    # backend "NAME_impl" by a --plugin_dir there and by deploy/README.md's install line.
    native.cc_library(
        name = "code_of_" + name,
        srcs = srcs,
        copts = _PLUGIN_COPTS + copts,
        deps = deps + ["//runtime:hot_path", "//runtime:reactor_abi"],
        alwayslink = True,
        testonly = testonly,
        visibility = ["//visibility:private"],
    )
    native.cc_binary(
        name = "lib" + name + ".so",
        linkshared = True,
        deps = [":code_of_" + name],
        # The toolchain appends -lstdc++ -lm to every link; --as-needed drops what a C plugin
        # does not use, so the plugin's only dependencies are libc (and its linkopts).
        linkopts = ["-Wl,--as-needed"] + linkopts,
        testonly = testonly,
        visibility = visibility,
    )

def brrr_fuzz_target(name, srcs, deps = [], copts = []):
    """A libFuzzer target: `srcs` define LLVMFuzzerTestOneInput; its seeds are corpus/<name>/.

    It builds only with --config=fuzz (clang, libFuzzer, ASan and UBSan), and is tagged manual so
    that `bazel build //...` and `bazel test //...` (g++) leave it out; tools/fuzz.sh builds and
    runs every target tagged "fuzz".
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = BRRR_COPTS + copts + select({
            "//bazel:fuzzing": ["-DBRRR_FUZZING"],
            "//conditions:default": [],
        }),
        linkopts = select({
            "//bazel:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps,
        data = native.glob(["corpus/" + name + "/**"]),
        tags = ["manual", "fuzz"],
        testonly = True,
    )
