import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

// A gzip copy beside each script and stylesheet: the webserver (aiohttp's FileResponse)
// sends it to browsers that accept gzip. Node writes no timestamp into the header, so the
// copies are as reproducible as the files.
function gzipCopies(): Plugin {
  return {
    name: "dagloom-gzip-copies",
    apply: "build",
    enforce: "post",
    // After the files are written: their final code, with every other plugin's rewrites.
    writeBundle(options, bundle) {
      for (const [fileName, file] of Object.entries(bundle)) {
        if (!/\.(js|css)$/.test(fileName)) continue;
        const source = file.type === "chunk" ? file.code : file.source;
        writeFileSync(join(options.dir!, `${fileName}.gz`), gzipSync(source, { level: 9 }));
      }
    },
  };
}

// The bundle is committed into the Python package (src/dagloom/webserver/static) and CI
// checks that a clean build reproduces it byte for byte: no timestamps, content hashes only.
export default defineConfig({
  base: "/",
  plugins: [gzipCopies()],
  esbuild: { jsx: "automatic", jsxImportSource: "preact", legalComments: "none" },
  build: {
    outDir: "../src/dagloom/webserver/static",
    assetsDir: "_ui",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
    rollupOptions: {
      output: {
        entryFileNames: "_ui/[name]-[hash].js",
        chunkFileNames: "_ui/[name]-[hash].js",
        assetFileNames: "_ui/[name]-[hash][extname]",
      },
    },
  },
  worker: { format: "es" },
  server: {
    proxy: { "/graphql": { target: "http://127.0.0.1:3000", ws: true } },
  },
});
