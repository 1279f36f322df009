import path from "node:path";
import { Transcripts } from "../../gateway/index.ts";
import { locateFactory } from "../factory.ts";

/** Prints a run's model exchanges as the gateway recorded them. */
export async function transcriptCommand(
  root: string,
  runId: number,
  options: { json?: boolean },
): Promise<string> {
  const { stateDir } = await locateFactory(root);
  const transcripts = new Transcripts(path.join(stateDir, "transcripts"));
  const entries = await transcripts.read(runId);
  if (options.json) return JSON.stringify(entries, null, 2);
  if (entries.length === 0) {
    return `no transcript for run ${runId} (looked in ${transcripts.fileOf(runId)}); is [gateway] transcripts on?`;
  }
  return entries
    .map((entry, i) => {
      const usage = entry.usage as { inputTokens?: number; outputTokens?: number } | undefined;
      const tokens = usage ? ` · ${usage.inputTokens} in / ${usage.outputTokens} out` : "";
      return [
        `── request ${i + 1} · ${entry.at} · ${entry.protocol} ${entry.model} · HTTP ${entry.status}${tokens}`,
        entry.error ? `error: ${entry.error}` : "",
        `>>> ${entry.request}`,
        `<<< ${entry.response}`,
      ]
        .filter(Boolean)
        .join("\n");
    })
    .join("\n\n");
}
