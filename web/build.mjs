// Builds the UI into dist/: one JS and one CSS bundle with content-hashed
// names (served as immutable), index.html pointing at them (served
// no-cache), and a .gz next to each file so the server can send it
// precompressed. Prints the gzipped total and fails over the budget.
import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const BUDGET_GZ = 300 * 1024;
const out = "dist";
const tmp = `dist.tmp-${process.pid}`;

rmSync(tmp, { recursive: true, force: true });
const result = await esbuild.build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(tmp, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const built = Object.keys(result.metafile.outputs).map((p) => p.slice(tmp.length + 1));
const js = built.find((p) => p.endsWith(".js"));
const css = built.find((p) => p.endsWith(".css"));
const html = readFileSync("index.html", "utf8")
  .replace("%CSS%", `/${css}`)
  .replace("%JS%", `/${js}`);
writeFileSync(join(tmp, "index.html"), html);

let raw = 0, gz = 0;
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]);
for (const file of walk(tmp)) {
  const body = readFileSync(file);
  const z = gzipSync(body, { level: 9 });
  writeFileSync(file + ".gz", z);
  raw += body.length;
  gz += z.length;
}
// Swap in the new tree whole, so a reader never sees half a build.
rmSync(out + ".old", { recursive: true, force: true });
try { renameSync(out, out + ".old"); } catch { /* first build */ }
renameSync(tmp, out);
rmSync(out + ".old", { recursive: true, force: true });

const kb = (n) => (n / 1024).toFixed(1) + " KB";
console.log(`  UI    ${js}, ${css}: ${kb(raw)} raw, ${kb(gz)} gzipped (budget ${kb(BUDGET_GZ)})`);
if (gz > BUDGET_GZ) {
  console.error(`UI bundle is ${kb(gz)} gzipped, over the ${kb(BUDGET_GZ)} budget`);
  process.exit(1);
}
