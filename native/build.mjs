// Builds the native addon (native/binding.gyp) and never fails: `npm install` must work on a
// machine without a compiler (embedded mode needs no native code). What could not be built is
// named, with what to install; asking for it at run time gives the same advice.
//
// node-gyp: the copy npm ships (npm tells lifecycle scripts where it is), else one on the PATH.
// Headers: Debian's nodejs has them in /usr/include/node, and node-gyp cannot download them here.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const command = gyp !== undefined && existsSync(gyp) ? [process.execPath, gyp] : ['node-gyp'];
const args = ['rebuild'];
if (existsSync('/usr/include/node/node.h')) args.push('--nodedir=/usr');
// Builds as on a machine without libfabric (CI checks that the native tests then say why they
// skip and everything else passes).
if (process.env.DINOMO_WITHOUT_FABRIC === '1') args.push('--with_fabric=0');

const result = spawnSync(command[0], [...command.slice(1), ...args], {
  cwd: here,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
if (result.status === 0) {
  console.log('dinomo: native addon built (native/build/Release)');
  if (!existsSync(`${here}/build/Release/dinomo_fabric.node`)) {
    console.warn(
      'dinomo: the fabric part (libfabric) was skipped: its headers are missing. Multi-process\n' +
        '  clusters need it: run `apt-get install -y libfabric-dev`, then `npm run build:native`.',
    );
  }
} else {
  const why =
    result.error?.message ??
    (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
  console.warn(
    'dinomo: the native addon was not built; embedded mode works without it, but dataDir needs it.\n' +
      '  Install g++, make and python3, then run: npm run build:native\n' +
      `  (${why})`,
  );
}
