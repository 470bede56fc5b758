/* api_exports.c: the lists finance and QA take away: approvals (JSON pages, or every row as
 * CSV), ticket events across tickets (the same two ways), and the access log that records who
 * took what. CSV leaves as it is read, in chunks, never whole in memory
 * (docs/DECISIONS.md#csv-exports, #exports-access-log). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/csv.h"
#include "casetrail/cursor.h"
#include "casetrail/exports.h"
#include "casetrail/money.h"
#include "casetrail/store_export.h"
#include "casetrail/text.h"

/* Bytes of CSV gathered before they go out as one chunk. */
#define CSV_CHUNK (64 * 1024)
/* No single row comes near this (reasons and notes are bounded); past it the export stops. */
#define CSV_BUF_MAX (16u * 1024 * 1024)

/* ---- query parameters ---- */

static bool valid_id(const char *s)
{
    long long id;
    return ct_http_parse_id(s, &id);
}

/* An event action or access-log name: status.changed, approvals.csv ... */
static bool valid_word(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._") == n;
}

/* The filters as asked, for the access log: every filter given, by its name, and the zone that
 * gave bare dates their meaning. Returns a malloc'd JSON text (NULL when out of memory). */
static char *filters_json(const struct ct_query_field *fields, size_t n, const void *filter,
                          const char *zone)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        const char *v;
        memcpy(&v, (const char *)filter + fields[i].offset, sizeof(v));
        if (v != NULL)
            cJSON_AddStringToObject(o, fields[i].name, v);
    }
    cJSON_AddStringToObject(o, "timezone", zone);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* format=json (the default) or format=csv; false after answering 400. */
static bool read_format(struct ct_req *req, bool *csv)
{
    char buf[CT_QUERY_BUF];
    *csv = false;
    if (!ct_http_query(req, "format", buf, sizeof(buf)) || buf[0] == '\0' ||
        strcmp(buf, "json") == 0)
        return true;
    if (strcmp(buf, "csv") == 0) {
        *csv = true;
        return true;
    }
    ct_http_fail(req, CT_E_INVALID, "invalid_format", "format must be json or csv");
    return false;
}

static bool has_param(const struct ct_req *req, const char *name)
{
    char buf[CT_QUERY_BUF];
    return ct_http_query(req, name, buf, sizeof(buf));
}

/* Paging belongs to JSON, the byte order mark to CSV; false after answering 400. */
static bool format_params(struct ct_req *req, bool csv, bool *bom)
{
    char buf[CT_QUERY_BUF];
    bool given = ct_http_query(req, "bom", buf, sizeof(buf)) && buf[0] != '\0';
    *bom = false;
    if (csv && (has_param(req, "limit") || has_param(req, "cursor"))) {
        ct_http_fail(req, CT_E_INVALID, "paging_in_csv",
                     "a CSV export has every matching row: limit and cursor page JSON only");
        return false;
    }
    if (given && !csv) {
        ct_http_fail(req, CT_E_INVALID, "bom_without_csv", "bom applies to format=csv only");
        return false;
    }
    if (given && strcmp(buf, "0") != 0 && strcmp(buf, "1") != 0) {
        ct_http_fail(req, CT_E_INVALID, "invalid_bom", "bom must be 0 or 1");
        return false;
    }
    *bom = given && strcmp(buf, "1") == 0;
    return true;
}

/* Exports and cross-ticket event reads are for oversight: supervisors, QA and admins. Agents
 * read tickets one at a time. */
static bool may_export(struct ct_req *req, const char *what)
{
    enum ct_role r = req->user.role;
    if (r == CT_ROLE_SUPERVISOR || r == CT_ROLE_QA || r == CT_ROLE_ADMIN)
        return true;
    ct_http_fail(req, CT_E_FORBIDDEN, "forbidden", "%s are for supervisors, QA and admins", what);
    return false;
}

/* ---- CSV out ---- */

struct csv_writer {
    struct ct_req *req;
    const char *name;          /* the file name's start: "approvals", "events" */
    const char *const *header; /* column names */
    int ncols;
    bool bom, chunked, broken;
    bool slot_held;            /* counts in srv->exporting */
    struct ct_buf buf;         /* rows not sent yet: at most about CSV_CHUNK */
    long long pending, sent;   /* rows in buf; rows written to the connection */
    char *scratch;             /* compacted JSON of one cell (owned) */
    size_t scratch_cap;
};

