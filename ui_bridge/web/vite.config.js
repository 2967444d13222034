import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run build` writes dist/, which server/main.mjs serves beside the CopilotKit runtime.
// For `vite dev`, /api is proxied to that server (run it on CITADEL_UI_PORT, default 3000).
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  server: { proxy: { "/api": `http://127.0.0.1:${process.env.CITADEL_UI_PORT ?? 3000}` } },
});
