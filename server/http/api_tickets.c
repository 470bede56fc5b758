/* api_tickets.c: reading tickets and their timelines. Any role may read; a person opening a
 * ticket in the viewer is recorded in the access log. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/cursor.h"
#include "casetrail/evidence.h"
#include "casetrail/log.h"
#include "casetrail/outbound.h"
#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/verify.h"

struct list_job {
    struct ct_ticket_filter f;
    cJSON *tickets, *counts;
    char next[CT_CURSOR_MAX];
};

static ct_rc list_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct list_job *j = arg;
    cJSON_Delete(j->counts); /* a read retried after a reconnect starts over */
    j->counts = NULL;
    cJSON_Delete(j->tickets);
    j->tickets = NULL;
    return ct_store_tickets_list(tx, &j->f, &j->tickets, &j->counts, j->next, err);
}

static bool valid_priority(const char *s)
{
    return ct_priority_parse(s) != CT_PRIO_INVALID;
}

/* Search words: printable text (no control characters); blank is refused rather than
 * silently matching everything. */
static bool valid_search(const char *s)
{
    bool any = false;
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f)
            return false;
        any = any || *c != ' ';
    }
    return any && ct_utf8_valid(s, strlen(s));
}

static bool valid_status(const char *s)
{
    return ct_status_parse(s) != CT_ST_INVALID;
}

/* A calendar date YYYY-MM-DD from 1970 to 9999 that exists (PostgreSQL would refuse the
 * rest, as a server error). */
static bool valid_date(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    }
    if (s[10] != '\0')
        return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    return m != 2 || d < 29 || leap;
}

static bool valid_active(const char *s)
{
    return strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0 || strcmp(s, "7d") == 0 ||
           strcmp(s, "30d") == 0 || valid_date(s);
}

#define F(m) offsetof(struct ct_ticket_filter, m)
static const struct ct_query_field ticket_filters[] = {
    {"status", CT_Q_TEXT, F(status), valid_status, "invalid_status",
     "invalid status: expected new, open, pending, resolved or closed"},
    {"assignee", CT_Q_TEXT, F(assignee), NULL, NULL, NULL},
    {"escalated", CT_Q_BOOL, F(escalated), NULL, "invalid_escalated",
     "escalated must be true or false"},
    {"contact", CT_Q_TEXT, F(contact), NULL, NULL, NULL},
    {"priority", CT_Q_TEXT, F(priority), valid_priority, "invalid_priority",
     "invalid priority: expected low, normal, high or urgent"},
    {"pending_approval", CT_Q_BOOL, F(pending_approval), NULL, "invalid_pending_approval",
     "pending_approval must be true or false"},
    {"phone_number_id", CT_Q_TEXT, F(phone_number_id), NULL, NULL, NULL},
    {"q", CT_Q_TEXT, F(q), valid_search, "invalid_search",
     "q must be words of UTF-8 text without control characters"},
    {"active", CT_Q_TEXT, F(active), valid_active, "invalid_active",
     "active must be today, yesterday, 7d, 30d or a date YYYY-MM-DD"},
    {"active_from", CT_Q_TEXT, F(active_from), ct_http_valid_when, "invalid_active_from",
     "active_from must be YYYY-MM-DD or an ISO 8601 timestamp with a zone"},
    {"active_to", CT_Q_TEXT, F(active_to), ct_http_valid_when, "invalid_active_to",
     "active_to must be YYYY-MM-DD or an ISO 8601 timestamp with a zone"},
};
#undef F
#define NFILTERS (sizeof(ticket_filters) / sizeof(ticket_filters[0]))

void ct_api_tickets_list(struct ct_req *req)
{
    char bufs[NFILTERS][CT_QUERY_BUF], cursor[CT_QUERY_BUF];
    struct list_job j;
    struct ct_err err;

    memset(&j, 0, sizeof(j));
    j.f.escalated = -1;
    j.f.pending_approval = -1;
    if (!ct_http_query_limit(req, &j.f.limit) ||
        !ct_http_query_filters(req, ticket_filters, NFILTERS, &j.f, bufs))
        return;
    if (j.f.assignee != NULL && strcmp(j.f.assignee, "me") == 0)
        j.f.assignee = req->user.name;
    if (j.f.active != NULL && (j.f.active_from != NULL || j.f.active_to != NULL)) {
        ct_http_fail(req, CT_E_INVALID, "invalid_active",
                     "give active (days) or active_from/active_to (times), not both");
        return;
    }
    j.f.timezone = req->srv->cfg.timezone;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_ticket_decode(cursor, &j.f.cursor)) {
        ct_http_bad_cursor(req);
        return;
    }
    if (ct_store_with_conn(req->srv->pool, list_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.counts);
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "tickets", j.tickets);
    if (j.counts != NULL)
        cJSON_AddItemToObject(root, "counts", j.counts);
    ct_http_send_page(req, root, j.next);
}

