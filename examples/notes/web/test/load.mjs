// Loads a TypeScript module of src/ in Node.js for the tests: esbuild
// bundles it in memory (Node.js 20 runs no TypeScript by itself).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

export async function load(name) {
  const entry = fileURLToPath(new URL(`../src/${name}.ts`, import.meta.url));
  const out = await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "node", write: false });
  const code = Buffer.from(out.outputFiles[0].text).toString("base64");
  return import(`data:text/javascript;base64,${code}`);
}
