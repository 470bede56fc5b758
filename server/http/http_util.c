/* http_util.c: bounded body reads, query parameters, and the only code that writes responses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "casetrail/http.h"
#include "casetrail/json.h"
#include "casetrail/log.h"
#include "casetrail/metrics.h"
#include "casetrail/text.h"
#include "casetrail/watchdog.h"

/* Whether the connection may carry another request after this answer. Handlers read a body
 * before they succeed; an error may leave it unread, and civetweb would then read the rest of
 * it (up to its declared length, however large) before the next request: such connections,
 * and the server's own refusals, are closed instead. */
static bool may_keep_alive(struct mg_connection *conn, int status)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri == NULL || status == 503 || status == 408)
        return false;
    bool body = ri->content_length > 0 ||
                (ri->content_length < 0 && mg_get_header(conn, "Transfer-Encoding") != NULL);
    return !body || status < 400;
}

/* Formats the status line and headers into head (cap bytes); returns their length (cut to
 * cap - 1 should they not fit, which no caller's headers come near). */
static size_t format_head(struct mg_connection *conn, int status, const char *content_type,
                          long long len, const char *extra, char *head, size_t cap)
{
    char date[40];
    struct tm tm;
    time_t now = time(NULL);

    /* written here rather than with civetweb's header functions: those format Date with
     * gmtime(), whose shared buffer concurrent workers race on (found by ThreadSanitizer) */
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char body_head[160] = "";
    /* 204 and 304 carry no body, and RFC 9110 forbids describing one */
    if (status != 204 && status != 304 && len >= 0)
        snprintf(body_head, sizeof(body_head), "Content-Type: %s\r\nContent-Length: %lld\r\n",
                 content_type, len);
    else if (status != 204 && status != 304) /* a stream: its body ends with the connection */
        snprintf(body_head, sizeof(body_head), "Content-Type: %s\r\n", content_type);
    /* API answers are never cached; static files say their own policy in extra */
    bool own_cache = extra != NULL && strstr(extra, "Cache-Control:") != NULL;
    bool keep = len >= 0 && may_keep_alive(conn, status);
    if (!keep)
        mg_disable_connection_keep_alive(conn);
    int n = snprintf(head, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s"
                     "X-Content-Type-Options: nosniff\r\n%s%s"
                     "\r\n",
                     status, mg_get_response_code_text(conn, status), date, body_head,
                     own_cache ? "" : "Cache-Control: no-store\r\n", extra != NULL ? extra : "",
                     keep ? "" : "Connection: close\r\n");
    if (n <= 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void ct_http_write_head(struct mg_connection *conn, int status, const char *content_type,
                        long long len, const char *extra)
{
    char head[1024];
    size_t n = format_head(conn, status, content_type, len, extra, head, sizeof(head));
    if (n > 0)
        mg_write(conn, head, n);
}

static void send_extra(struct ct_req *req, int status, const char *content_type,
                       const char *body, size_t len, const char *extra)
{
    /* head and a small body leave in one write: one send, one segment, one wakeup of the
     * client instead of two for every API answer */
    char out[8192];
    bool with_body = len > 0 && strcmp(req->method, "HEAD") != 0;
    size_t n = format_head(req->conn, status, content_type, (long long)len, extra, out,
                           sizeof(out) / 8);
    if (with_body && len <= sizeof(out) - n) {
        memcpy(out + n, body, len);
        mg_write(req->conn, out, n + len);
    } else {
        if (n > 0)
            mg_write(req->conn, out, n);
        if (with_body)
            mg_write(req->conn, body, len);
    }
    req->status = status;
}

void ct_http_send(struct ct_req *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    send_extra(req, status, content_type, body, len, NULL);
}

void ct_http_send_json_extra(struct ct_req *req, int status, const cJSON *json,
                             const char *extra)
{
    char *text = cJSON_PrintUnformatted(json);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        ct_http_send(req, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    send_extra(req, status, "application/json", text, strlen(text), extra);
    free(text);
}

void ct_http_send_json(struct ct_req *req, int status, const cJSON *json)
{
    ct_http_send_json_extra(req, status, json, NULL);
}

void ct_http_send_page(struct ct_req *req, cJSON *root, const char *next)
{
    if (next[0] != '\0')
        cJSON_AddStringToObject(root, "next_cursor", next);
    else
        cJSON_AddNullToObject(root, "next_cursor");
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}

void ct_http_send_error(struct ct_req *req, const struct ct_err *err)
{
    ct_http_send_error_status(req, ct_err_http_status(err->rc), err);
}

void ct_http_send_error_status(struct ct_req *req, int status, const struct ct_err *err)
{
    char message[sizeof(err->message)];
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    /* messages quote client input (paths, field names) and may cut it mid-character */
    snprintf(message, sizeof(message), "%s", err->message);
    ct_utf8_sanitize(message);
    cJSON_AddStringToObject(e, "code", err->code);
    cJSON_AddStringToObject(e, "message", message);
    /* every 503 is temporary (database down or busy, draining): say when to come back */
    char wait[48];
    snprintf(wait, sizeof(wait), "Retry-After: %d\r\n",
             err->retry_after_s > 0 ? err->retry_after_s : 1);
    ct_http_send_json_extra(req, status, root, status == 503 || status == 429 ? wait : NULL);
    cJSON_Delete(root);
}

void ct_http_fail(struct ct_req *req, ct_rc rc, const char *code, const char *fmt, ...)
{
    struct ct_err err;
    va_list ap;
    memset(&err, 0, sizeof(err));
    err.rc = rc;
    snprintf(err.code, sizeof(err.code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof(err.message), fmt, ap);
    va_end(ap);
    ct_http_send_error(req, &err);
}

/* Starts the body deadline of req's connection (see ct_http_read_body). */
static void watch_body(struct ct_req *req, struct ct_watch *w)
{
    const struct mg_request_info *ri = mg_get_request_info(req->conn);
    int local = ri->server_port > 0 ? ri->server_port : req->srv->port;
    ct_watchdog_arm(req->srv->watchdog, w, ri->remote_addr, ri->remote_port, local,
                    req->srv->cfg.body_timeout_ms);
}

/* Reads and throws away what is left of an oversized body (bounded in size and, like every
 * body read, in time), so the client sees our 413 instead of a reset connection while it is
 * still sending. The buffer is small: worker stacks are about 100 KiB. */
static void discard_rest(struct ct_req *req)
{
    char sink[4096];
    size_t total = 0;
    struct ct_watch watch;
    int n;

    watch_body(req, &watch);
    while (total < 64u * 1024 * 1024 && (n = mg_read(req->conn, sink, sizeof(sink))) > 0)
        total += (size_t)n;
    ct_watchdog_disarm(req->srv->watchdog, &watch);
}

ct_rc ct_http_read_body(struct ct_req *req, size_t max, char **out, size_t *len,
                        struct ct_err *err)
{
    const struct mg_request_info *ri = mg_get_request_info(req->conn);
    size_t cap, used = 0;
    char *buf = NULL;
    struct ct_watch watch;
    bool watched = false, stalled = false, fired = false;
    ct_rc rc = CT_OK;

    *out = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max) {
        /* B-ingest 3: refuse from the header, before reading the body */
        return ct_err_set(err, CT_E_TOO_LARGE, "body_too_large",
                          "request body of %lld bytes exceeds the limit of %zu bytes",
                          ri->content_length, max);
    }
    cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 65536;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        goto out;
    }
    /* mg_read returns only once it has every byte asked for (or the client has been silent
     * for CASETRAIL_HEADER_TIMEOUT), so a client trickling a byte now and then would hold this
     * worker for ever: the watchdog ends the read at CASETRAIL_BODY_TIMEOUT */
    if (ri->content_length != 0) {
        watch_body(req, &watch);
        watched = true;
    }
    for (;;) {
        if (used + 1 >= cap) {
            /* no length given (chunked): grow, up to one byte past max to detect overflow */
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *nb = cap > max + 1 ? NULL : realloc(buf, ncap);
            if (nb == NULL) {
                rc = cap > max + 1 ? ct_err_set(err, CT_E_TOO_LARGE, "body_too_large",
                                                "request body exceeds the limit of %zu bytes", max)
                                   : ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        int n = mg_read(req->conn, buf + used, cap - used - 1);
        if (n < 0) {
            rc = ct_err_set(err, CT_E_INVALID, "body_unreadable",
                            "could not read the request body");
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            rc = ct_err_set(err, CT_E_TOO_LARGE, "body_too_large",
                            "request body exceeds the limit of %zu bytes", max);
            goto out;
        }
    }
    if (ri->content_length >= 0 && used < (size_t)ri->content_length) {
        /* with a length, mg_read gives 0 before the end only when the client fell silent for
         * CASETRAIL_HEADER_TIMEOUT or longer (or civetweb is stopping); one that left gives -1 */
        stalled = true;
        goto out;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    /* disarmed before anything else: the connection (and its descriptor) must not close while
     * the watchdog may still look for it */
    if (watched)
        fired = ct_watchdog_disarm(req->srv->watchdog, &watch);
    /* the watchdog's shutdown makes mg_read fail or end short; a whole body that made it in
     * time stands */
    if (fired && watch.reclaimed && (rc == CT_E_INVALID || stalled)) {
        ct_log_warn("request body cut off: %zu of %lld bytes had arrived, too slowly to keep a "
                    "worker others were waiting for (%s %s)",
                    used, ri->content_length, req->method, req->path);
        ct_metrics_count(req->srv->metrics, CT_COUNTER_CONNS_RECLAIMED, 1);
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "server_busy",
                        "every worker was taken and this request's body was arriving too "
                        "slowly to keep one: send it again");
    } else if (fired && rc == CT_E_INVALID) {
        ct_log_warn("request body timed out: %zu of %lld bytes arrived within %d ms (%s %s)",
                    used, ri->content_length, req->srv->cfg.body_timeout_ms, req->method,
                    req->path);
        rc = ct_err_set(err, CT_E_TIMEOUT, "body_timeout",
                        "the request body did not arrive within %d ms",
                        req->srv->cfg.body_timeout_ms);
    } else if (stalled) {
        ct_log_warn("request body timed out: %zu of %lld bytes arrived, then none for %d ms "
                    "or more (%s %s)",
                    used, ri->content_length, req->srv->cfg.header_timeout_ms, req->method,
                    req->path);
        rc = ct_err_set(err, CT_E_TIMEOUT, "body_timeout",
                        "the request body stopped arriving (nothing for %d ms or more)",
                        req->srv->cfg.header_timeout_ms);
    }
    free(buf);
    return rc;
}

ct_rc ct_http_read_json(struct ct_req *req, cJSON **out, struct ct_err *err)
{
    char *body = NULL;
    size_t len = 0;
    ct_rc rc;

    *out = NULL;
    /* API bodies are small; webhooks have their own larger limit */
    size_t max = req->srv->cfg.max_body < 1024 * 1024 ? req->srv->cfg.max_body : 1024 * 1024;
    rc = ct_http_read_body(req, max, &body, &len, err);
    if (rc != CT_OK)
        return rc;
    if (!ct_utf8_valid(body, len)) {
        free(body);
        return ct_err_set(err, CT_E_INVALID, "invalid_json", "request body is not valid UTF-8");
    }
    *out = ct_json_parse_strict(body, len, CT_JSON_DEPTH_API, err);
    free(body);
    if (*out == NULL)
        return err->rc;
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return ct_err_set(err, CT_E_INVALID, "invalid_json", "request body must be a JSON object");
    }
    return CT_OK;
}

bool ct_http_query(const struct ct_req *req, const char *name, char *buf, size_t len)
{
    if (req->query == NULL)
        return false;
    return mg_get_var(req->query, strlen(req->query), name, buf, len) >= 0;
}

bool ct_http_parse_id(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '1' || s[0] > '9' || *end != '\0' || errno != 0 || v <= 0)
        return false;
    *out = v;
    return true;
}

bool ct_http_path_id(struct ct_req *req, const char *what, long long *id)
{
    if (req->nparams > 0 && ct_http_parse_id(req->params[0], id))
        return true;
    char code[48];
    snprintf(code, sizeof(code), "%s_not_found", what);
    ct_http_fail(req, CT_E_NOT_FOUND, code, "%s \"%.40s\" not found", what,
                 req->nparams > 0 ? req->params[0] : "");
    return false;
}

bool ct_http_query_limit(struct ct_req *req, int *limit)
{
    char buf[CT_QUERY_BUF];
    long long v;
    *limit = 50;
    if (!ct_http_query(req, "limit", buf, sizeof(buf)))
        return true;
    if (!ct_http_parse_id(buf, &v) || v > 500) {
        ct_http_fail(req, CT_E_INVALID, "invalid_limit", "limit must be an integer from 1 to 500");
        return false;
    }
    *limit = (int)v;
    return true;
}

const char *ct_http_header(const struct ct_req *req, const char *name)
{
    return mg_get_header(req->conn, name);
}

void ct_http_discard_body(struct ct_req *req)
{
    discard_rest(req);
}
