#!/bin/sh
echo "pollux does not produce coverage through Bazel's coverage tools (offline build)." >&2
exit 1
