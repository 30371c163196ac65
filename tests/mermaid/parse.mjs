// Parse every ```mermaid block of the markdown files given as arguments with mermaid's own parser.
// Prints one JSON line per block; exits 1 if any block fails. jsdom stands in for the browser.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  const blocks = [...readFileSync(file, "utf8").matchAll(/```mermaid\n([\s\S]*?)```/g)];
  for (const [index, block] of blocks.entries()) {
    try {
      await mermaid.parse(block[1]);
      console.log(JSON.stringify({ file, index, ok: true }));
    } catch (error) {
      failed += 1;
      const message = String(error.message ?? error).split("\n").slice(0, 3).join(" ");
      console.log(JSON.stringify({ file, index, ok: false, error: message }));
    }
  }
}
process.exit(failed ? 1 : 0);
