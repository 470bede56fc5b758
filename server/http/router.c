/* router.c: the route table, path matching, the auth gate, static files, the access log and
 * request metrics. Every request passes through ct_router_dispatch exactly once. */
#define _XOPEN_SOURCE 700 /* strptime, for If-Modified-Since */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/ingest.h"
#include "casetrail/log.h"
#include "casetrail/metrics.h"
#include "casetrail/router.h"
#include "casetrail/sessions.h"
#include "casetrail/users.h"

static const struct ct_route routes[] = {
    {"GET", "/healthz", ct_api_healthz, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"GET", "/readyz", ct_api_readyz, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"GET", "/metrics", ct_api_metrics, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"GET", "/api/me", ct_api_me, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"POST", "/api/session", ct_api_session_create, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"DELETE", "/api/session", ct_api_session_delete, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/users", ct_api_users_list, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/live", ct_api_live, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/webhooks/whatsapp", ct_api_webhook_verify, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"POST", "/webhooks/whatsapp", ct_api_webhook_receive, CT_AUTH_PUBLIC, CT_ROLE_NONE},
    {"GET", "/api/tickets", ct_api_tickets_list, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/tickets/{id}", ct_api_ticket_get, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/tickets/{id}/timeline", ct_api_ticket_timeline, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/tickets/{id}/verify", ct_api_ticket_verify, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/tickets/{id}/evidence", ct_api_ticket_evidence, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"POST", "/api/tickets/{id}/assign", ct_api_ticket_assign, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/unassign", ct_api_ticket_unassign, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/status", ct_api_ticket_status, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/escalate", ct_api_ticket_escalate, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/deescalate", ct_api_ticket_deescalate, CT_AUTH_TOKEN,
     CT_ROLE_SUPERVISOR},
    {"POST", "/api/tickets/{id}/priority", ct_api_ticket_priority, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/notes", ct_api_ticket_note, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/messages", ct_api_ticket_reply, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/media", ct_api_ticket_media, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/templates", ct_api_ticket_template, CT_AUTH_TOKEN,
     CT_ROLE_AGENT},
    {"POST", "/api/tickets/{id}/approvals", ct_api_approval_request, CT_AUTH_TOKEN, CT_ROLE_AGENT},
    {"POST", "/api/approvals/{id}/decision", ct_api_approval_decide, CT_AUTH_TOKEN,
     CT_ROLE_SUPERVISOR},
    {"GET", "/api/media/{id}", ct_api_media_get, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/approvals", ct_api_approvals_list, CT_AUTH_TOKEN, CT_ROLE_NONE},
    /* supervisors, QA and admins (checked in the handler: the role order has no such rung) */
    {"GET", "/api/events", ct_api_events_list, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/access-log", ct_api_access_log, CT_AUTH_TOKEN, CT_ROLE_ADMIN},
    {"GET", "/api/reports/summary", ct_api_report_summary, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/agents/{name}/activity", ct_api_agent_activity, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"GET", "/api/webhooks/rejects", ct_api_webhook_rejects, CT_AUTH_TOKEN, CT_ROLE_SUPERVISOR},
    {"GET", "/api/rules/complaints", ct_api_rules_get, CT_AUTH_TOKEN, CT_ROLE_NONE},
    {"PUT", "/api/rules/complaints", ct_api_rules_put, CT_AUTH_TOKEN, CT_ROLE_ADMIN},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct ct_route *ct_router_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

/* Matches one pattern against path, capturing {name} segments. */
static bool match_pattern(const char *pat, const char *path, char params[][128], int *np)
{
    int n = 0;
    while (*pat != '\0' && *path != '\0') {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            size_t seg = strcspn(path, "/");
            if (close == NULL || seg == 0 || seg >= 128 || n >= CT_ROUTE_MAX_PARAMS)
                return false;
            memcpy(params[n], path, seg);
            params[n][seg] = '\0';
            n++;
            pat = close + 1;
            path += seg;
        } else if (*pat == *path) {
            pat++;
            path++;
        } else {
            return false;
        }
    }
    if (*pat != '\0' || *path != '\0')
        return false;
    *np = n;
    return true;
}

const struct ct_route *ct_router_match(const char *method, const char *path,
                                       char params[CT_ROUTE_MAX_PARAMS][128], int *nparams,
                                       bool *path_known)
{
    *path_known = false;
    *nparams = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        int np = 0;
        if (!match_pattern(routes[i].pattern, path, params, &np))
            continue;
        bool same = strcmp(routes[i].method, method) == 0 ||
                    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0);
        if (same) {
            *nparams = np;
            return &routes[i];
        }
        *path_known = true;
    }
    return NULL;
}

void ct_router_label(size_t i, char *buf, size_t len)
{
    if (i < NROUTES)
        snprintf(buf, len, "%s %s", routes[i].method, routes[i].pattern);
    else
        snprintf(buf, len, "%s", i == NROUTES ? "static" : "unmatched");
}

size_t ct_router_slots(void)
{
    return NROUTES + 2;
}

void ct_api_metrics(struct ct_req *req)
{
    struct ct_ingest_stats st;
    char ingest[1024];
    char *text = ct_metrics_render(req->srv->metrics, req->srv->pool);
    if (text == NULL) {
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        return;
    }
    /* webhooks per group commit: grouped / groups */
    ct_ingester_stats(req->srv->ingester, &st);
    int n = snprintf(ingest, sizeof(ingest),
                     "# HELP casetrail_ingest_groups_total Group-commit transactions committed.\n"
                     "# TYPE casetrail_ingest_groups_total counter\n"
                     "casetrail_ingest_groups_total %lld\n"
                     "# HELP casetrail_ingest_grouped_webhooks_total Webhooks committed in them.\n"
                     "# TYPE casetrail_ingest_grouped_webhooks_total counter\n"
                     "casetrail_ingest_grouped_webhooks_total %lld\n"
                     "# HELP casetrail_ingest_unbatched_total Groups whose set-based write"
                     " failed, written again row by row.\n"
                     "# TYPE casetrail_ingest_unbatched_total counter\n"
                     "casetrail_ingest_unbatched_total %lld\n"
                     "# HELP casetrail_ingest_preloaded_contacts_total Contacts locked ahead,"
                     " with their live tickets, by their group's two lookup statements.\n"
                     "# TYPE casetrail_ingest_preloaded_contacts_total counter\n"
                     "casetrail_ingest_preloaded_contacts_total %lld\n",
                     st.groups, st.webhooks, st.unbatched, st.preloaded);
    size_t tl = strlen(text);
    char *all = realloc(text, tl + (size_t)n + 1);
    if (all == NULL) {
        free(text);
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        return;
    }
    memcpy(all + tl, ingest, (size_t)n + 1);
    ct_http_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", all, tl + (size_t)n);
    free(all);
}

/* Content type by file name ending; text types are UTF-8. */
static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".json", "application/json"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"}, {".woff2", "font/woff2"},
    };
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i].ext);
        if (len > n && strcmp(path + len - n, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* RFC 9110 13.1: If-None-Match wins over If-Modified-Since when both are sent. */
static bool not_modified(const struct ct_req *req, const char *etag, time_t mtime)
{
    const char *inm = ct_http_header(req, "If-None-Match");
    const char *ims = ct_http_header(req, "If-Modified-Since");
    if (inm != NULL)
        return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
    if (ims != NULL) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        return end != NULL && *end == '\0' && mtime <= timegm(&tm);
    }
    return false;
}

/* Serves a file under the web root. Paths with ".." or hidden segments never leave it. */
static void serve_static(struct ct_req *req)
{
    char path[1024];
    const char *p = req->path;
    struct stat st;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        ct_http_fail(req, CT_E_NOT_FOUND, "not_found", "no route for %s %s", req->method,
                     req->path);
        return;
    }
    if (strstr(p, "/.") != NULL || strstr(p, "\\") != NULL) {
        ct_http_fail(req, CT_E_NOT_FOUND, "not_found", "file not found");
        return;
    }
    if (strcmp(p, "/") == 0)
        p = "/index.html";
    if ((size_t)snprintf(path, sizeof(path), "%s%s", req->srv->cfg.web_root, p) >= sizeof(path) ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        ct_http_fail(req, CT_E_NOT_FOUND, "not_found", "file not found");
        return;
    }
    /* streamed by hand, not mg_send_mime_file2: civetweb formats its Date and Last-Modified
     * headers with gmtime(), which races between workers */
    char etag[64], modified[40], extra[512];
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    strftime(modified, sizeof(modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%lx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    /* the viewer is scripts and styles from here only: no inline script, no framing (so no
     * click-jacking), no referrer leaking ticket ids; revalidated on every load */
    snprintf(extra, sizeof(extra),
             "Content-Security-Policy: default-src 'self'; object-src 'none'; base-uri 'none';"
             " form-action 'self'; frame-ancestors 'none'\r\n"
             "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"
             "Cache-Control: no-cache\r\nETag: %s\r\nLast-Modified: %s\r\n",
             etag, modified);
    if (not_modified(req, etag, st.st_mtime)) {
        ct_http_write_head(req->conn, 304, "", 0, extra);
        req->status = 304;
        return;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ct_http_fail(req, CT_E_NOT_FOUND, "not_found", "file not found");
        return;
    }
    ct_http_write_head(req->conn, 200, content_type(path), (long long)st.st_size, extra);
    if (strcmp(req->method, "HEAD") != 0) {
        char chunk[8192]; /* worker stacks are about 100 KiB */
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && mg_write(req->conn, chunk, n) > 0)
            ;
    }
    fclose(f);
    req->status = 200;
}

static bool safe_method(const struct ct_req *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* Whether the Origin header (when a browser sent one) names this server: the Host the request
 * came to, or CASETRAIL_PUBLIC_URL. */
static bool same_origin(const struct ct_req *req)
{
    const char *origin = ct_http_header(req, "Origin"), *host = ct_http_header(req, "Host");
    const char *public_url = req->srv->cfg.public_url;
    if (origin == NULL)
        return true;
    if (public_url != NULL && mg_strncasecmp(origin, public_url, strlen(origin)) == 0 &&
        (public_url[strlen(origin)] == '\0' || public_url[strlen(origin)] == '/'))
        return true;
    const char *sep = strstr(origin, "://");
    return sep != NULL && host != NULL && mg_strcasecmp(sep + 3, host) == 0;
}

/* A cookie rides along on any request the browser makes, even one a hostile page started:
 * a state change by cookie must also carry a header no cross-site form can add. */
static bool csrf_ok(struct ct_req *req)
{
    const char *mark = ct_http_header(req, CT_CSRF_HEADER);
    if (safe_method(req))
        return true;
    if (mark == NULL || strcmp(mark, "1") != 0) {
        ct_http_fail(req, CT_E_FORBIDDEN, "csrf", "a change made with the session cookie must"
                     " carry the header " CT_CSRF_HEADER ": 1");
        return false;
    }
    if (!same_origin(req)) {
        ct_http_fail(req, CT_E_FORBIDDEN, "csrf", "the request comes from another site");
        return false;
    }
    return true;
}

/* The auth gate: resolves the bearer token (scripts) or the session cookie (the viewer) and
 * checks the route's minimum role. */
static bool authorize(struct ct_req *req, const struct ct_route *r)
{
    struct ct_err err;
    const char *header = ct_http_header(req, "Authorization");
    const char *token = ct_auth_bearer(header), *cookies = ct_http_header(req, "Cookie");
    char session[CT_TOKEN_LEN + 8];
    ct_rc rc;

    if (header == NULL && cookies != NULL &&
        mg_get_cookie(cookies, CT_SESSION_COOKIE, session, sizeof(session)) > 0) {
        if (!csrf_ok(req))
            return false;
        rc = ct_sessions_resolve(req->srv->pool, session, req->srv->cfg.session_idle_min,
                                 req->srv->cfg.session_max_h, &req->user, &err);
        req->by_session = true;
    } else if (token == NULL) {
        ct_http_fail(req, CT_E_UNAUTHORIZED, "unauthorized",
                     "sign in, or send an API token: Authorization: Bearer TOKEN");
        return false;
    } else {
        rc = ct_users_authenticate(req->srv->pool, token, &req->user, &err);
    }
    if (rc != CT_OK) {
        ct_http_send_error(req, &err);
        return false;
    }
    req->authed = true;
    if (!ct_auth_role_at_least(req->user.role, r->min_role)) {
        ct_http_fail(req, CT_E_FORBIDDEN, "forbidden", "role %s may not %s %s",
                     ct_role_name(req->user.role), r->method, r->pattern);
        return false;
    }
    return true;
}

/* Every query value must fit CT_QUERY_VALUE_MAX, so no handler ever drops or cuts a filter. */
static bool query_ok(const char *q, char *bad, size_t badlen)
{
    while (q != NULL && *q != '\0') {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t value = eq != NULL ? n - (size_t)(eq - q) - 1 : 0;
        if (value > CT_QUERY_VALUE_MAX) {
            size_t name = eq != NULL ? (size_t)(eq - q) : n;
            snprintf(bad, badlen, "%.*s", (int)(name < 40 ? name : 40), q);
            return false;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return true;
}

static double elapsed_s(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* RFC 9112 6.3: a body's length must be unambiguous, or a proxy in front and casetrail could
 * read different requests from the same bytes (request smuggling). Content-Length must be
 * plain digits, given once (or repeated with the same value), and never beside
 * Transfer-Encoding; Transfer-Encoding may only be chunked. */
static bool framing_ok(const struct mg_request_info *ri, char *why, size_t len)
{
    const char *cl = NULL;
    bool te = false;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name, *v = ri->http_headers[i].value;
        if (mg_strcasecmp(name, "Transfer-Encoding") == 0) {
            te = true;
            if (mg_strcasecmp(v, "chunked") != 0) {
                snprintf(why, len, "Transfer-Encoding must be chunked");
                return false;
            }
        } else if (mg_strcasecmp(name, "Content-Length") == 0) {
            if (v[0] == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18) {
                snprintf(why, len, "Content-Length must be a decimal number of bytes");
                return false;
            }
            if (cl != NULL && strcmp(cl, v) != 0) {
                snprintf(why, len, "Content-Length is given twice with different values");
                return false;
            }
            cl = v;
        }
    }
    if (te && cl != NULL) {
        snprintf(why, len, "Content-Length and Transfer-Encoding must not both be given");
        return false;
    }
    return true;
}

int ct_router_dispatch(struct ct_server *srv, struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct ct_req req;
    struct timespec t0;
    const struct ct_route *r;
    bool known = false;
    size_t slot;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&req, 0, sizeof(req));
    req.conn = conn;
    req.srv = srv;
    req.method = ri->request_method;
    req.path = ri->local_uri != NULL ? ri->local_uri : "/";
    req.query = ri->query_string;

    r = ct_router_match(req.method, req.path, req.params, &req.nparams, &known);
    char bad[48], why[80];
    if (!framing_ok(ri, why, sizeof(why))) {
        slot = NROUTES + 1;
        ct_http_fail(&req, CT_E_INVALID, "bad_framing", "%s", why);
    } else if (r != NULL && !query_ok(req.query, bad, sizeof(bad))) {
        slot = (size_t)(r - routes);
        ct_http_fail(&req, CT_E_INVALID, "query_too_long",
                     "query parameter \"%s\" is longer than %d bytes", bad, CT_QUERY_VALUE_MAX);
    } else if (r != NULL) {
        slot = (size_t)(r - routes);
        if (r->auth == CT_AUTH_PUBLIC || authorize(&req, r))
            r->handler(&req);
    } else if (known) {
        slot = NROUTES + 1;
        struct ct_err err;
        ct_err_set(&err, CT_E_INVALID, "method_not_allowed",
                   "method %.20s is not allowed on %.200s", req.method, req.path);
        ct_http_send_error_status(&req, 405, &err);
    } else if (strncmp(req.path, "/api/", 5) == 0 || strncmp(req.path, "/webhooks/", 10) == 0) {
        slot = NROUTES + 1;
        ct_http_fail(&req, CT_E_NOT_FOUND, "not_found", "no route for %s %s", req.method, req.path);
    } else {
        slot = NROUTES;
        serve_static(&req);
    }
    double s = elapsed_s(&t0);
    ct_metrics_observe(srv->metrics, slot, req.status, s);
    /* the path only: a query string may carry the webhook verify token */
    ct_log_access(req.method, req.path, req.status, s * 1000.0, req.authed ? req.user.name : NULL);
    return req.status != 0 ? req.status : 500;
}