static bool write_all(struct ct_req *req, const char *p, size_t n)
{
    return n == 0 || mg_write(req->conn, p, n) == (int)n;
}

/* Sends what is gathered: one chunk with chunked transfer coding (HTTP/1.1), or the bytes
 * themselves on a connection that ends the body by closing (HTTP/1.0). False once the client
 * is gone: every later call is false too. */
static bool csv_flush(struct csv_writer *w)
{
    size_t len = 0;
    if (w->broken)
        return false;
    if (w->buf.len == 0 && !w->buf.failed)
        return true;
    char *data = ct_buf_take(&w->buf, &len); /* NULL when a row did not fit CSV_BUF_MAX */
    bool ok = data != NULL;
    if (ok && w->chunked) {
        char size[24];
        int k = snprintf(size, sizeof(size), "%zx\r\n", len);
        ok = write_all(w->req, size, (size_t)k) && write_all(w->req, data, len) &&
             write_all(w->req, "\r\n", 2);
    } else if (ok) {
        ok = write_all(w->req, data, len);
    }
    free(data);
    w->broken = !ok;
    if (ok) {
        w->sent += w->pending;
        w->pending = 0;
    }
    return ok;
}

/* A row is complete in buf: counts it, and sends the chunk once it is big enough. False stops
 * the export: the client left, or casetrail is shutting down (a restart cuts a long export
 * rather than hold the drain; the client sees an incomplete body and can ask again). */
static bool csv_row_done(struct csv_writer *w)
{
    ct_csv_row_end(&w->buf);
    w->pending++;
    if (atomic_load(&w->req->srv->draining))
        return false;
    return w->buf.len < CSV_CHUNK || csv_flush(w);
}

