import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

/** Debian's Chromium (scripts/ensure-chromium.sh installs it); never a browser a tool downloads. */
export const CHROMIUM = process.env.NIGHTSHIFT_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Headless Chromium with a fresh profile, and none of the background traffic (updates, sync,
 * Google lookups) that a closed network refuses: the tests reach loopback alone.
 */
export async function launchChromium(viewport = { width: 1500, height: 950 }): Promise<{
  browser: BrowserContext;
  close(): Promise<void>;
}> {
  // A fresh, empty profile (--user-data-dir, which Playwright takes as this argument).
  const profile = await mkdtemp(path.join(os.tmpdir(), "nightshift-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
