/* api_workflow.c: thin handlers for ticket actions, approvals and complaint rules: decode and
 * type-check the body, call workflow.c, answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "casetrail/tickets.h"
#include "casetrail/workflow.h"

/* Reads the body, refusing fields outside allowed. *body is the caller's to cJSON_Delete. */
static bool body_with(struct ct_req *req, const char *const *allowed, cJSON **body)
{
    struct ct_err err;
    if (ct_http_read_json(req, body, &err) != CT_OK || ct_json_only(*body, allowed, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        cJSON_Delete(*body);
        *body = NULL;
        return false;
    }
    return true;
}

static void run_action(struct ct_req *req, struct ct_ticket_action *a)
{
    struct ct_err err;
    long long id;
    cJSON *ticket = NULL;
    if (!ct_http_path_id(req, "ticket", &id))
        return;
    if (ct_workflow_ticket_action(req->srv->pool, &req->user, id, a, &ticket, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    ct_http_send_json(req, 200, ticket);
    cJSON_Delete(ticket);
}

/* Fails the request with err when rc is not CT_OK; true to go on. */
static bool ok_or_fail(struct ct_req *req, ct_rc rc, const struct ct_err *err)
{
    if (rc != CT_OK)
        ct_http_send_error(req, err);
    return rc == CT_OK;
}

static bool reason_present(struct ct_req *req, const char *reason, const char *what)
{
    if (!ct_tickets_has_text(reason)) {
        ct_http_fail(req, CT_E_INVALID, "reason_required", "reason is required when %s", what);
        return false;
    }
    return true;
}

void ct_api_ticket_assign(struct ct_req *req)
{
    static const char *const allowed[] = {"assignee", "note", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_ASSIGN};
    struct ct_err err;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_str(body, "assignee", true, 64, &a.assignee, &err), &err) &&
        ok_or_fail(req, ct_json_str(body, "note", false, CT_NOTE_MAX, &a.note, &err), &err))
        run_action(req, &a);
    cJSON_Delete(body);
}

void ct_api_ticket_unassign(struct ct_req *req)
{
    static const char *const allowed[] = {"reason", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_UNASSIGN};
    struct ct_err err;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &a.reason, &err), &err) &&
        reason_present(req, a.reason, "returning a ticket to the queue"))
        run_action(req, &a);
    cJSON_Delete(body);
}

void ct_api_ticket_status(struct ct_req *req)
{
    static const char *const allowed[] = {"status", "reason", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_STATUS};
    struct ct_err err;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_str(body, "status", true, 16, &a.status, &err), &err) &&
        ok_or_fail(req, ct_json_str(body, "reason", false, CT_REASON_MAX, &a.reason, &err), &err)) {
        if (ct_tickets_status_parse(a.status) == CT_ST_INVALID)
            ct_http_fail(req, CT_E_INVALID, "invalid_status",
                         "invalid status \"%.16s\": expected new, open, pending, resolved or closed",
                         a.status);
        else
            run_action(req, &a);
    }
    cJSON_Delete(body);
}

/* escalate: level 1..3 required; deescalate: target level 0..2, 0 by default. */
static void escalation(struct ct_req *req, bool raise)
{
    static const char *const allowed[] = {"level", "reason", NULL};
    struct ct_ticket_action a = {.kind = raise ? CT_ACT_ESCALATE : CT_ACT_DEESCALATE};
    struct ct_err err;
    long long level = 0;
    bool present;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_int(body, "level", raise, raise ? 1 : 0, raise ? 3 : 2, &present,
                                    &level, &err), &err) &&
        ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &a.reason, &err), &err) &&
        reason_present(req, a.reason, raise ? "escalating" : "de-escalating")) {
        a.level = present ? (int)level : 0;
        run_action(req, &a);
    }
    cJSON_Delete(body);
}

void ct_api_ticket_escalate(struct ct_req *req)
{
    escalation(req, true);
}

void ct_api_ticket_deescalate(struct ct_req *req)
{
    escalation(req, false);
}

void ct_api_ticket_priority(struct ct_req *req)
{
    static const char *const allowed[] = {"priority", "reason", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_PRIORITY};
    struct ct_err err;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_str(body, "priority", true, 16, &a.priority, &err), &err) &&
        ok_or_fail(req, ct_json_str(body, "reason", false, CT_REASON_MAX, &a.reason, &err), &err)) {
        if (!ct_tickets_priority_valid(a.priority))
            ct_http_fail(req, CT_E_INVALID, "invalid_priority",
                         "invalid priority \"%.16s\": expected low, normal, high or urgent",
                         a.priority);
        else
            run_action(req, &a);
    }
    cJSON_Delete(body);
}

void ct_api_ticket_note(struct ct_req *req)
{
    static const char *const allowed[] = {"body", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_NOTE};
    struct ct_err err;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (ok_or_fail(req, ct_json_str(body, "body", true, CT_NOTE_MAX, &a.note, &err), &err)) {
        if (!ct_tickets_has_text(a.note))
            ct_http_fail(req, CT_E_INVALID, "missing_field", "body must not be empty");
        else
            run_action(req, &a);
    }
    cJSON_Delete(body);
}