struct get_job {
    long long id;
    cJSON *ticket;
    int limit;
    bool latest;
    struct ct_timeline_cursor cur;
    cJSON *items;
    struct ct_timeline_page page;
    long long user_id;
    const char *log_what; /* static: the access-log kind of this read, or NULL for none */
    bool logged;          /* the access-log row is in: a retried read must not add another */
};

static ct_rc get_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct get_job *j = arg;
    return ct_store_ticket_get(tx, j->id, &j->ticket, err);
}

void ct_api_ticket_get(struct ct_req *req)
{
    struct get_job j;
    struct ct_err err;
    memset(&j, 0, sizeof(j));
    if (!ct_http_path_id(req, "ticket", &j.id))
        return;
    if (ct_store_with_conn(req->srv->pool, get_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    ct_http_send_json(req, 200, j.ticket);
    cJSON_Delete(j.ticket);
}

static ct_rc timeline_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct get_job *j = arg;
    /* a read retried after a reconnect starts over */
    cJSON_Delete(j->ticket);
    j->ticket = NULL;
    cJSON_Delete(j->items);
    j->items = NULL;
    ct_rc rc = ct_store_ticket_timeline(tx, j->id, j->limit, j->latest, &j->cur, &j->ticket,
                                        &j->items, &j->page, err);
    /* on the connection the read already holds, after it (the ticket exists, the row can name
     * it): one short autocommitted INSERT, no second trip to the pool. A view that cannot be
     * recorded is not shown, as with evidence bundles. */
    if (rc == CT_OK && j->log_what != NULL && !j->logged) {
        rc = ct_store_access_log(tx, j->user_id, j->log_what, j->id, NULL,
                                 cJSON_GetArraySize(j->items), err);
        j->logged = rc == CT_OK;
    }
    return rc;
}

/* What a cursorless read by a signed-in person is, from ?purpose=: view (the default) opens
 * the ticket, print opens its print view, refresh re-reads a ticket the viewer already has
 * open (a jump to either end, a live update) and is not recorded again. Bearer tokens are
 * scripts and tools, not a person looking: never recorded. Answers 400 and returns false on a
 * bad value. */
static bool access_kind(struct ct_req *req, bool has_cursor, const char **what)
{
    char purpose[CT_QUERY_BUF], again[CT_QUERY_BUF];
    size_t qlen = req->query != NULL ? strlen(req->query) : 0;
    /* civetweb's own reading, for its length: "print%00" decodes to "print" and a NUL, and
     * a second purpose= would be a second answer to the question; both are refused */
    int n = req->query != NULL ? mg_get_var2(req->query, qlen, "purpose", purpose,
                                             sizeof(purpose), 0)
                               : -1;
    bool given = n != -1;
    bool twice = given && mg_get_var2(req->query, qlen, "purpose", again, sizeof(again), 1) != -1;

    *what = NULL;
    if (given && (n < 0 || (size_t)n != strlen(purpose) || twice ||
                  (strcmp(purpose, "view") != 0 && strcmp(purpose, "print") != 0 &&
                   strcmp(purpose, "refresh") != 0))) {
        ct_http_fail(req, CT_E_INVALID, "invalid_purpose",
                     "purpose must be view, print or refresh");
        return false;
    }
    if (given && has_cursor) {
        ct_http_fail(req, CT_E_INVALID, "invalid_purpose",
                     "purpose goes with the first page (no cursor) only");
        return false;
    }
    if (!req->by_session || has_cursor)
        return true;
    if (!given || strcmp(purpose, "view") == 0)
        *what = CT_ACCESS_TICKET_VIEW;
    else if (strcmp(purpose, "print") == 0)
        *what = CT_ACCESS_TICKET_PRINT;
    return true;
}

static void add_cursor(cJSON *root, const char *name, const char *cursor)
{
    if (cursor[0] != '\0')
        cJSON_AddStringToObject(root, name, cursor);
    else
        cJSON_AddNullToObject(root, name);
}

void ct_api_ticket_timeline(struct ct_req *req)
{
    struct get_job j;
    struct ct_err err;
    char cursor[CT_QUERY_BUF], from[CT_QUERY_BUF];

    memset(&j, 0, sizeof(j));
    if (!ct_http_path_id(req, "ticket", &j.id) || !ct_http_query_limit(req, &j.limit))
        return;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_timeline_decode(cursor, &j.cur)) {
        ct_http_bad_cursor(req);
        return;
    }
    /* from=end: the latest page, where a long ticket's reader starts */
    if (ct_http_query(req, "from", from, sizeof(from)) && from[0] != '\0') {
        if (strcmp(from, "end") != 0 && strcmp(from, "start") != 0) {
            ct_http_fail(req, CT_E_INVALID, "invalid_from", "from must be start or end");
            return;
        }
        if (j.cur.set) {
            ct_http_fail(req, CT_E_INVALID, "invalid_from",
                         "from and cursor cannot be given together");
            return;
        }
        j.latest = strcmp(from, "end") == 0;
    }
    if (!access_kind(req, j.cur.set, &j.log_what))
        return;
    j.user_id = req->user.id;
    if (ct_store_with_conn(req->srv->pool, timeline_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.ticket);
        ct_http_send_error(req, &err);
        return;
    }
    /* a page without a cursor is what staff open the ticket on: blue ticks, when wanted */
    if (req->srv->cfg.mark_read && !j.cur.set &&
        ct_outbound_mark_read(req->srv->pool, &req->user, j.id, &err) != CT_OK)
        ct_log_warn("could not queue the read mark of ticket %lld: %s", j.id, err.message);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "ticket", j.ticket);
    cJSON_AddItemToObject(root, "items", j.items);
    add_cursor(root, "resume_cursor", j.page.resume);
    add_cursor(root, "prev_cursor", j.page.prev);
    ct_http_send_page(req, root, j.page.next);
}

