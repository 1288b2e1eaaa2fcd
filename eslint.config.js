// Lint: typescript-eslint on the strict TypeScript, the rules that catch real bugs in async code
// (a promise nobody awaits), and the direction imports may take between folders (docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// Imports run one way (docs/architecture.md, "Layers"): a folder may import its own layer and the
// layers before it in this list, never one after it. The lowest layer may read state/types.ts
// (plain types), nothing else of state/.
const LAYERS = [
  ['controller/model', 'controller/engine'],
  ['state', 'controller/clients', 'recipes'],
  ['reconcilers', 'controller/views'],
  ['controller/runtime', 'controller/forge'],
  ['controller/http'],
  ['controller/cli'],
];
const LAYER_ZONES = LAYERS.flatMap((layer, i) =>
  layer.flatMap((target) =>
    LAYERS.slice(i + 1)
      .flat()
      .map((from) => ({
        target: `./${target}`,
        from: `./${from}`,
        except: from === 'state' ? ['./types.ts'] : [],
        message: `${target} is a lower layer than ${from}: imports run one way (docs/architecture.md, Layers)`,
      })),
  ),
);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/playwright/**/*.spec.ts', 'recipes/*/playwright/**', 'eslint.config.js', 'vitest.config.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones: LAYER_ZONES }],
      // An async function without await is how an interface's async method reads; not a bug.
      '@typescript-eslint/require-await': 'off',
      // The regular expressions that match control characters (ANSI colours, NUL) mean to.
      'no-control-regex': 'off',
    },
  },
  {
    // Tests read untyped JSON and YAML documents (compose files, API bodies) field by field.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
);
