import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  symlinkSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { processAlive } from "./cgroup.ts";
import type { GitLayout } from "./git-layout.ts";
import type { SandboxLimits } from "./types.ts";

/** Paths inside the sandbox that nightshift itself provides. */
export const SANDBOX_HOME = "/home/nightshift";
export const RELAY_PATH = "/run/nightshift/relay.mjs";
export const GATEWAY_SOCKET_PATH = "/run/nightshift/gateway.sock";

/** The toolchain: visible, never writable. On merged-/usr systems most of these are symlinks. */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * From /etc only what programs need to run; not /etc as a whole (shadow, ssh host keys, cloud
 * credentials, the package manager's auth files).
 */
const ETC_FILES = [
  "/etc/passwd",
  "/etc/group",
  "/etc/hosts",
  "/etc/nsswitch.conf",
  "/etc/localtime",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/mime.types",
  "/etc/bash.bashrc",
  "/etc/profile",
];

/**
 * Tripwires: the places secrets live, made to exist with mode 000 so that reaching for them gives
 * "Permission denied" (a blocked attempt that is seen and recorded) instead of a quiet "not found".
 */
const SECRET_DIRS_IN_HOME = [
  ".ssh",
  ".aws",
  ".gnupg",
  ".config/gcloud",
  ".docker",
  ".kube",
  ".azure",
];
const SECRET_DIRS_IN_ETC = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh"];

export interface MountPlanInput {
  workspace: string;
  git: GitLayout | undefined;
  /** Host paths visible read-only at the same place. */
  readOnly: string[];
  /** Host paths writable at the same place (an agent CLI's private home). */
  writable: string[];
  /**
   * The host side of the gateway relay, bound to GATEWAY_SOCKET_PATH, and the relay's script,
   * bound to RELAY_PATH: only for a command that starts its own relay (hosts where commands cannot
   * join the run's network holder).
   */
  gatewaySocket: string | undefined;
  relayFile: string | undefined;
  /**
   * "shared": the command keeps the network namespace it is started in (the run's network
   * holder's, joined from the host); otherwise it gets a new one with only loopback.
   */
  network?: "own" | "shared";
  limits: SandboxLimits;
  cwd: string;
}

/**
 * bwrap's arguments: a new empty root (tmpfs, read-only at the end) with the toolchain bound
 * read-only, a private /tmp and HOME, the worktree writable, its git data read-only, and every
 * namespace unshared (network: loopback only). The order matters: later mounts cover earlier ones.
 */
export function bwrapArgs(input: MountPlanInput): string[] {
  const args = namespaceArgs(input.network === "shared");
  args.push("--hostname", "nightshift-sandbox");
  args.push(...systemBinds());
  args.push(...etcBinds());
  args.push("--proc", "/proc", "--dev", "/dev");
  args.push("--size", String(input.limits.tmpBytes), "--tmpfs", "/tmp");
  args.push("--size", String(input.limits.tmpBytes), "--tmpfs", SANDBOX_HOME);
  for (const dir of SECRET_DIRS_IN_HOME) {
    args.push("--perms", "0000", "--dir", path.posix.join(SANDBOX_HOME, dir));
  }
  const hostHome = os.homedir();
  const ancestors = ancestorsOf(input.workspace);
  if (hostHome !== "/" && !ancestors.includes(hostHome) && hostHome !== SANDBOX_HOME) {
    args.push("--perms", "0000", "--dir", hostHome);
  }
  if (hostHome !== "/root" && !ancestors.includes("/root")) {
    args.push("--perms", "0000", "--dir", "/root");
  }
  // After the tmpfs mounts, so that a path under /tmp is not covered by the private /tmp.
  for (const dir of toolchainOutsideUsr()) args.push("--ro-bind", dir, dir);
  for (const dir of unique(input.readOnly)) args.push("--ro-bind", dir, dir);
  if (input.git) {
    const { commonDir, adminDir } = input.git;
    // A plain checkout's .git is inside the worktree: bound read-only after it (below), as .git.
    if (commonDir !== input.git.dotGit) args.push("--ro-bind", commonDir, commonDir);
    const worktreesDir = path.join(commonDir, "worktrees");
    if (adminDir !== commonDir && adminDir.startsWith(worktreesDir + path.sep)) {
      // Other runs' admin dirs (their index, their HEAD) are none of this run's business.
      args.push("--tmpfs", worktreesDir, "--ro-bind", adminDir, adminDir);
      args.push("--remount-ro", worktreesDir);
    }
  }
  args.push("--bind", input.workspace, input.workspace);
  for (const dir of unique(input.writable)) args.push("--bind", dir, dir);
  if (input.git) {
    // The worktree is writable but its .git is not: rewritten, it would point the host's git
    // (which commits the run's work) at another repository.
    args.push("--ro-bind", input.git.dotGit, input.git.dotGit);
  }
  if (input.relayFile) args.push("--ro-bind", input.relayFile, RELAY_PATH);
  if (input.gatewaySocket) args.push("--ro-bind", input.gatewaySocket, GATEWAY_SOCKET_PATH);
  // The folders above the worktree (the repository, .nightshift, worktrees/) can be passed
  // through but not listed: other runs, the ledger and the main checkout stay out of sight.
  for (const dir of ancestors) {
    if (!["/", "/tmp", "/home", "/run"].includes(dir)) args.push("--chmod", "0111", dir);
  }
  args.push("--remount-ro", "/");
  args.push("--chdir", input.cwd);
  return args;
}

/**
 * Every namespace new (with "shared network", all but the network one), no capability, no way to
 * make another user namespace, gone with its parent.
 */
function namespaceArgs(sharedNetwork: boolean): string[] {
  return [
    "--unshare-all",
    ...(sharedNetwork ? ["--share-net"] : []),
    // As root, bwrap would keep every capability; a user namespace plus dropping them all leaves a
    // uid 0 that owns nothing outside and cannot mount, trace, or change the rules.
    "--unshare-user",
    "--disable-userns",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
  ];
}

/**
 * The run's network holder: a sandbox of its own (new network namespace with only loopback, new
 * pid namespace, so no command can signal it) that sees the toolchain, the relay's script and the
 * gateway's socket, read-only, and nothing else. Its network namespace is the one the run's
 * gateway-reaching commands join.
 */
export function holderArgs(input: { relayFile: string; gatewaySocket: string }): string[] {
  const args = namespaceArgs(false);
  args.push("--hostname", "nightshift-relay");
  args.push(...systemBinds());
  args.push("--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--dev", "/dev");
  for (const dir of toolchainOutsideUsr()) args.push("--ro-bind", dir, dir);
  args.push("--ro-bind", input.relayFile, RELAY_PATH);
  args.push("--ro-bind", input.gatewaySocket, GATEWAY_SOCKET_PATH);
  args.push("--remount-ro", "/", "--chdir", "/");
  return args;
}

/**
 * /etc as the sandbox sees it: one read-only bind of a private copy of ETC_FILES' files (with the
 * tripwires in it), plus the folders among them bound one each. One bind instead of fourteen: each
 * bind is a mount, a remount and a walk of the mount table in bwrap, about 2-3 ms a command in
 * all. The copy is made once per process and refreshed when a host file changes (checked per
 * command: a stat each); it is replaced by rename, so a command never reads half a file.
 */
let etcView: { dir: string; copied: Map<string, string> } | undefined;

function etcBinds(): string[] {
  etcView ??= makeEtcView();
  const { dir, copied } = etcView;
  const args = ["--ro-bind", dir, "/etc"];
  for (const file of ETC_FILES) {
    const info = etcEntry(file);
    if (info === "link") continue;
    if (info?.isDirectory()) {
      args.push("--ro-bind", file, file);
    } else if (info?.isFile()) {
      const stamp = `${info.size}:${info.mtimeMs}:${info.ino}`;
      if (copied.get(file) !== stamp) {
        const target = path.join(dir, path.basename(file));
        copyFileSync(file, `${target}.new`);
        renameSync(`${target}.new`, target);
        copied.set(file, stamp);
      }
    }
  }
  return args;
}

function makeEtcView(): { dir: string; copied: Map<string, string> } {
  sweepStaleEtcViews();
  const dir = mkdtempSync(path.join(os.tmpdir(), `nightshift-etc-${process.pid}-`));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  for (const file of ETC_FILES) {
    const info = etcEntry(file);
    const target = path.join(dir, path.basename(file));
    // Folders: a mount point for their own bind. Links into the toolchain (localtime): as they are.
    if (info === "link") symlinkSync(readlinkSync(file), target);
    else if (info?.isDirectory()) mkdirSync(target);
  }
  for (const secret of SECRET_DIRS_IN_ETC) mkdirSync(path.join(dir, path.basename(secret)), 0o000);
  return { dir, copied: new Map() };
}

/** Copies left by a nightshift process that did not exit normally (killed, a test worker ended). */
function sweepStaleEtcViews(): void {
  let names: string[] = [];
  try {
    names = readdirSync(os.tmpdir());
  } catch {}
  for (const name of names) {
    const pid = Number(/^nightshift-etc-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

/** "link" for a symlink into the toolchain (it resolves inside too), else what it points at. */
function etcEntry(file: string): "link" | Stats | undefined {
  const info = lstatSync(file, { throwIfNoEntry: false });
  if (!info?.isSymbolicLink()) return info;
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return undefined;
  }
  if (SYSTEM_DIRS.some((dir) => real.startsWith(`${dir}/`))) return "link";
  return statSync(real, { throwIfNoEntry: false });
}

let systemBindsFound: string[] | undefined;
let toolchainFound: string[] | undefined;

/** The toolchain's binds: looked up once per process (the host's /usr does not move). */
function systemBinds(): string[] {
  systemBindsFound ??= SYSTEM_DIRS.flatMap(bindSystemPath);
  return systemBindsFound;
}

function bindSystemPath(dir: string): string[] {
  const info = lstatSync(dir, { throwIfNoEntry: false });
  if (!info) return [];
  if (info.isSymbolicLink()) return ["--symlink", readlinkSync(dir), dir];
  return ["--ro-bind", dir, dir];
}

/** Node's own install, when it is not under /usr (nvm, /opt, a tarball): read-only. */
function toolchainOutsideUsr(): string[] {
  toolchainFound ??= findToolchainOutsideUsr();
  return toolchainFound;
}

function findToolchainOutsideUsr(): string[] {
  const node = realpathSync(process.execPath);
  const prefix = path.dirname(path.dirname(node));
  if (SYSTEM_DIRS.some((dir) => node.startsWith(`${dir}/`))) return [];
  return existsSync(prefix) ? [prefix] : [];
}

/** /a/b/c → ["/a/b", "/a"] ... the strict ancestors, nearest first, without "/". */
function ancestorsOf(file: string): string[] {
  const found: string[] = [];
  let dir = path.dirname(file);
  while (dir !== "/" && dir !== ".") {
    found.push(dir);
    dir = path.dirname(dir);
  }
  return found;
}

function unique(paths: string[]): string[] {
  return [...new Set(paths.map((p) => path.resolve(p)))].filter((p) => existsSync(p));
}