void ct_api_ticket_verify(struct ct_req *req)
{
    struct ct_verify_result r;
    struct ct_err err;
    long long id;

    if (!ct_http_path_id(req, "ticket", &id))
        return;
    /* a verify holds a pooled connection for as long as the chain takes to read: a few at
     * once, so forty clicks on a 30,000-event ticket cannot starve webhooks of connections */
    if (atomic_fetch_add(&req->srv->verifying, 1) >= req->srv->cfg.verify_concurrency) {
        atomic_fetch_sub(&req->srv->verifying, 1);
        ct_http_fail(req, CT_E_UNAVAILABLE, "verify_busy",
                     "%d verifications are running; try again shortly",
                     req->srv->cfg.verify_concurrency);
        return;
    }
    struct ct_digest_cover cover;
    ct_rc rc = ct_verify_chain(req->srv->pool, CT_CHAIN_TICKET, id, &r, &err);
    atomic_fetch_sub(&req->srv->verifying, 1);
    if (rc == CT_OK)
        rc = ct_verify_digest_cover(req->srv->pool, id, &cover, &err);
    if (rc != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "ok", r.ok);
    if (r.ok) {
        cJSON_AddNumberToObject(root, "events", (double)r.events);
        cJSON_AddStringToObject(root, "head", r.head);
        cJSON_AddNumberToObject(root, "redacted", (double)r.redacted);
    } else {
        cJSON_AddNumberToObject(root, "first_bad_seq", (double)r.first_bad_seq);
        cJSON_AddStringToObject(root, "reason", r.reason);
        if (r.table[0] != '\0') {
            /* a stored row disagrees with the chain: name it */
            cJSON_AddStringToObject(root, "table", r.table);
            cJSON_AddNumberToObject(root, "row", (double)r.row);
            cJSON_AddStringToObject(root, "field", r.field);
        }
    }
    if (cover.found) {
        cJSON *d = cJSON_AddObjectToObject(root, "digest");
        cJSON_AddStringToObject(d, "time", cover.time);
        cJSON_AddNumberToObject(d, "covers_seq", (double)cover.covers_seq);
    } else {
        cJSON_AddNullToObject(root, "digest");
    }
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}

void ct_api_ticket_evidence(struct ct_req *req)
{
    struct ct_err err;
    cJSON *bundle = NULL;
    long long id;
    char header[128];

    if (!ct_http_path_id(req, "ticket", &id))
        return;
    /* raw receipts and text salts: for those who settle disputes, not every agent */
    if (req->user.role == CT_ROLE_AGENT) {
        ct_http_fail(req, CT_E_FORBIDDEN, "forbidden",
                     "evidence bundles are for supervisors, QA and admins");
        return;
    }
    if (ct_evidence_bundle(req->srv->pool, &req->user, id, &bundle, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    snprintf(header, sizeof(header),
             "Content-Disposition: attachment; filename=\"ticket-%lld-evidence.json\"\r\n", id);
    ct_http_send_json_extra(req, 200, bundle, header);
    cJSON_Delete(bundle);
}
