// ESLint (flat config) for the browser JavaScript of the desk (handoff/web/static) and of the widget
// (handoff/channels/widget/static), and for its Node unit tests in tests/web/js. Run by
// tests/web/test_js.py; by hand: npm ci && npm run lint
import js from "@eslint/js";
import globals from "globals";

const TEXT_ONLY = "Build elements with h() (desk/dom.js): server data goes in as text only.";

export default [
  { ignores: ["node_modules/", ".venv/", "build/"] },
  js.configs.recommended,
  {
    rules: {
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
      "no-var": "error",
      "prefer-const": "error",
      eqeqeq: ["error", "smart"],
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-eval": "error",
      // Server data is rendered as text through h() (desk/dom.js); markup sinks are refused.
      "no-restricted-properties": ["error",
        ...["innerHTML", "outerHTML", "insertAdjacentHTML"].map((property) => ({ property, message: TEXT_ONLY })),
        { object: "document", property: "write", message: TEXT_ONLY }],
    },
  },
  {
    // The desk: ES modules in the browser.
    files: ["handoff/web/static/desk/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.browser },
  },
  {
    // The chat widget: a classic script embedded on other sites, so no modules.
    files: ["handoff/channels/widget/static/widget.js"],
    languageOptions: { ecmaVersion: 2020, sourceType: "script", globals: globals.browser },
  },
  {
    files: ["tests/web/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
];
