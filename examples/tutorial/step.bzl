"""tutorial_step: one tutorial program, and the test that pins its output."""

def tutorial_step(name, deps, backends = [""]):
    """A cc_binary `name` (name.cc) and a `name_test` per backend.

    Each test runs the binary and compares its stdout with name.out exactly.
    backends: "" (the default, kAuto: io_uring where it works) and/or
    "epoll" (POLLUX_BACKEND=epoll), for the steps that build a Runtime.
    """
    native.cc_binary(
        name = name,
        srcs = [name + ".cc"],
        deps = deps,
    )
    for backend in backends:
        native.sh_test(
            name = name + "_test" + ("_" + backend if backend else ""),
            size = "small",
            srcs = ["expect_output_test.sh"],
            args = ["$(location :%s)" % name, "$(location :%s.out)" % name],
            data = [":" + name, name + ".out"],
            env = {"POLLUX_BACKEND": backend} if backend else {},
            # CI's epoll step runs these (tests/both_backends.bzl).
            tags = [backend] if backend else [],
        )
