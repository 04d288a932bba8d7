// Bundles src/main.ts, with @mero/client and the generated bindings it
// imports, into dist/ beside the page. `npm run build` runs it after tsc
// has type-checked the sources; `cargo mero build` and `cargo mero dev`
// run `npm run build`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

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
for (const file of ["index.html", "style.css"]) {
  copyFileSync(file, `dist/${file}`);
}
