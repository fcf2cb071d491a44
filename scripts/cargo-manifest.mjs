#!/usr/bin/env node
// Reads facts about the keyseal crate from `cargo metadata` (never by matching Cargo.toml's
// text), and prints one of them:
//   node scripts/cargo-manifest.mjs pinned-version NAME  the exact version NAME is pinned to
//                                                        ("=X.Y.Z"), on any target; fails if it
//                                                        is not pinned exactly
//   node scripts/cargo-manifest.mjs package-version      the crate's own version
//   node scripts/cargo-manifest.mjs target-directory     cargo's target directory
// Run from anywhere inside the repository. Reads only; runs `cargo metadata --no-deps`, which
// needs no network.
import { execFileSync } from "node:child_process";

function fail(message) {
  console.error(`cargo-manifest: ${message}`);
  process.exit(1);
}

const [what, name] = process.argv.slice(2);
const metadata = JSON.parse(
  execFileSync("cargo", ["metadata", "--no-deps", "--format-version", "1"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  }),
);
const crate = metadata.packages.find((p) => p.name === "keyseal");
if (!crate) fail("no keyseal package in cargo metadata");

switch (what) {
  case "pinned-version": {
    if (!name) fail("usage: pinned-version NAME");
    const reqs = [...new Set(crate.dependencies.filter((d) => d.name === name).map((d) => d.req))];
    if (reqs.length === 0) fail(`keyseal does not depend on ${name}`);
    const exact = reqs.map((r) => /^=(\d+\.\d+\.\d+)$/.exec(r));
    if (reqs.length > 1 || !exact[0]) {
      fail(`${name} is required as ${reqs.join(", ")}: pin one exact version ("=X.Y.Z")`);
    }
    console.log(exact[0][1]);
    break;
  }
  case "package-version":
    console.log(crate.version);
    break;
  case "target-directory":
    console.log(metadata.target_directory);
    break;
  default:
    fail("usage: cargo-manifest.mjs pinned-version NAME | package-version | target-directory");
}
