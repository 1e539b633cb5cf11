// Starts Swagger UI on the generated spec. A file of its own, not an inline script, so the
// page's Content-Security-Policy needs no 'unsafe-inline'. No validator badge: it would call
// an outside service.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.spec,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
})();
