// Bundles an example page (run in its web/ directory): src/main.ts, with
// @mero/client and the generated bindings it imports, into dist/ beside
// the page, with this kit's base.css and the page's own style.css. The
// examples' `npm run build` runs it after tsc has type-checked the
// sources; `cargo mero build` and `cargo mero dev` run `npm run build`.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// esbuild is the page's own dev dependency (this kit has no packages).
const { build } = createRequire(join(process.cwd(), "package.json"))("esbuild");

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  outfile: "dist/main.js",
  sourcemap: true,
  logLevel: "warning",
});
copyFileSync(fileURLToPath(new URL("base.css", import.meta.url)), "dist/base.css");
for (const file of ["index.html", "style.css"]) {
  copyFileSync(file, `dist/${file}`);
}