static bool csv_begin(void *arg, const char *date)
{
    struct csv_writer *w = arg;
    const struct mg_request_info *ri = mg_get_request_info(w->req->conn);
    char head[640], now[40];
    struct tm tm;
    time_t t = time(NULL);

    /* a close-delimited body cannot tell a cut export from a whole one; a chunked body ends
     * with an empty chunk, so a client (curl, Python, a browser) sees a cut one as an error */
    w->chunked = ri->http_version != NULL && strcmp(ri->http_version, "1.0") != 0;
    /* the head says close: civetweb, which does not read heads written for it, must too */
    mg_disable_connection_keep_alive(w->req->conn);
    gmtime_r(&t, &tm); /* civetweb's own Date header uses gmtime(), which races (http_util.c) */
    strftime(now, sizeof(now), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: text/csv; charset=utf-8\r\n%s"
                     "Content-Disposition: attachment; filename=\"%s-%.8s.csv\"\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     now, w->chunked ? "Transfer-Encoding: chunked\r\n" : "", w->name, date);
    w->req->status = 200;
    if (n <= 0 || (size_t)n >= sizeof(head) || !write_all(w->req, head, (size_t)n)) {
        w->broken = true;
        return false;
    }
    if (strcmp(w->req->method, "HEAD") == 0)
        return false; /* the head was the answer */
    if (w->bom)
        ct_buf_adds(&w->buf, CT_CSV_BOM);
    ct_csv_header(&w->buf, w->header, w->ncols);
    return true;
}

static bool csv_flush_all(void *arg)
{
    return csv_flush(arg);
}

/* The end of the body. The export's slot is given back first: its database work is over, and a
 * client that starts the next export as soon as this one ends must find the slot free. */
static bool csv_finish(void *arg)
{
    struct csv_writer *w = arg;
    if (w->slot_held) {
        atomic_fetch_sub(&w->req->srv->exporting, 1);
        w->slot_held = false;
    }
    return !w->chunked || write_all(w->req, "0\r\n\r\n", 5);
}

static long long csv_sent(void *arg)
{
    return ((struct csv_writer *)arg)->sent;
}

static const char *const approval_columns[] = {
    "approval_id", "ticket_id", "contact_name", "contact_number", "kind", "amount_minor",
    "amount", "currency", "requested_by", "request_reason", "requested_at", "decision",
    "decided_by", "decision_reason", "decided_at",
};

static bool csv_approval(void *arg, const struct ct_export_approval *a)
{
    struct csv_writer *w = arg;
    struct ct_buf *b = &w->buf;
    char amount[48] = "";
    if (a->amount_minor != NULL)
        ct_money_format(strtoll(a->amount_minor, NULL, 10), ct_money_exponent(a->currency), amount,
                        sizeof(amount));
    ct_csv_cell(b, a->id, CT_CSV_NUMBER, true);
    ct_csv_cell(b, a->ticket_id, CT_CSV_NUMBER, false);
    ct_csv_cell(b, a->contact_name, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->contact_number, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->kind, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->amount_minor, CT_CSV_NUMBER, false);
    ct_csv_cell(b, amount, CT_CSV_NUMBER, false);
    ct_csv_cell(b, a->currency, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->requested_by, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->reason, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->requested_at, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->status, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->decided_by, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->decision_reason, CT_CSV_TEXT, false);
    ct_csv_cell(b, a->decided_at, CT_CSV_TEXT, false);
    return csv_row_done(w);
}

static const char *const event_columns[] = {
    "event_id", "ticket_id", "seq", "occurred_at", "recorded_at", "actor_type", "actor_id",
    "actor_name", "action", "from", "to", "reason", "data", "hash",
};

/* The event's data as compact JSON (NULL stays an empty cell). */
static const char *compact(struct csv_writer *w, const char *json)
{
    size_t need = json != NULL ? strlen(json) + 1 : 0;
    if (json == NULL)
        return NULL;
    if (need > w->scratch_cap) {
        char *p = realloc(w->scratch, need);
        if (p == NULL)
            return NULL;
        w->scratch = p;
        w->scratch_cap = need;
    }
    ct_csv_json_compact(json, w->scratch);
    return w->scratch;
}

static bool csv_event(void *arg, const struct ct_export_event *e)
{
    struct csv_writer *w = arg;
    struct ct_buf *b = &w->buf;
    const char *data = compact(w, e->data);
    if (e->data != NULL && data == NULL)
        return false; /* out of memory: stop rather than write a row without its data */
    ct_csv_cell(b, e->id, CT_CSV_NUMBER, true);
    ct_csv_cell(b, e->ticket_id, CT_CSV_NUMBER, false);
    ct_csv_cell(b, e->seq, CT_CSV_NUMBER, false);
    ct_csv_cell(b, e->occurred_at, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->recorded_at, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->actor_type, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->actor_id, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->actor_name, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->action, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->from, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->to, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->reason, CT_CSV_TEXT, false);
    ct_csv_cell(b, data, CT_CSV_TEXT, false);
    ct_csv_cell(b, e->hash, CT_CSV_TEXT, false);
    return csv_row_done(w);
}

/* Streams one export as CSV. Each export holds a database connection for as long as the client
 * takes to read it, so at most half the pool streams at once (503 export_busy beyond). */
static void stream_csv(struct ct_req *req, struct ct_export_request *r, const char *name,
                       bool bom)
{
    struct csv_writer w;
    struct ct_err err;
    bool began = false;
    int max = ct_pool_size(req->srv->pool) / 2;

    if (atomic_fetch_add(&req->srv->exporting, 1) >= (max > 0 ? max : 1)) {
        atomic_fetch_sub(&req->srv->exporting, 1);
        ct_http_fail(req, CT_E_UNAVAILABLE, "export_busy",
                     "%d exports are streaming; try again shortly", max > 0 ? max : 1);
        return;
    }
    memset(&w, 0, sizeof(w));
    w.req = req;
    w.name = name;
    w.bom = bom;
    if (r->approvals != NULL) {
        w.header = approval_columns;
        w.ncols = (int)(sizeof(approval_columns) / sizeof(approval_columns[0]));
    } else {
        w.header = event_columns;
        w.ncols = (int)(sizeof(event_columns) / sizeof(event_columns[0]));
    }
    ct_buf_init(&w.buf, CSV_BUF_MAX);
    w.slot_held = true;
    struct ct_export_writer writer = {{csv_begin, csv_approval, csv_event, &w}, csv_flush_all,
                                      csv_finish, csv_sent};
    r->zone = req->srv->cfg.timezone;
    r->who = &req->user;
    ct_rc rc = ct_exports_stream(req->srv->pool, r, &writer, &began, &err);
    if (rc != CT_OK && !began)
        ct_http_send_error(req, &err);
    /* once begun, a cut export ends without the last chunk: the client sees it incomplete */
    ct_buf_free(&w.buf);
    free(w.scratch);
    if (w.slot_held)
        atomic_fetch_sub(&req->srv->exporting, 1);
}

/* ---- GET /api/approvals ---- */

struct approvals_job {
    struct ct_approval_filter f;
    const char *zone;
    cJSON *items;
    char next[CT_CURSOR_MAX];
};

static ct_rc approvals_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct approvals_job *j = arg;
    cJSON_Delete(j->items); /* a retried transaction starts over */
    j->items = NULL;
    ct_rc rc = ct_store_use_zone(tx, j->zone, err);
    return rc == CT_OK ? ct_store_approvals_list(tx, &j->f, &j->items, j->next, err) : rc;
}

