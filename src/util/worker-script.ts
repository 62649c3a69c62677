import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/**
 * Resolves the compiled JavaScript file of a worker entry point. Node 20 workers cannot load `.ts`,
 * so when the caller runs from source (vitest, `src/.../x.ts`) the script comes from `dist/` (built by
 * `npm run build`, which `npm test` runs first). `relative` is relative to the caller's module.
 */
export function workerScript(callerUrl: string, relative: string): URL {
  const url = new URL(relative, callerUrl);
  if (!callerUrl.endsWith('.ts')) return url;
  const fromSource = url.href.replace('/src/', '/dist/').replace(/\.ts$/, '.js');
  const resolved = new URL(fromSource.endsWith('.js') ? fromSource : `${fromSource}`);
  if (!existsSync(fileURLToPath(resolved))) {
    throw new Error(
      `worker script ${fileURLToPath(resolved)} is missing: run \`npm run build\` first`,
    );
  }
  return resolved;
}
