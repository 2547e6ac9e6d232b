// Bundle each view as a self-contained ES module (anywidget `_esm`) into ../xaiwidgets/static/.
// CSS is imported as text and injected by the views, so no separate stylesheet is emitted.
// Usage: node build.mjs [--watch]
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

const options = {
  absWorkingDir: here,
  entryPoints: { heatmap: "src/views/heatmap.ts", dashboard: "src/views/dashboard.ts", scrubber: "src/views/scrubber.ts" },
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
}
