import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The dev server proxies the API to a running edge (`nox -s up` listens on 8080), so the
// app always talks to its own origin, as it does when the edge serves web/dist.
const edge = process.env.MARKETPLACE_EDGE ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    target: "es2022",
    // The budget test (tests/e2e/test_storefront_browser.py) reads the gzip sizes itself.
    reportCompressedSize: false,
    sourcemap: false,
  },
  server: { proxy: { "/v1": edge, "/verify-email": edge, "/reset-password": edge } },
});
