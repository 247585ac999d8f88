/* http_routes.c - THE route table of the HTTP server: one row per route with its path pattern,
 * the methods it takes (each with the role it needs and its handler) and the Allow text of a
 * 405. http_route_match (http_parse.c) walks it in order, http.c calls the matched handler;
 * adding an API route is one row here and its handler. */
#include "http/http_internal.h"

/* Laid out by hand, one route to a row: */
/* clang-format off */
const http_route_def http_routes[] = {
    {HTTP_ROUTE_METRICS, "/metrics", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_metrics}}},
    {HTTP_ROUTE_HEALTH, "/api/v1/health", "GET, HEAD",
     {{HTTP_M_GET, AUTH_NONE, http_api_health}}},
    {HTTP_ROUTE_FORWARDER, "/api/v1/forwarder", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_part}}},
    {HTTP_ROUTE_SOURCES, "/api/v1/sources", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_part}}},
    {HTTP_ROUTE_STATS, "/api/v1/stats", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_stats}}},
    {HTTP_ROUTE_EXPORT, "/api/v1/export", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_export}}},
    {HTTP_ROUTE_INFERENCES, "/api/v1/inferences", "GET, HEAD, POST",
     {{HTTP_M_GET, AUTH_READ, http_api_list}, {HTTP_M_POST, AUTH_INGEST, http_api_ingest}}},
    {HTTP_ROUTE_INFERENCE, "/api/v1/inferences/{id}", "GET, HEAD, DELETE",
     {{HTTP_M_GET, AUTH_READ, http_api_get}, {HTTP_M_DELETE, AUTH_ADMIN, http_api_delete}}},
    {HTTP_ROUTE_IMAGE, "/api/v1/inferences/{id}/image", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_image}}},
    {HTTP_ROUTE_THUMBNAIL, "/api/v1/inferences/{id}/thumbnail", "GET, HEAD",
     {{HTTP_M_GET, AUTH_READ, http_api_thumbnail}}},
    /* The dashboard: static files take GET and HEAD only, and need no token because a browser
     * navigating to the page cannot send one (the page asks for it). */
    {HTTP_ROUTE_STATIC, "/*", "GET, HEAD",
     {{HTTP_M_GET, AUTH_NONE, http_static}}},
};
/* clang-format on */

const size_t http_routes_n = sizeof http_routes / sizeof http_routes[0];
