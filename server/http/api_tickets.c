/* api_tickets.c: reading tickets and their timelines. Any role may read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "casetrail/audit.h"
#include "casetrail/users.h"

/* 9999-12-31T23:59:59.999999Z in Unix microseconds: cursors beyond it are not ours */
#define CURSOR_US_MAX 253402300799999999LL

struct list_job {
    struct ct_ticket_filter f;
    cJSON *tickets;
    char next[64];
};

static ct_rc list_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct list_job *j = arg;
    return ct_store_tickets_list(tx, &j->f, &j->tickets, j->next, err);
}

void ct_api_tickets_list(struct ct_req *req)
{
    static const char *const statuses[] = {"new", "open", "pending", "resolved", "closed"};
    char status[CT_QUERY_BUF], assignee[CT_QUERY_BUF], escalated[CT_QUERY_BUF],
        contact[CT_QUERY_BUF], cursor[CT_QUERY_BUF];
    struct list_job j;
    struct ct_err err;

    memset(&j, 0, sizeof(j));
    j.f.escalated = -1;
    if (!ct_http_query_limit(req, &j.f.limit))
        return;
    if (ct_http_query(req, "status", status, sizeof(status)) && status[0] != '\0') {
        bool ok = false;
        for (size_t i = 0; i < 5; i++)
            ok = ok || strcmp(status, statuses[i]) == 0;
        if (!ok) {
            ct_http_fail(req, CT_E_INVALID, "invalid_status",
                         "invalid status \"%.20s\": expected new, open, pending, resolved or closed",
                         status);
            return;
        }
        j.f.status = status;
    }
    if (ct_http_query(req, "assignee", assignee, sizeof(assignee)) && assignee[0] != '\0')
        j.f.assignee = strcmp(assignee, "me") == 0 ? req->user.name : assignee;
    if (ct_http_query(req, "escalated", escalated, sizeof(escalated)) && escalated[0] != '\0') {
        if (strcmp(escalated, "true") == 0) {
            j.f.escalated = 1;
        } else if (strcmp(escalated, "false") == 0) {
            j.f.escalated = 0;
        } else {
            ct_http_fail(req, CT_E_INVALID, "invalid_escalated", "escalated must be true or false");
            return;
        }
    }
    if (ct_http_query(req, "contact", contact, sizeof(contact)) && contact[0] != '\0')
        j.f.contact = contact;
    if (ct_http_query(req, "cursor", cursor, sizeof(cursor)) && cursor[0] != '\0') {
        char tail;
        if (sscanf(cursor, "t%lld_%lld%c", &j.f.cursor_us, &j.f.cursor_id, &tail) != 2 ||
            j.f.cursor_us < 0 || j.f.cursor_us > CURSOR_US_MAX || j.f.cursor_id <= 0) {
            ct_http_fail(req, CT_E_INVALID, "invalid_cursor", "cursor is not one this API returned");
            return;
        }
        j.f.has_cursor = true;
    }
    if (ct_store_with_conn(req->srv->pool, list_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "tickets", j.tickets);
    ct_http_send_page(req, root, j.next);
}

struct get_job {
    long long id;
    cJSON *ticket;
    int limit;
    struct ct_timeline_cursor cur;
    cJSON *items;
    char next[96];
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
        rc = ct_store_timeline(tx, j->id, j->limit, &j->cur, &j->items, j->next, err);
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
    if (ct_http_query(req, "cursor", cursor, sizeof(cursor)) && cursor[0] != '\0') {
        char tail;
        if (sscanf(cursor, "l%lld_%lld_%d_%lld%c", &j.cur.at_us, &j.cur.rec_us, &j.cur.kind,
                   &j.cur.id, &tail) != 4 || j.cur.at_us < 0 || j.cur.at_us > CURSOR_US_MAX ||
            j.cur.rec_us < 0 || j.cur.rec_us > CURSOR_US_MAX || j.cur.kind < 0 || j.cur.kind > 1 ||
            j.cur.id <= 0) {
            ct_http_fail(req, CT_E_INVALID, "invalid_cursor", "cursor is not one this API returned");
            return;
        }
        j.cur.set = true;
    }
    /* one snapshot for ticket and items would need a transaction; reads are fine without */
    if (ct_store_with_conn(req->srv->pool, timeline_tx, &j, &err) != CT_OK) {
        cJSON_Delete(j.ticket);
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "ticket", j.ticket);
    cJSON_AddItemToObject(root, "items", j.items);
    ct_http_send_page(req, root, j.next);
}

struct verify_job {
    long long id;
    struct ct_verify_result r;
};

static ct_rc verify_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct verify_job *j = arg;
    struct ct_chain c;
    ct_rc rc = ct_store_chain_load(tx, "ticket", j->id, &c, err);
    if (rc != CT_OK)
        return rc;
    ct_audit_verify_chain(&c, &j->r);
    ct_chain_free(&c);
    return CT_OK;
}

void ct_api_ticket_verify(struct ct_req *req)
{
    struct verify_job j;
    struct ct_err err;

    memset(&j, 0, sizeof(j));
    if (!ct_http_path_id(req, "ticket", &j.id))
        return;
    if (ct_store_in_tx(req->srv->pool, verify_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "ok", j.r.ok);
    if (j.r.ok) {
        cJSON_AddNumberToObject(root, "events", (double)j.r.events);
        cJSON_AddStringToObject(root, "head", j.r.head);
        cJSON_AddNumberToObject(root, "redacted", (double)j.r.redacted);
    } else {
        cJSON_AddNumberToObject(root, "first_bad_seq", (double)j.r.first_bad_seq);
        cJSON_AddStringToObject(root, "reason", j.r.reason);
    }
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}