static bool valid_approval_status(const char *s)
{
    return ct_approval_status_parse(s) != CT_APPR_INVALID;
}

static bool valid_kind(const char *s)
{
    return ct_kind_parse(s) != CT_KIND_INVALID;
}

#define F(m) offsetof(struct ct_approval_filter, m)
static const struct ct_query_field approval_filters[] = {
    {"status", CT_Q_TEXT, F(status), valid_approval_status, "invalid_status",
     "invalid status: expected pending, approved or denied"},
    {"kind", CT_Q_TEXT, F(kind), valid_kind, "invalid_kind", "invalid approval kind"},
    /* names are checked, so every filter recorded in the access log is text PostgreSQL takes */
    {"requested_by", CT_Q_TEXT, F(requested_by), ct_http_valid_user_name, "invalid_user",
     "requested_by must be a staff member's name"},
    {"decided_by", CT_Q_TEXT, F(decided_by), ct_http_valid_user_name, "invalid_user",
     "decided_by must be a staff member's name"},
    {"from", CT_Q_TEXT, F(from), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("from")},
    {"to", CT_Q_TEXT, F(to), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("to")},
};
#undef F
#define NAPPROVAL (sizeof(approval_filters) / sizeof(approval_filters[0]))

void ct_api_approvals_list(struct ct_req *req)
{
    static const char *const allowed[] = {"status", "kind", "requested_by", "decided_by", "from",
                                          "to", "limit", "cursor", "format", "bom", NULL};
    char bufs[NAPPROVAL][CT_QUERY_BUF], cursor[CT_QUERY_BUF], from[CT_QUERY_BUF],
        to[CT_QUERY_BUF];
    struct approvals_job j;
    struct ct_err err;
    bool csv, bom;

    memset(&j, 0, sizeof(j));
    if (!ct_http_only_params(req, allowed) || !read_format(req, &csv) ||
        (csv && !may_export(req, "approval exports")) || !format_params(req, csv, &bom) ||
        (!csv && !ct_http_query_limit(req, &j.f.limit)) ||
        !ct_http_query_filters(req, approval_filters, NAPPROVAL, &j.f, bufs))
        return;
    if (!csv && ct_http_cursor_param(req, cursor) &&
        !ct_cursor_id_decode('a', cursor, &j.f.cursor)) {
        ct_http_bad_cursor(req);
        return;
    }
    char *filters = csv ? filters_json(approval_filters, NAPPROVAL, &j.f,
                                       req->srv->cfg.timezone)
                        : NULL;
    ct_http_zone_time(&j.f.from, from);
    ct_http_zone_time(&j.f.to, to);
    if (csv) {
        struct ct_export_request r = {.what = CT_ACCESS_APPROVALS_CSV, .filters_json = filters,
                                      .approvals = &j.f};
        if (filters == NULL)
            ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        else
            stream_csv(req, &r, "approvals", bom);
        free(filters);
        return;
    }
    j.zone = req->srv->cfg.timezone;
    if (ct_store_in_tx(req->srv->pool, approvals_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.items);
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "approvals", j.items);
    ct_http_send_page(req, root, j.next);
}

/* ---- GET /api/events ---- */

/* The query as given; ticket becomes the filter's id once checked. */
struct event_query {
    const char *ticket, *actor, *action, *from, *to;
};

#define F(m) offsetof(struct event_query, m)
static const struct ct_query_field event_filters[] = {
    {"ticket", CT_Q_TEXT, F(ticket), valid_id, "invalid_ticket",
     "ticket must be a ticket id (a positive integer)"},
    {"actor", CT_Q_TEXT, F(actor), ct_http_valid_user_name, "invalid_actor",
     "actor must be a staff member's name"},
    {"action", CT_Q_TEXT, F(action), valid_word, "invalid_action",
     "action must be an event action such as status.changed"},
    {"from", CT_Q_TEXT, F(from), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("from")},
    {"to", CT_Q_TEXT, F(to), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("to")},
};
#undef F
#define NEVENT (sizeof(event_filters) / sizeof(event_filters[0]))

