#!/usr/bin/env bash
# Builds the npm packages behind `npx humanping-mcp` for one platform from a local build:
#
#     scripts/build-npm.sh [--binary PATH] [--platform KEY] [--out DIR] [--no-strip]
#
# --binary    the humanping binary to ship (default: $HUMANPING_BIN, else target/release/humanping)
# --platform  a key of npm-wrapper/platforms.json, e.g. linux-x64-glibc (default: this machine)
# --out       where the package folders go (default: target/npm)
# --no-strip  ship the binary with its symbols
#
# It writes OUT/humanping-mcp (the launcher package), OUT/<platform package> (the binary) and
# OUT/server.json (the MCP registry entry), all at the crate's version, ready for `npm pack` or
# `npm publish`, and prints the two package folders on stdout; progress goes to stderr. The
# other platforms' packages come from running it with each platform's own binary (--platform,
# --binary).
# Limitation: one platform per run, from a binary built for it; nothing here cross-compiles.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() {
    printf 'build-npm.sh: %s\n' "$*" >&2
    exit 1
}

BINARY=${HUMANPING_BIN:-$ROOT/target/release/humanping}
PLATFORM=
OUT=$ROOT/target/npm
STRIP=1
while (($# > 0)); do
    case $1 in
        --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
        --platform) PLATFORM=${2:?--platform needs a key of npm-wrapper/platforms.json}; shift 2 ;;
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --no-strip) STRIP=0; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument $1; see --help" ;;
    esac
done

command -v node >/dev/null 2>&1 || die "node is not installed; it writes the package files"
[[ -f $BINARY && -x $BINARY ]] \
    || die "no humanping binary at $BINARY; run cargo build --release, or pass --binary PATH"

if [[ -z $PLATFORM ]]; then
    case $(uname -s) in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        MINGW*|MSYS*|CYGWIN*) os=win32 ;;
        *) die "unknown system $(uname -s); pass --platform" ;;
    esac
    case $(uname -m) in
        x86_64|amd64) cpu=x64 ;;
        aarch64|arm64) cpu=arm64 ;;
        *) die "unknown processor $(uname -m); pass --platform" ;;
    esac
    PLATFORM=$os-$cpu
    if [[ $os == linux ]]; then
        if ldd --version 2>&1 | grep -qi musl; then PLATFORM+=-musl; else PLATFORM+=-glibc; fi
    fi
fi

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $VERSION ]] || die "could not read the version from Cargo.toml"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
printf 'build-npm.sh: humanping-mcp %s for %s from %s\n' "$VERSION" "$PLATFORM" "$BINARY" >&2

# The package files, written by node from npm-wrapper/ with this version.
node - "$ROOT/npm-wrapper" "$OUT" "$PLATFORM" "$VERSION" <<'JS' >&2
const fs = require("node:fs");
const path = require("node:path");
const [source, out, platform, version] = process.argv.slice(2);
const platforms = JSON.parse(fs.readFileSync(path.join(source, "platforms.json"), "utf8"));
const target = platforms[platform];
if (!target) {
  console.error(`unknown platform ${platform}; known: ${Object.keys(platforms).join(", ")}`);
  process.exit(1);
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
const main = readJson(path.join(source, "humanping-mcp", "package.json"));
main.version = version;
main.optionalDependencies = Object.fromEntries(
  Object.values(platforms).map((p) => [p.package, version]).sort(([a], [b]) => a.localeCompare(b)),
);
const launcher = path.join(out, "humanping-mcp");
fs.rmSync(launcher, { recursive: true, force: true });
fs.mkdirSync(path.join(launcher, "bin"), { recursive: true });
fs.writeFileSync(path.join(launcher, "package.json"), JSON.stringify(main, null, 2) + "\n");
for (const file of ["bin/humanping-mcp.js", "README.md"]) {
  fs.copyFileSync(path.join(source, "humanping-mcp", file), path.join(launcher, file));
}
fs.chmodSync(path.join(launcher, "bin", "humanping-mcp.js"), 0o755);

const folder = path.join(out, target.package.replace("@", "").replace("/", "-"));
fs.rmSync(folder, { recursive: true, force: true });
fs.mkdirSync(path.join(folder, "bin"), { recursive: true });
const pkg = {
  name: target.package,
  version,
  description: `The humanping binary for ${platform} (${target.rust_target}), for humanping-mcp.`,
  license: main.license,
  os: [target.os],
  cpu: [target.cpu],
  ...(target.libc ? { libc: [target.libc] } : {}),
  files: ["bin/"],
  preferUnplugged: true,
};
fs.writeFileSync(path.join(folder, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
fs.writeFileSync(
  path.join(folder, "README.md"),
  `# ${target.package}\n\nThe prebuilt \`humanping\` binary for ${platform}. ` +
    "Install `humanping-mcp` instead: it picks this package on this platform.\n",
);
// The MCP registry entry, at the same version.
const server = JSON.parse(fs.readFileSync(path.join(source, "server.json"), "utf8"));
server.version = version;
for (const p of server.packages) p.version = version;
fs.writeFileSync(path.join(out, "server.json"), JSON.stringify(server, null, 2) + "\n");
fs.writeFileSync(path.join(out, ".platform-folder"), folder);
JS

FOLDER=$(cat "$OUT/.platform-folder")
rm -f "$OUT/.platform-folder"
EXE=humanping
[[ $PLATFORM == win32-* ]] && EXE=humanping.exe
cp "$BINARY" "$FOLDER/bin/$EXE"
chmod 755 "$FOLDER/bin/$EXE"
if ((STRIP)) && [[ $PLATFORM == linux-* ]] && command -v strip >/dev/null 2>&1; then
    strip "$FOLDER/bin/$EXE" || die "strip failed on $FOLDER/bin/$EXE; pass --no-strip"
fi
printf 'build-npm.sh: wrote %s and %s\n' "$OUT/humanping-mcp" "$FOLDER" >&2
printf '%s\n%s\n' "$OUT/humanping-mcp" "$FOLDER"
