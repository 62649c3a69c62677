// Type-aware lint. The determinism rule keeps clocks, timers and randomness out of protocol code:
// only src/time and src/util may touch them (DEVELOPERS.md, "Determinism").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const bannedGlobals = [
  { name: 'setTimeout', message: 'Use the injected Clock (src/time).' },
  { name: 'setInterval', message: 'Use the injected Clock (src/time).' },
  { name: 'setImmediate', message: 'Use the injected Clock (src/time).' },
];
const bannedProps = [
  { object: 'Date', property: 'now', message: 'Use the injected Clock (src/time).' },
  { object: 'performance', property: 'now', message: 'Use the injected Clock (src/time).' },
  { object: 'Math', property: 'random', message: 'Use the injected Random (src/util/random.ts).' },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'out/**',
      'coverage/**',
      'native/build/**',
      'scratch/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/time/**', 'src/util/**', 'src/cli/**', 'src/bench/**'],
    rules: {
      'no-restricted-globals': ['error', ...bannedGlobals],
      'no-restricted-properties': ['error', ...bannedProps],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Plain Node scripts (the addon build, test fixtures run as child processes).
    files: ['**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);
