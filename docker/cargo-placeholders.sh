#!/bin/sh
# Creates a placeholder source file for every build target of the Cargo.toml in each package
# directory given (default: .) whose file is missing, and prints the paths it created (one a
# line), for the Dockerfile's dependency layer: cargo reads every target of the workspace's
# manifests before it builds anything, and fails on a declared target whose file it cannot find
# (a bench such as `rotation`, the test bed's library). Reading the targets from each Cargo.toml
# itself keeps the placeholders in step with it; tests/integration/image.rs replays the
# Dockerfile's builder stage so a target this misses fails CI.
#
# Targets: [lib], [[bin]], [[test]], [[bench]], [[example]], with `path` or cargo's default path
# for the name; src/lib.rs and src/main.rs always (cargo also finds those without a section).
set -eu
[ "$#" -gt 0 ] || set -- .
for package in "$@"; do
awk '
    function value(line) {
        sub(/^[^=]*=[ \t]*/, "", line)
        sub(/[ \t]*(#.*)?$/, "", line)
        gsub(/^["\047]|["\047]$/, "", line)
        return line
    }
    function flush() {
        if (path == "" && kind == "lib") path = "src/lib.rs"
        if (path == "" && kind == "bin") path = (name == package ? "src/main.rs" : "src/bin/" name ".rs")
        if (path == "" && kind == "test") path = "tests/" name ".rs"
        if (path == "" && kind == "bench") path = "benches/" name ".rs"
        if (path == "" && kind == "example") path = "examples/" name ".rs"
        if (path != "") print kind, path
        kind = ""; name = ""; path = ""
    }
    BEGIN { print "lib src/lib.rs"; print "bin src/main.rs" }
    /^[ \t]*\[/ {
        flush()
        section = $0
        gsub(/[][ \t]/, "", section)
        sub(/#.*/, "", section)
        if (section ~ /^(package|lib|bin|test|bench|example)$/) kind = section
        next
    }
    kind == "package" && /^[ \t]*name[ \t]*=/ { package = value($0) }
    kind != "package" && kind != "" && /^[ \t]*name[ \t]*=/ { name = value($0) }
    kind != "package" && kind != "" && /^[ \t]*path[ \t]*=/ { path = value($0) }
    END { flush() }
' "$package/Cargo.toml" | while read -r kind path; do
    path="${package%/}/$path"
    path="${path#./}"
    if [ -e "$path" ]; then
        continue
    fi
    mkdir -p "$(dirname "$path")"
    # A library stays empty; every other target is a program.
    if [ "$kind" = lib ]; then : > "$path"; else echo 'fn main() {}' > "$path"; fi
    echo "$path"
done
done