void ct_api_approval_request(struct ct_req *req)
{
    static const char *const allowed[] = {"kind", "amount_minor", "currency", "reason", NULL};
    struct ct_approval_request r = {0};
    struct ct_err err;
    long long id;
    cJSON *body = NULL, *out = NULL;

    if (!ct_http_path_id(req, "ticket", &id) || !body_with(req, allowed, &body))
        return;
    if (!ok_or_fail(req, ct_json_str(body, "kind", true, 32, &r.kind, &err), &err) ||
        /* up to 15 digits: every number on the way (jsonb, cJSON doubles) keeps it exact */
        !ok_or_fail(req, ct_json_int(body, "amount_minor", false, 0, 999999999999999LL,
                                     &r.has_amount, &r.amount_minor, &err), &err) ||
        !ok_or_fail(req, ct_json_str(body, "currency", false, 8, &r.currency, &err), &err) ||
        !ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &r.reason, &err), &err) ||
        !reason_present(req, r.reason, "requesting an approval"))
        goto out;
    if (!ct_tickets_approval_kind_valid(r.kind)) {
        ct_http_fail(req, CT_E_INVALID, "invalid_kind",
                     "invalid kind \"%.32s\": expected refund, credit, comp, discount, exception "
                     "or off_policy_reply", r.kind);
        goto out;
    }
    if (ct_tickets_approval_needs_amount(r.kind) && (!r.has_amount || r.amount_minor == 0)) {
        ct_http_fail(req, CT_E_INVALID, "amount_required",
                     "a %s needs a positive amount_minor (in %s minor units)", r.kind,
                     req->srv->cfg.currency);
        goto out;
    }
    if (ct_workflow_request_approval(req->srv->pool, &req->user, id, &r, req->srv->cfg.currency,
                                     &out, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        goto out;
    }
    ct_http_send_json(req, 201, out);
out:
    cJSON_Delete(out);
    cJSON_Delete(body);
}

void ct_api_approval_decide(struct ct_req *req)
{
    static const char *const allowed[] = {"decision", "reason", NULL};
    const char *decision = NULL, *reason = NULL;
    struct ct_err err;
    long long id;
    cJSON *body = NULL, *out = NULL;

    if (!ct_http_path_id(req, "approval", &id) || !body_with(req, allowed, &body))
        return;
    if (!ok_or_fail(req, ct_json_str(body, "decision", true, 16, &decision, &err), &err) ||
        !ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &reason, &err), &err) ||
        !reason_present(req, reason, "deciding an approval"))
        goto out;
    if (strcmp(decision, "approved") != 0 && strcmp(decision, "denied") != 0) {
        ct_http_fail(req, CT_E_INVALID, "invalid_decision",
                     "invalid decision \"%.16s\": expected approved or denied", decision);
        goto out;
    }
    if (ct_workflow_decide(req->srv->pool, &req->user, id, decision, reason, &out, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        goto out;
    }
    ct_http_send_json(req, 200, out);
out:
    cJSON_Delete(out);
    cJSON_Delete(body);
}

/* Reads exactly n digits at *p into *out and advances. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* "YYYY-MM-DD" (UTC midnight) or "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", checked
 * field by field (a real calendar date) and rewritten as a timestamptz literal. */
static bool parse_when(const char *s, char *out, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    char frac[8] = "0", sign = '+';

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    if (*p != '\0') {
        if (*p++ != 'T' || !digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) ||
            *p++ != ':' || !digits(&p, 2, &sec) || h > 23 || mi > 59 || sec > 59)
            return false;
        if (*p == '.') {
            size_t n = 0;
            for (p++; *p >= '0' && *p <= '9'; p++) {
                if (n < 6)
                    frac[n++] = *p;
            }
            if (n == 0)
                return false;
            frac[n] = '\0';
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 14 || om > 59)
                return false;
        } else {
            return false; /* the zone must be explicit */
        }
        if (*p != '\0')
            return false;
    }
    snprintf(out, len, "%04d-%02d-%02d %02d:%02d:%02d.%s%c%02d:%02d", y, mo, d, h, mi, sec, frac,
             sign, oh, om);
    return true;
}

struct approvals_job {
    struct ct_approval_filter f;
    cJSON *items;
    char next[32];
};

static ct_rc approvals_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct approvals_job *j = arg;
    return ct_store_approvals_list(tx, &j->f, &j->items, j->next, err);
}

