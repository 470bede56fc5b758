/* api_workflow.c: thin handlers for ticket actions, approvals and complaint rules: decode and
 * type-check the body, call workflow.c, answer. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "casetrail/json.h"
#include "casetrail/text.h"
#include "casetrail/tickets.h"
#include "casetrail/workflow.h"

/* Reads the body, refusing fields outside allowed. *body is the caller's to cJSON_Delete. */
static bool body_with(struct ct_req *req, const char *const *allowed, cJSON **body)
{
    struct ct_err err;
    if (ct_http_read_json(req, body, &err) != CT_OK ||
        ct_json_only(*body, allowed, &err) != CT_OK) {
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

/* Decodes an enum-valued string member through parse; a missing or unknown value leaves the
 * parser's INVALID result for the domain rules to refuse with their own message. */
static bool enum_member(struct ct_req *req, const cJSON *body, const char *name, int *out,
                        int (*parse)(const char *))
{
    struct ct_err err;
    const char *v = NULL;
    if (!ok_or_fail(req, ct_json_str(body, name, true, 32, &v, &err), &err))
        return false;
    *out = parse(v);
    return true;
}

static int parse_status(const char *s)
{
    return (int)ct_status_parse(s);
}

static int parse_priority(const char *s)
{
    return (int)ct_priority_parse(s);
}

static int parse_kind(const char *s)
{
    return (int)ct_kind_parse(s);
}

static int parse_decision(const char *s)
{
    return (int)ct_approval_status_parse(s);
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
    if (ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &a.reason, &err), &err))
        run_action(req, &a);
    cJSON_Delete(body);
}

void ct_api_ticket_status(struct ct_req *req)
{
    static const char *const allowed[] = {"status", "reason", NULL};
    struct ct_ticket_action a = {.kind = CT_ACT_STATUS};
    struct ct_err err;
    int status;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (enum_member(req, body, "status", &status, parse_status) &&
        ok_or_fail(req, ct_json_str(body, "reason", false, CT_REASON_MAX, &a.reason, &err), &err)) {
        a.status = (enum ct_status)status;
        run_action(req, &a);
    }
    cJSON_Delete(body);
}

/* escalate: level 1..3 required; deescalate: target level, 0 by default. Ranges are the
 * domain's (ct_tickets_check_action); this only reads an integer. */
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
    if (ok_or_fail(req, ct_json_int(body, "level", raise, -1000, 1000, &present, &level, &err),
                   &err) &&
        ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &a.reason, &err), &err)) {
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
    int priority;
    cJSON *body = NULL;
    if (!body_with(req, allowed, &body))
        return;
    if (enum_member(req, body, "priority", &priority, parse_priority) &&
        ok_or_fail(req, ct_json_str(body, "reason", false, CT_REASON_MAX, &a.reason, &err), &err)) {
        a.priority = (enum ct_priority)priority;
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
    if (ok_or_fail(req, ct_json_str(body, "body", true, CT_NOTE_MAX, &a.note, &err), &err))
        run_action(req, &a);
    cJSON_Delete(body);
}

void ct_api_approval_request(struct ct_req *req)
{
    static const char *const allowed[] = {"kind", "amount_minor", "currency", "reason", NULL};
    struct ct_approval_request r = {0};
    struct ct_err err;
    long long id;
    int kind;
    cJSON *body = NULL, *out = NULL;

    if (!ct_http_path_id(req, "ticket", &id) || !body_with(req, allowed, &body))
        return;
    if (!enum_member(req, body, "kind", &kind, parse_kind) ||
        /* up to 15 digits: every number on the way (jsonb, cJSON doubles) keeps it exact:
         * docs/DECISIONS.md#currency-and-amounts */
        !ok_or_fail(req, ct_json_int(body, "amount_minor", false, 0, 999999999999999LL,
                                     &r.has_amount, &r.amount_minor, &err), &err) ||
        !ok_or_fail(req, ct_json_str(body, "currency", false, 8, &r.currency, &err), &err) ||
        !ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &r.reason, &err), &err))
        goto out;
    r.kind = (enum ct_kind)kind;
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
    const char *reason = NULL;
    struct ct_err err;
    long long id;
    int decision;
    cJSON *body = NULL, *out = NULL;

    if (!ct_http_path_id(req, "approval", &id) || !body_with(req, allowed, &body))
        return;
    if (!enum_member(req, body, "decision", &decision, parse_decision) ||
        !ok_or_fail(req, ct_json_str(body, "reason", true, CT_REASON_MAX, &reason, &err), &err))
        goto out;
    if (ct_workflow_decide(req->srv->pool, &req->user, id, (enum ct_approval_status)decision,
                           reason, &out, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        goto out;
    }
    ct_http_send_json(req, 200, out);
out:
    cJSON_Delete(out);
    cJSON_Delete(body);
}

/* GET /api/approvals (JSON pages and the CSV export) is in api_exports.c. */

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
        ct_http_fail(req, CT_E_INVALID, "wrong_type",
                     "rules must be an array of at most 1000 rules");
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
        if (!ct_text_present(pattern)) {
            ct_http_fail(req, CT_E_INVALID, "missing_field", "pattern must not be empty");
            return NULL;
        }
        if (ct_utf8_chars(pattern) > 200) {
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
