// Builds the page into src/livespace/static (served at / by livespace serve):
//   index.html            no-cache: every load asks the server whether it changed
//   assets/main-<hash>.js and .css, content-hashed, cached for a year as immutable
// The SDK is bundled from its TypeScript source (../js/src), so a change to either
// yields new asset names and every open tab gets it on its next load.
import * as esbuild from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, process.env.LIVESPACE_PAGE_OUT ?? "../../src/livespace/static");
const assets = join(out, "assets");

await rm(out, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  entryNames: "[name]-[hash]",
  outdir: assets,
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((name) => name.endsWith(".js"));
const style = outputs.find((name) => name.endsWith(".css"));
if (!script || !style) throw new Error(`build: expected a .js and a .css, got ${outputs.join(", ")}`);

const template = await readFile(join(here, "index.html"), "utf8");
const html = template.replace("%SCRIPT%", `/assets/${script}`).replace("%STYLE%", `/assets/${style}`);
await writeFile(join(out, "index.html"), html);
console.log(`page: built ${script}, ${style} into ${out}`);
