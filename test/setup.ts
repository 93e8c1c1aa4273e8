/** Loaded before every test file (`--import`): tests import modules directly, not through the package entry that registers the Node runtime. */
import '../src/runtime/node/index.js';
