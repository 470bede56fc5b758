/* router.h: the route table {method, path pattern, handler, auth, minimum role}. Adding an
 * endpoint is one row in router.c and one entry in docs/openapi.yaml (a test compares them). */
#ifndef CASETRAIL_ROUTER_H
#define CASETRAIL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "casetrail/auth.h"
#include "casetrail/http.h"

typedef void (*ct_handler)(struct ct_req *req);

enum ct_auth { CT_AUTH_PUBLIC = 0, CT_AUTH_TOKEN };

struct ct_route {
    const char *method;
    const char *pattern;  /* "/api/tickets/{id}": {name} matches one non-empty segment */
    ct_handler handler;
    enum ct_auth auth;
    enum ct_role min_role; /* with CT_AUTH_TOKEN; CT_ROLE_NONE = any active user */
};

/* The static route table; *n receives its length. */
const struct ct_route *ct_router_routes(size_t *n);

/* Finds the route for method + path, filling params with the captures. Returns NULL when
 * nothing matches; *path_known is then true when the path exists under another method (405). */
const struct ct_route *ct_router_match(const char *method, const char *path,
                                       char params[CT_ROUTE_MAX_PARAMS][128], int *nparams,
                                       bool *path_known);

/* Metrics slots: one per route, then "static", then "unmatched". */
size_t ct_router_slots(void);
/* Writes the metrics label of slot i ("GET /api/me", "static", "unmatched"). */
void ct_router_label(size_t i, char *buf, size_t len);

/* Handles one civetweb request end to end (route, auth, handler or static file, access log,
 * metrics). Returns the HTTP status sent. */
int ct_router_dispatch(struct ct_server *srv, struct mg_connection *conn);

#endif
