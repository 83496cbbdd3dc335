"""Tests that run on both I/O backends (DESIGN §5: every test above reactor/)
and on every runtime flavour (the runtime-level tests)."""

def _cc_test_with_env(name, extra_env, kwargs, extra_tags = []):
    """A cc_test of `kwargs` whose environment also has `extra_env`."""
    variant = dict(kwargs)
    env = dict(variant.pop("env", {}))
    env.update(extra_env)
    tags = list(variant.pop("tags", [])) + extra_tags
    native.cc_test(name = name, env = env, tags = tags, **variant)

def cc_test_both_backends(name, **kwargs):
    """A cc_test, and `name`_epoll: the same test on the epoll backend.

    The second target sets POLLUX_BACKEND=epoll, which overrides the
    runtime's default BackendKind::kAuto (runtime/runtime.h), so every
    runtime the test builds without naming a backend runs on epoll. Both
    targets report their own test.xml, so CI counts both. The second one is
    tagged `epoll`: CI's plain step runs `--test_tag_filters=-epoll` and its
    epoll step `--test_tag_filters=epoll`, so each case is counted once, in
    the step that names its backend.
    """
    native.cc_test(name = name, **kwargs)
    _cc_test_with_env(name + "_epoll", {"POLLUX_BACKEND": "epoll"}, kwargs, ["epoll"])

def cc_test_every_flavour(name, **kwargs):
    """cc_test_both_backends, and the test on the two multi-thread flavours.

    `name`_multi_thread and `name`_thread_per_core set POLLUX_TEST_FLAVOUR,
    which tests/flavour.h's runtime_builder() reads: every runtime the test
    builds through it is multi_thread(2) or thread_per_core(2) (on the
    default backend; runtime/flavours_test runs both flavours on epoll too).
    Tests that only make sense on current_thread skip themselves there.
    """
    cc_test_both_backends(name = name, **kwargs)
    for flavour in ["multi_thread", "thread_per_core"]:
        _cc_test_with_env(name + "_" + flavour, {"POLLUX_TEST_FLAVOUR": flavour}, kwargs)