void ct_api_events_list(struct ct_req *req)
{
    static const char *const allowed[] = {"ticket", "actor", "action", "from", "to", "limit",
                                          "cursor", "format", "bom", NULL};
    char bufs[NEVENT][CT_QUERY_BUF], cursor[CT_QUERY_BUF], from[CT_QUERY_BUF], to[CT_QUERY_BUF];
    struct event_query q;
    struct ct_event_filter f;
    struct ct_err err;
    bool csv, bom;

    memset(&q, 0, sizeof(q));
    memset(&f, 0, sizeof(f));
    if (!may_export(req, "events across tickets") || !ct_http_only_params(req, allowed) ||
        !read_format(req, &csv) || !format_params(req, csv, &bom) ||
        (!csv && !ct_http_query_limit(req, &f.limit)) ||
        !ct_http_query_filters(req, event_filters, NEVENT, &q, bufs))
        return;
    if (!csv && ct_http_cursor_param(req, cursor) &&
        !ct_cursor_at_decode('e', cursor, &f.cursor)) {
        ct_http_bad_cursor(req);
        return;
    }
    char *filters = filters_json(event_filters, NEVENT, &q, req->srv->cfg.timezone);
    if (filters == NULL) {
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        return;
    }
    if (q.ticket != NULL)
        ct_http_parse_id(q.ticket, &f.ticket_id);
    f.actor = q.actor;
    f.action = q.action;
    f.from = q.from;
    f.to = q.to;
    ct_http_zone_time(&f.from, from);
    ct_http_zone_time(&f.to, to);
    if (csv) {
        struct ct_export_request r = {.what = CT_ACCESS_EVENTS_CSV, .filters_json = filters,
                                      .events = &f};
        stream_csv(req, &r, "events", bom);
    } else {
        cJSON *items = NULL;
        char next[CT_CURSOR_MAX];
        if (ct_exports_events_page(req->srv->pool, &req->user, req->srv->cfg.timezone, &f,
                                   filters, &items, next, &err) != CT_OK) {
            ct_http_send_error(req, &err);
        } else {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "events", items);
            ct_http_send_page(req, root, next);
        }
    }
    free(filters);
}

/* ---- GET /api/access-log (admins; the router checks) ---- */

struct access_job {
    struct ct_access_filter f;
    const char *zone;
    cJSON *items;
    char next[CT_CURSOR_MAX];
};

static ct_rc access_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct access_job *j = arg;
    cJSON_Delete(j->items);
    j->items = NULL;
    ct_rc rc = ct_store_use_zone(tx, j->zone, err);
    return rc == CT_OK ? ct_store_access_log_list(tx, &j->f, &j->items, j->next, err) : rc;
}

#define F(m) offsetof(struct ct_access_filter, m)
static const struct ct_query_field access_filters[] = {
    {"user", CT_Q_TEXT, F(user), ct_http_valid_user_name, "invalid_user",
     "user must be a staff member's name"},
    {"what", CT_Q_TEXT, F(what), valid_word, "invalid_what",
     "what must be a kind of read such as evidence, approvals.csv, events.csv or events"},
    {"from", CT_Q_TEXT, F(from), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("from")},
    {"to", CT_Q_TEXT, F(to), ct_http_valid_when, "invalid_time",
     CT_HTTP_TIME_MESSAGE("to")},
};
#undef F
#define NACCESS (sizeof(access_filters) / sizeof(access_filters[0]))

void ct_api_access_log(struct ct_req *req)
{
    static const char *const allowed[] = {"user", "what", "from", "to", "limit", "cursor", NULL};
    char bufs[NACCESS][CT_QUERY_BUF], cursor[CT_QUERY_BUF], from[CT_QUERY_BUF], to[CT_QUERY_BUF];
    struct access_job j;
    struct ct_err err;

    memset(&j, 0, sizeof(j));
    if (!ct_http_only_params(req, allowed) || !ct_http_query_limit(req, &j.f.limit) ||
        !ct_http_query_filters(req, access_filters, NACCESS, &j.f, bufs))
        return;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_at_decode('g', cursor, &j.f.cursor)) {
        ct_http_bad_cursor(req);
        return;
    }
    ct_http_zone_time(&j.f.from, from);
    ct_http_zone_time(&j.f.to, to);
    j.zone = req->srv->cfg.timezone;
    if (ct_store_in_tx(req->srv->pool, access_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.items);
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "entries", j.items);
    ct_http_send_page(req, root, j.next);
}
