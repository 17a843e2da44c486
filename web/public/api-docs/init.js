// The REST gateway's OpenAPI document, generated from the contract, in Swagger UI served by the
// gateway itself (no CDN). "Authorize" takes an access token from Login for "Try it out".
window.ui = SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  docExpansion: 'none',
  defaultModelsExpandDepth: 0,
  validatorUrl: null,
})
