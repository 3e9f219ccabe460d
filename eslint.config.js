// ESLint flat config: typescript-eslint's type-checked rule sets over the TypeScript sources
// (src/, test/, bench/, through tsconfig.json), the plain JavaScript rules over the scripts and
// the example plugin, and eslint-config-prettier last so that no ESLint rule argues with Prettier.
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'artifacts/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's runner tracks the promise that test()/it()/describe() return and
          // fails the run on a rejection: a file registers them at its top level without awaiting.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
        },
      ],
      // tsc's own convention (noUnusedParameters): an unused parameter an interface requires is
      // named _x; a rest sibling drops a key from a copy ({ admin: _admin, ...rest }).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // A let declared before the closures that read it and assigned once later (a promise the
      // closures wait for) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/dot-notation': [
        'error',
        {
          // Tests reach a class's internals with obj['member'], which TypeScript allows for private
          // members and which marks the reach; a key read from an index signature (a log line)
          // is written line['event'] because it may be absent.
          allowPrivateClassPropertyAccess: true,
          allowProtectedClassPropertyAccess: true,
          allowIndexSignaturePropertyAccess: true,
        },
      ],
    },
  },
  {
    // The build scripts and this file are plain JavaScript outside tsconfig.json: no types to check.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests swallow the errors of peers they reset on purpose (socket.on('error', () => {}))
      // and fake promise-returning interfaces (a DNS lookup, reload, a polled condition) with
      // async functions that have nothing to wait for.
      '@typescript-eslint/no-empty-function': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  prettier,
);
