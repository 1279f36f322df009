import { lintSource } from "@secretlint/core";
import { creator as recommended } from "@secretlint/secretlint-rule-preset-recommend";
import { addedLines, changedFiles, gitIn, outcome, rangeOf } from "./diff.ts";
import type { Gate } from "./types.ts";

const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Secret scan with secretlint's recommended rules (AWS, GCP, GitHub, Slack, private keys, ...).
 * Whole new files are scanned, since some rules need context (an AWS secret next to its key id),
 * but only findings on lines the change adds count: a secret already on main is not this
 * candidate's doing. Findings are masked, so the feedback never repeats the secret.
 */
export function createSecretScanGate(): Gate {
  return {
    name: "secrets",
    scope: "change",
    async run(ctx) {
      const started = performance.now();
      const { base, commit } = rangeOf("secrets", ctx);
      const files = (await changedFiles(ctx.workspacePath, base, commit)).filter(
        (f) => f.status !== "D" && !f.binary,
      );
      const added = await addedLines(ctx.workspacePath, base, commit);
      const findings: string[] = [];
      for (const file of files) {
        const lines = added.get(file.path);
        if (!lines || lines.size === 0) continue;
        const content = await gitIn(ctx.workspacePath, ["show", `${commit}:${file.path}`]);
        if (content.length > MAX_FILE_BYTES) continue;
        const result = await lintSource({
          source: {
            filePath: file.path,
            content,
            contentType: "text",
            ext: extOf(file.path),
          },
          options: {
            config: {
              rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommended }],
            },
            maskSecrets: true,
            noPhysicFilePath: true,
          },
        });
        for (const message of result.messages) {
          const line = message.loc.start.line;
          if (!lines.has(line)) continue;
          findings.push(
            `${file.path}:${line}: ${message.message.slice(0, 120)} [${message.ruleId}]`,
          );
        }
      }
      return findings.length === 0
        ? outcome("secrets", started, true, `secret scan: ${files.length} files clean`)
        : outcome(
            "secrets",
            started,
            false,
            `secret scan found ${findings.length} secret(s) the change adds:\n${findings.join("\n")}\nNever commit credentials: read them from the environment.`,
          );
    },
  };
}

function extOf(path: string): string {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/") ? path.slice(dot) : "";
}