void ct_api_approvals_list(struct ct_req *req)
{
    char status[CT_QUERY_BUF], kind[CT_QUERY_BUF], by[CT_QUERY_BUF], dec[CT_QUERY_BUF],
        from[CT_QUERY_BUF], to[CT_QUERY_BUF], tsfrom[64], tsto[64], cur[CT_QUERY_BUF];
    struct approvals_job j;
    struct ct_err err;

    memset(&j, 0, sizeof(j));
    if (!ct_http_query_limit(req, &j.f.limit))
        return;
    if (ct_http_query(req, "status", status, sizeof(status)) && status[0]) {
        if (strcmp(status, "pending") && strcmp(status, "approved") && strcmp(status, "denied")) {
            ct_http_fail(req, CT_E_INVALID, "invalid_status",
                         "invalid status: expected pending, approved or denied");
            return;
        }
        j.f.status = status;
    }
    if (ct_http_query(req, "kind", kind, sizeof(kind)) && kind[0]) {
        if (!ct_tickets_approval_kind_valid(kind)) {
            ct_http_fail(req, CT_E_INVALID, "invalid_kind", "invalid approval kind");
            return;
        }
        j.f.kind = kind;
    }
    if (ct_http_query(req, "requested_by", by, sizeof(by)) && by[0])
        j.f.requested_by = by;
    if (ct_http_query(req, "decided_by", dec, sizeof(dec)) && dec[0])
        j.f.decided_by = dec;
    if (ct_http_query(req, "from", from, sizeof(from)) && from[0]) {
        if (!parse_when(from, tsfrom, sizeof(tsfrom))) {
            ct_http_fail(req, CT_E_INVALID, "invalid_time",
                         "from must be YYYY-MM-DD or an ISO 8601 timestamp with a zone");
            return;
        }
        j.f.from = tsfrom;
    }
    if (ct_http_query(req, "to", to, sizeof(to)) && to[0]) {
        if (!parse_when(to, tsto, sizeof(tsto))) {
            ct_http_fail(req, CT_E_INVALID, "invalid_time",
                         "to must be YYYY-MM-DD or an ISO 8601 timestamp with a zone");
            return;
        }
        j.f.to = tsto;
    }
    if (ct_http_query(req, "cursor", cur, sizeof(cur)) && cur[0]) {
        char tail;
        if (sscanf(cur, "a%lld%c", &j.f.cursor_id, &tail) != 1) {
            ct_http_fail(req, CT_E_INVALID, "invalid_cursor", "cursor is not one this API returned");
            return;
        }
        j.f.has_cursor = true;
    }
    if (ct_store_with_conn(req->srv->pool, approvals_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "approvals", j.items);
    ct_http_send_page(req, root, j.next);
}

static ct_rc rules_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    return ct_store_rules_list(tx, arg, err);
}

static void send_rules(struct ct_req *req, cJSON *rules)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "rules", rules);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}

void ct_api_rules_get(struct ct_req *req)
{
    struct ct_err err;
    cJSON *rules = NULL;
    if (ct_store_with_conn(req->srv->pool, rules_tx, &rules, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    send_rules(req, rules);
}

/* Checks {"rules":[{"pattern","match"?,"enabled"?}]}; fails the request when malformed. */
static const cJSON *checked_rules(struct ct_req *req, const cJSON *body)
{
    static const char *const top[] = {"rules", NULL};
    static const char *const fields[] = {"pattern", "match", "enabled", "id", NULL};
    struct ct_err err;
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(body, "rules");
    const cJSON *r;

    if (!ok_or_fail(req, ct_json_only(body, top, &err), &err))
        return NULL;
    if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) > 1000) {
        ct_http_fail(req, CT_E_INVALID, "wrong_type", "rules must be an array of at most 1000 rules");
        return NULL;
    }
    cJSON_ArrayForEach(r, rules)
    {
        const char *pattern = NULL, *match = NULL;
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(r, "enabled");
        if (!cJSON_IsObject(r)) {
            ct_http_fail(req, CT_E_INVALID, "wrong_type", "each rule must be an object");
            return NULL;
        }
        if (!ok_or_fail(req, ct_json_only(r, fields, &err), &err) ||
            !ok_or_fail(req, ct_json_str(r, "pattern", true, 800, &pattern, &err), &err) ||
            !ok_or_fail(req, ct_json_str(r, "match", false, 16, &match, &err), &err))
            return NULL;
        if (!ct_tickets_has_text(pattern)) {
            ct_http_fail(req, CT_E_INVALID, "missing_field", "pattern must not be empty");
            return NULL;
        }
        size_t chars = 0;
        for (const char *c = pattern; *c != '\0'; c++)
            chars += ((unsigned char)*c & 0xc0) != 0x80; /* count code points, not bytes */
        if (chars > 200) {
            ct_http_fail(req, CT_E_INVALID, "too_long", "a pattern has at most 200 characters");
            return NULL;
        }
        if (match != NULL && strcmp(match, "keyword") != 0 && strcmp(match, "regex") != 0) {
            ct_http_fail(req, CT_E_INVALID, "invalid_match", "match must be keyword or regex");
            return NULL;
        }
        if (en != NULL && !cJSON_IsBool(en)) {
            ct_http_fail(req, CT_E_INVALID, "wrong_type", "enabled must be true or false");
            return NULL;
        }
    }
    return rules;
}

void ct_api_rules_put(struct ct_req *req)
{
    struct ct_err err;
    cJSON *body = NULL, *out = NULL;
    const cJSON *rules;

    if (ct_http_read_json(req, &body, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    rules = checked_rules(req, body);
    if (rules != NULL) {
        if (ct_workflow_replace_rules(req->srv->pool, &req->user, rules, &out, &err) != CT_OK)
            ct_http_send_error(req, &err);
        else
            send_rules(req, out);
    }
    cJSON_Delete(body);
}
