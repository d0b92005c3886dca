// Loaded between require.js and embed-amd.js (see nb_ipywidgets_js in _config.yml).
// The widget manager finds its font files relative to its require.js module id
// ("@jupyter-widgets/html-manager/dist/..."), which by default resolves beside the page.
// Map that id to the folder holding this file and embed-amd.js, so the fonts load from the book itself.
(function () {
  var here = document.currentScript.src.replace(/\/[^\/]*$/, "");
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": here } });
})();
