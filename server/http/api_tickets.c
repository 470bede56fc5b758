/* api_tickets.c: reading tickets and their timelines. Any role may read. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct ct_timeline_cursor cur;
    cJSON *items;
    char next[CT_CURSOR_MAX], resume[CT_CURSOR_MAX];
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
    ct_rc rc = ct_store_ticket_get(tx, j->id, &j->ticket, err);
    if (rc == CT_OK)
        rc = ct_store_timeline(tx, j->id, j->limit, &j->cur, &j->items, j->next, j->resume,
                               err);
    return rc;
}

void ct_api_ticket_timeline(struct ct_req *req)
{
    struct get_job j;
    struct ct_err err;
    char cursor[CT_QUERY_BUF];

    memset(&j, 0, sizeof(j));
    if (!ct_http_path_id(req, "ticket", &j.id) || !ct_http_query_limit(req, &j.limit))
        return;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_timeline_decode(cursor, &j.cur)) {
        ct_http_bad_cursor(req);
        return;
    }
    /* one snapshot for ticket and items would need a transaction; reads are fine without */
    if (ct_store_with_conn(req->srv->pool, timeline_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.ticket);
        ct_http_send_error(req, &err);
        return;
    }
    /* the first page is what staff see when they open the ticket: blue ticks, when wanted */
    if (req->srv->cfg.mark_read && !j.cur.set &&
        ct_outbound_mark_read(req->srv->pool, &req->user, j.id, &err) != CT_OK)
        ct_log_warn("could not queue the read mark of ticket %lld: %s", j.id, err.message);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "ticket", j.ticket);
    cJSON_AddItemToObject(root, "items", j.items);
    if (j.resume[0] != '\0')
        cJSON_AddStringToObject(root, "resume_cursor", j.resume);
    else
        cJSON_AddNullToObject(root, "resume_cursor");
    ct_http_send_page(req, root, j.next);
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
    ct_rc rc = ct_verify_chain(req->srv->pool, CT_CHAIN_TICKET, id, &r, &err);
    atomic_fetch_sub(&req->srv->verifying, 1);
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
