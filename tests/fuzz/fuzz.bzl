"""Fuzz targets (tests/fuzz/README.md): one LLVMFuzzerTestOneInput, a libFuzzer
binary for --config=fuzz and a corpus replay test for every build."""

def pollux_fuzz_target(name, srcs, deps = [], **kwargs):
    """`name`_fuzzer and `name`_replay_test for the target function in `srcs`.

    srcs define `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)`
    and trap (abort) on a property violation. The seed corpus is
    corpus/`name`/ beside this file.

    - `name`_fuzzer: with --config=fuzz (define pollux_fuzz=1), libFuzzer's
      main (-fsanitize=fuzzer); otherwise the replayer's main, so that
      `bazel build //...` builds it with any compiler.
    - `name`_replay_test: an ordinary cc_test, never linked with libFuzzer,
      that runs the target function on every corpus file (plain CI and the
      sanitizer configs run it).
    """
    native.cc_library(
        name = name + "_target",
        testonly = True,
        srcs = srcs,
        deps = deps,
        # The function is only referenced by the main linked beside it.
        alwayslink = True,
        **kwargs
    )
    corpus = native.glob(["corpus/" + name + "/*"])
    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        deps = [":" + name + "_target"] + select({
            ":fuzzing": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.cc_test(
        name = name + "_replay_test",
        size = "small",
        deps = [":" + name + "_target", ":replay_main"],
        data = corpus,
        args = ["tests/fuzz/corpus/" + name],
    )
