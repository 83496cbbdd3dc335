"""Tests that run on both I/O backends (DESIGN §5: every test above reactor/)."""

def cc_test_both_backends(name, **kwargs):
    """A cc_test, and `name`_epoll: the same test on the epoll backend.

    The second target sets POLLUX_BACKEND=epoll, which overrides the
    runtime's default BackendKind::kAuto (runtime/runtime.h), so every
    runtime the test builds without naming a backend runs on epoll. Both
    targets report their own test.xml, so CI counts both.
    """
    native.cc_test(name = name, **kwargs)
    epoll = dict(kwargs)
    env = dict(epoll.pop("env", {}))
    env["POLLUX_BACKEND"] = "epoll"
    native.cc_test(name = name + "_epoll", env = env, **epoll)
