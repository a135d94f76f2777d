// The gateway's GraphiQL page: GraphiQL 4 (UMD build) with the explorer plugin, every file
// served by the gateway itself (see gateway/graphiql.py). Settings come from the page's
// <script id="graphiql-config" type="application/json"> block.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("graphiql-config").textContent);

  // The prefilled Authorization header ("Bearer <...>") is a hint, not a credential: it is
  // left out of requests until a real token replaces it, so that queries work before that.
  const PLACEHOLDER = /^\s*(Bearer|Token)\s+<[^>]*>\s*$/i;

  function withoutPlaceholder(init) {
    const headers = new Headers((init && init.headers) || {});
    const value = headers.get("authorization");
    if (value !== null && PLACEHOLDER.test(value)) {
      headers.delete("authorization");
    }
    return Object.assign({}, init, { headers: headers });
  }

  const fetcher = GraphiQL.createFetcher({
    url: config.url,
    fetch: function (input, init) {
      return window.fetch(input, withoutPlaceholder(init));
    },
  });

  // ?query=... (and &variables=...) opens a shared document instead of the saved one.
  const params = new URLSearchParams(window.location.search);
  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function GatewayGraphiQL() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: config.defaultQuery,
      defaultHeaders: config.defaultHeaders,
      query: params.get("query") || undefined,
      variables: params.get("variables") || undefined,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GatewayGraphiQL),
  );
})();
