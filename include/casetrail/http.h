/* http.h: what a request handler sees: the request, its route captures, the caller, and the
 * helpers that read bodies and send JSON answers. Handlers never call civetweb directly for
 * responses, so every answer is logged and counted the same way. */
#ifndef CASETRAIL_HTTP_H
#define CASETRAIL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"
#include "casetrail/server.h"
#include "casetrail/model.h"

struct mg_connection;

#define CT_ROUTE_MAX_PARAMS 4
/* Longest query parameter value (raw, before URL-decoding) the router lets through; handlers
 * size their buffers CT_QUERY_BUF so a value is never silently cut or dropped. */
#define CT_QUERY_VALUE_MAX 200
#define CT_QUERY_BUF (CT_QUERY_VALUE_MAX + 1)
/* The header line every 503 carries: each is temporary (database down or busy, draining). */
#define CT_HTTP_RETRY_AFTER "Retry-After: 1\r\n"

struct ct_req {
    struct mg_connection *conn;
    struct ct_server *srv;
    const char *method;
    const char *path;        /* decoded path, no query string */
    const char *query;       /* raw query string or NULL */
    char params[CT_ROUTE_MAX_PARAMS][128]; /* route captures, e.g. {id} */
    int nparams;
    bool authed;
    struct ct_user user;     /* valid when authed */
    bool by_session;         /* authed by the viewer's session cookie, not a bearer token */
    int status;              /* status sent, for the access log and metrics */
};

/* Writes a response head (status line, Date, Content-Type/Length, no-store, nosniff, extra
 * header lines ending in CRLF or NULL; Connection: close where the connection cannot be kept
 * alive). The body follows with mg_write. len < 0: a body of unknown length, ended by closing
 * the connection. */
void ct_http_write_head(struct mg_connection *conn, int status, const char *content_type,
                        long long len, const char *extra);
/* Sends body (borrowed) as the response with the given status and content type. */
void ct_http_send(struct ct_req *req, int status, const char *content_type, const char *body,
                  size_t len);
/* Serialises json (borrowed; caller still owns it) and sends it. */
void ct_http_send_json(struct ct_req *req, int status, const cJSON *json);
/* The same with extra header lines (each ending in CRLF), e.g. Set-Cookie. */
void ct_http_send_json_extra(struct ct_req *req, int status, const cJSON *json,
                             const char *extra);
/* Sends a list page: root (taken over and freed here) gets "next_cursor", next or null when
 * next is empty, and goes out as 200. */
void ct_http_send_page(struct ct_req *req, cJSON *root, const char *next);
/* Sends {"error":{"code","message"}} with the status of err->rc. */
void ct_http_send_error(struct ct_req *req, const struct ct_err *err);
/* The same with an explicit status (405 and the like, which no rc names). */
void ct_http_send_error_status(struct ct_req *req, int status, const struct ct_err *err);
/* Shorthand: fills a ct_err and sends it. */
void ct_http_fail(struct ct_req *req, ct_rc rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads the whole body, at most max bytes. On success *out is a malloc'd NUL-terminated copy
 * (caller frees) and *len its length. CT_E_TOO_LARGE (without reading it whole) when the body
 * exceeds max. */
ct_rc ct_http_read_body(struct ct_req *req, size_t max, char **out, size_t *len,
                        struct ct_err *err);
/* Reads and discards what is left of the body (bounded), so a refused client reads our answer
 * instead of a reset connection. */
void ct_http_discard_body(struct ct_req *req);
/* Reads and parses a JSON object body; *out is owned by the caller (cJSON_Delete). */
ct_rc ct_http_read_json(struct ct_req *req, cJSON **out, struct ct_err *err);

/* Copies the URL-decoded query parameter name into buf (at least CT_QUERY_BUF bytes); false
 * when absent. */
bool ct_http_query(const struct ct_req *req, const char *name, char *buf, size_t len);
/* Parses a positive decimal id (no sign, no leading zero, no trailing bytes). */
bool ct_http_parse_id(const char *s, long long *out);
/* Reads the first route capture as a positive id; otherwise answers 404 "<what>_not_found"
 * (what: "ticket", "approval") and returns false. */
bool ct_http_path_id(struct ct_req *req, const char *what, long long *id);
/* Reads ?limit= (default 50, 1 to 500: docs/DECISIONS.md#list-limits-and-cursors); otherwise
 * answers 400 and returns false. */
bool ct_http_query_limit(struct ct_req *req, int *limit);

/* ---- list filters, decoded from a table ---- */

enum ct_query_type {
    CT_Q_TEXT, /* const char * member: the value as given */
    CT_Q_BOOL, /* int member: 1 for "true", 0 for "false" (left alone when absent) */
    CT_Q_TIME, /* const char * member: a timestamptz literal (ct_text_parse_when) */
};

/* One query parameter of a list endpoint. An empty value counts as absent. */
struct ct_query_field {
    const char *name;
    enum ct_query_type type;
    size_t offset;                   /* offsetof the member in the filter struct */
    bool (*valid)(const char *value); /* CT_Q_TEXT: NULL accepts anything */
    const char *code;                /* the 400's code for a bad value */
    const char *message;             /* the 400's message for a bad value */
};

/* Decodes fields[0..n) from the raw query string into filter. Values are copied into
 * bufs[i] (one per field), which must outlive filter. CT_E_INVALID with the field's code and
 * message for a bad value. Pure: unit-tested without a connection. */
ct_rc ct_query_decode(const char *query, const struct ct_query_field *fields, size_t n,
                      void *filter, char (*bufs)[CT_QUERY_BUF], struct ct_err *err);
/* The same on a request's query; answers 400 and returns false on a bad value. */
bool ct_http_query_filters(struct ct_req *req, const struct ct_query_field *fields, size_t n,
                           void *filter, char (*bufs)[CT_QUERY_BUF]);
/* Copies ?cursor= into buf; false when absent or empty. Decode it with cursor.h and answer a
 * bad one with ct_http_bad_cursor. */
bool ct_http_cursor_param(const struct ct_req *req, char buf[CT_QUERY_BUF]);
/* Answers 400 invalid_cursor. */
void ct_http_bad_cursor(struct ct_req *req);

/* ---- strict parameters and time ranges (exports, reports: docs/DECISIONS.md#csv-exports) ---- */

/* Answers 400 (unknown_parameter, duplicate_parameter) and returns false when the query holds a
 * parameter not in allowed (NULL-terminated) or one twice. Names compare byte for byte. */
bool ct_http_only_params(struct ct_req *req, const char *const *allowed);
/* A from/to value: YYYY-MM-DD or an ISO 8601 timestamp with a zone (ct_text_parse_when). */
bool ct_http_valid_when(const char *s);
/* A valid from/to as PostgreSQL should read it: a bare date stays bare (that day's midnight in
 * the transaction's zone, ct_store_use_zone); a timestamp is rewritten with its own offset into
 * buf, and *v then points there. */
void ct_http_zone_time(const char **v, char buf[CT_QUERY_BUF]);
/* A staff member's name as users.name allows it. */
bool ct_http_valid_user_name(const char *s);
#define CT_HTTP_TIME_MESSAGE(p)                                                                \
    p " must be YYYY-MM-DD (that day's start in CASETRAIL_TIMEZONE) or an ISO 8601 timestamp"  \
      " with a zone"

/* Header value or NULL (case-insensitive name). */
const char *ct_http_header(const struct ct_req *req, const char *name);

#endif
