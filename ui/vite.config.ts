import { defineConfig } from "vite";

// The bundle is committed into the Python package (src/dagloom/webserver/static) and CI
// checks that a clean build reproduces it byte for byte: no timestamps, content hashes only.
export default defineConfig({
  base: "/",
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
