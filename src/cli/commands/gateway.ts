import { randomBytes } from "node:crypto";
import { openFactory, startModels } from "../factory.ts";

/**
 * Serves the factory's gateway on its own, for agents or workers in other processes. Run keys are
 * issued through the admin API with the printed admin token.
 */
export async function gatewayCommand(root: string, print: (line: string) => void): Promise<void> {
  const factory = await openFactory(root, "nightshift gateway");
  const adminToken =
    process.env.NIGHTSHIFT_GATEWAY_ADMIN_TOKEN || randomBytes(24).toString("base64url");
  try {
    const models = await startModels(factory, { adminToken });
    const provider = models.simulated ? " (a provider is the bundled SIMULATED model)" : "";
    print(`gateway listening at ${models.gateway.url}${provider}`);
    print(
      "protocols: POST /v1/chat/completions · /v1/responses · /v1/messages · /v1beta/models/<model>:generateContent, routed by model to the configured providers",
    );
    print(`admin: POST /admin/keys {"runId","orderId"} → a scoped key; DELETE /admin/keys/<runId>`);
    if (!process.env.NIGHTSHIFT_GATEWAY_ADMIN_TOKEN) print(`admin token: ${adminToken}`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
    await models.close();
  } finally {
    await factory.close();
  }
}
