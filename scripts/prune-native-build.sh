#!/bin/sh
# Removes what the native addons' compile leaves in node_modules and the runtime never loads, so
# the image carries only the built binary: re2 loads build/Release/re2.node and nothing else (its
# object files, about 70 MB, and its vendored C++ sources are build inputs). The binary's debug
# symbols go too (strip, when the build image has it). Run from the directory holding node_modules.
set -eu
re2=node_modules/re2
test -f "$re2/build/Release/re2.node" || { echo "prune-native-build: $re2/build/Release/re2.node is missing" >&2; exit 1; }
rm -rf "$re2/build/Release/obj.target" "$re2/build/Release/.deps" "$re2/vendor" "$re2/lib"
if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$re2/build/Release/re2.node"; fi
