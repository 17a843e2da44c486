// Builds the app into build/web, served by the gateway under /app/. Each role's pages are
// their own chunks (loaded on first visit), so a resident's phone never downloads the
// dashboard's charts.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

// Vant's icon font is inline (woff2, data:) with a fallback on a public CDN; a government intranet
// must never be sent there, so the fallback is cut from the built CSS.
const noFontCdn = {
  name: 'wenming-no-font-cdn',
  generateBundle(_, bundle) {
    for (const file of Object.values(bundle)) {
      if (file.type === 'asset' && file.fileName.endsWith('.css')) {
        file.source = String(file.source).replace(/,\s*url\(\/\/at\.alicdn\.com[^)]*\)\s*format\("[a-z]+"\)/g, '')
      }
    }
  },
}

export default defineConfig({
  base: '/app/',
  plugins: [vue(), noFontCdn],
  build: {
    outDir: fileURLToPath(new URL('../build/web', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
    reportCompressedSize: true,
  },
  server: {
    // `npm run dev` beside `make up`: the gateway answers the API
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
})
