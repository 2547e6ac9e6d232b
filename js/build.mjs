// Bundle each view as a self-contained ES module (anywidget `_esm`) into ../xaiwidgets/static/.
// CSS is imported as text and injected by the views, so no separate stylesheet is emitted.
// Usage: node build.mjs [--watch]
import * as esbuild from "esbuild";
import { readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
// Every src/views/<name>.ts is an entry, built to static/<name>.js (no list to keep in sync).
const views = readdirSync(new URL("src/views/", import.meta.url))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
  .map((f) => f.slice(0, -3))
  .sort();

const options = {
  absWorkingDir: here,
  entryPoints: Object.fromEntries(views.map((v) => [v, `src/views/${v}.ts`])),
  outdir: "../xaiwidgets/static",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: false,
  loader: { ".css": "text" },
  legalComments: "none",
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context({ ...options, minify: false });
  await ctx.watch();
} else {
  await esbuild.build(options);
  // Written last: the package build skips npm when this manifest exists (pyproject skip-if-exists).
  mkdirSync(new URL("../xaiwidgets/static/", import.meta.url), { recursive: true });
  writeFileSync(new URL("../xaiwidgets/static/views.json", import.meta.url), JSON.stringify({ views }) + "\n");
}
