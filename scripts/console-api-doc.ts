// Writes docs/console-api.md from the console's schemas (`npm run docs:console`).
import { writeFileSync } from "node:fs";
import { apiMarkdown } from "../src/console/index.ts";

writeFileSync(new URL("../docs/console-api.md", import.meta.url), apiMarkdown());
