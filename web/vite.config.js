// Builds the app into build/web, served by the gateway under /app/. Each role's pages are
// their own chunks (loaded on first visit), so a resident's phone never downloads the
// dashboard's charts.
import { copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

const outDir = fileURLToPath(new URL('../build/web', import.meta.url))

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

// Swagger UI for the gateway's OpenAPI document (/app/api-docs/), from the pinned npm package
const swaggerUi = {
  name: 'wenming-swagger-ui',
  closeBundle() {
    const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
    for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
      copyFileSync(join(dist, file), join(outDir, 'api-docs', file))
    }
  },
}

export default defineConfig({
  base: '/app/',
  plugins: [vue(), noFontCdn, swaggerUi],
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
    reportCompressedSize: true,
  },
  server: {
    // `npm run dev` beside `make up`: the gateway answers the API
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
})
