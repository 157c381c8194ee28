#!/usr/bin/env node
// Starts the prebuilt `humanping` binary for this platform as an MCP server on stdio:
//
//     npx -y humanping-mcp            ->  humanping mcp
//     npx -y humanping-mcp --sandbox  ->  humanping mcp --sandbox
//     npx -y humanping-mcp serve      ->  humanping serve (any other humanping command)
//
// The binary comes from the optional dependency package matching this platform, installed with
// this one; nothing is downloaded. HUMANPING_BINARY names another binary to run instead.
// The launcher writes nothing to stdout (it belongs to JSON-RPC), hands stdin, stdout and stderr
// to the binary as they are, forwards signals, exits with the binary's status, and stops the
// binary if the launcher's own parent goes away.
"use strict";

const childProcess = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

/** The platform packages, by `${process.platform}-${process.arch}` and C library. */
const PACKAGES = {
  "linux-x64-glibc": "@humanping/mcp-linux-x64",
  "linux-x64-musl": "@humanping/mcp-linux-x64-musl",
  "linux-arm64-glibc": "@humanping/mcp-linux-arm64",
  "linux-arm64-musl": "@humanping/mcp-linux-arm64-musl",
  "darwin-x64": "@humanping/mcp-darwin-x64",
  "darwin-arm64": "@humanping/mcp-darwin-arm64",
  "win32-x64": "@humanping/mcp-win32-x64",
};

/** Commands of the binary that are passed through as given; anything else runs `mcp`. */
const COMMANDS = new Set([
  "mcp", "serve", "migrate", "agent", "worker", "credit", "ledger", "sweep", "help",
  "--help", "-h", "--version", "-V",
]);

/** Signals passed on to the binary. */
const FORWARDED = process.platform === "win32"
  ? ["SIGINT", "SIGTERM", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/** "glibc" or "musl" on Linux; undefined elsewhere. */
function libc() {
  if (process.platform !== "linux") return undefined;
  try {
    const report = process.report && process.report.getReport();
    const header = report && (typeof report === "string" ? JSON.parse(report) : report).header;
    if (header && header.glibcVersionRuntime) return "glibc";
  } catch {
    // No report support: look at the files instead.
  }
  try {
    if (fs.readdirSync("/lib").some((name) => name.startsWith("ld-musl-"))) return "musl";
  } catch {
    // No /lib: assume the common case.
  }
  return "glibc";
}

/** The platform packages to try, best first, and a name for this platform. */
function candidates() {
  const base = `${process.platform}-${process.arch}`;
  const c = libc();
  if (c === undefined) return { platform: base, packages: [PACKAGES[base]].filter(Boolean) };
  // A static musl build runs on glibc systems too: it is the fallback there.
  const order = c === "musl" ? ["musl"] : ["glibc", "musl"];
  return {
    platform: `${base} (${c})`,
    packages: order.map((x) => PACKAGES[`${base}-${x}`]).filter(Boolean),
  };
}

/** The binary to run, or an error message saying what to do. */
function resolveBinary() {
  const override = process.env.HUMANPING_BINARY;
  if (override) {
    if (fs.existsSync(override)) return { binary: override };
    return {
      error: `HUMANPING_BINARY is set to ${JSON.stringify(override)}, but there is no file ` +
        "there; point it at a humanping binary, or unset it to use the prebuilt one",
    };
  }
  const { platform, packages } = candidates();
  const exe = process.platform === "win32" ? "humanping.exe" : "humanping";
  for (const name of packages) {
    let folder;
    try {
      folder = path.dirname(require.resolve(`${name}/package.json`, { paths: [__dirname] }));
    } catch {
      continue;
    }
    const binary = path.join(folder, "bin", exe);
    if (fs.existsSync(binary)) return { binary };
  }
  if (packages.length === 0) {
    return {
      error: `there is no prebuilt HumanPing binary for ${platform}; build humanping from ` +
        "source (cargo build --release) and set HUMANPING_BINARY to its path",
    };
  }
  return {
    error: `the prebuilt HumanPing binary for ${platform} is missing: the optional package ` +
      `${packages[0]} is not installed. Install again without --omit=optional ` +
      "(or --no-optional), or set HUMANPING_BINARY to a humanping binary",
  };
}

/** The binary's arguments: `mcp` and the given ones, unless a command is named first. */
function binaryArgs(argv) {
  if (argv.length > 0 && COMMANDS.has(argv[0])) return argv;
  return ["mcp", ...argv];
}

function main() {
  const found = resolveBinary();
  if (found.error) {
    process.stderr.write(`humanping-mcp: ${found.error}\n`);
    process.exit(1);
  }

  const child = childProcess.spawn(found.binary, binaryArgs(process.argv.slice(2)), {
    stdio: "inherit",
    windowsHide: true,
  });

  const handlers = new Map();
  for (const signal of FORWARDED) {
    const handler = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }

  // Limitation: a launcher killed with SIGKILL cannot stop the binary; it then stops when its
  // stdin closes, which happens when the client exits.
  // If whoever started the launcher dies without a signal reaching it, the launcher is
  // re-parented; the binary must not outlive its client.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent && child.exitCode === null) child.kill("SIGTERM");
  }, 1000);
  watch.unref();

  child.on("error", (error) => {
    process.stderr.write(`humanping-mcp: could not start ${found.binary}: ${error.message}\n`);
    process.exit(1);
  });

  child.on("exit", (code, signal) => {
    clearInterval(watch);
    for (const [name, handler] of handlers) process.off(name, handler);
    if (signal) {
      // Die of the same signal, so the caller sees what happened to the server.
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code === null ? 1 : code);
  });
}

if (require.main === module) {
  main();
}

module.exports = { PACKAGES, binaryArgs, candidates, libc, resolveBinary };
