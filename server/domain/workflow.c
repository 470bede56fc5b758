/* workflow.c: staff actions on tickets, approvals and complaint rules. Decisions come from
 * tickets.c; this file sequences lock -> check -> change -> event inside one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/store.h"
#include "casetrail/text.h"
#include "casetrail/tickets.h"
#include "casetrail/users.h"
#include "casetrail/workflow.h"

/* Runs fn in a transaction whose job builds its answer in *result. On success the answer goes
 * to *out (the caller frees it); on failure it is freed and *out is NULL. */
static ct_rc in_tx_with_result(struct ct_pool *pool, ct_tx_fn fn, void *job, cJSON **result,
                               cJSON **out, struct ct_err *err)
{
    ct_rc rc = ct_store_in_tx(pool, fn, job, err);
    if (rc != CT_OK) {
        cJSON_Delete(*result);
        *result = NULL;
    }
    *out = *result;
    return rc;
}

/* Starts an event by a staff member on ticket_id; idbuf holds the actor's id text. */
static void staff_event(struct ct_event_new *ev, const struct ct_user *actor, char idbuf[24],
                        long long ticket_id, const char *action)
{
    struct ct_actor who = ct_actor_staff(actor, idbuf);
    ct_event_begin(ev, CT_CHAIN_TICKET, ticket_id, action, &who);
}

/* A staff text: reasons, notes. Blank optional text is not recorded. */
static void staff_text(struct ct_event_new *ev, const char *field, const char *body)
{
    ct_event_text(ev, field, ct_text_present(body) ? body : NULL, CT_SCOPE_STAFF);
}

struct action_job {
    const struct ct_user *actor;
    long long ticket_id;
    const struct ct_ticket_action *a;
    cJSON *ticket;
};

static ct_rc change_status(struct ct_tx *tx, const struct ct_user *actor,
                           const struct ct_ticket_ref *t, enum ct_status to, const char *reason,
                           struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[24];
    ct_rc rc = ct_tickets_check_transition(t->status, to, actor->role, reason, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_store_ticket_set_status(tx, t->id, to, err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, actor, idbuf, t->id, CT_EV_STATUS);
    ev.from_value = ct_status_name(t->status);
    ev.to_value = ct_status_name(to);
    staff_text(&ev, "reason", reason);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc do_assign(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                       struct ct_err *err)
{
    const struct ct_ticket_action *a = j->a;
    struct ct_user assignee;
    struct ct_event_new ev;
    char idbuf[24], from[24], to[24];
    ct_rc rc;

    memset(&assignee, 0, sizeof(assignee));
    if (a->kind == CT_ACT_ASSIGN) {
        rc = ct_store_user_by_name(tx, a->assignee, false, &assignee, err);
        if (rc == CT_E_NOT_FOUND)
            return ct_err_set(err, CT_E_UNPROCESSABLE, "unknown_assignee",
                              "no user named \"%.64s\"", a->assignee);
        if (rc == CT_OK)
            rc = ct_tickets_check_assign(j->actor, t, &assignee, err);
    } else {
        rc = ct_tickets_check_unassign(t, err);
    }
    if (rc != CT_OK)
        return rc;
    rc = ct_store_ticket_set_assignee(tx, t->id, assignee.id, err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, CT_EV_ASSIGNMENT);
    snprintf(from, sizeof(from), "%lld", t->assignee_id);
    snprintf(to, sizeof(to), "%lld", assignee.id);
    ev.from_value = t->assignee_id ? from : NULL;
    ev.to_value = assignee.id ? to : NULL;
    ct_event_text(&ev, "reason", a->reason, CT_SCOPE_STAFF);
    ct_event_text(&ev, "note", a->note, CT_SCOPE_STAFF);
    rc = ct_store_event_append(tx, &ev, NULL, err);
    if (rc != CT_OK)
        return rc;
    /* assigning a new ticket opens it, as its own event by the same actor:
     * docs/DECISIONS.md#assignment-opens-ticket */
    if (a->kind == CT_ACT_ASSIGN && t->status == CT_ST_NEW)
        rc = change_status(tx, j->actor, t, CT_ST_OPEN, NULL, err);
    return rc;
}

static ct_rc do_escalation(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                           struct ct_err *err)
{
    const struct ct_ticket_action *a = j->a;
    struct ct_event_new ev;
    char idbuf[24], from[8], to[8];
    bool raise = a->kind == CT_ACT_ESCALATE;
    ct_rc rc = ct_tickets_check_escalation(t, raise, a->level, err);

    if (rc != CT_OK)
        return rc;
    /* de-escalating re-arms automatic complaint detection for this ticket */
    rc = ct_store_ticket_set_escalation(tx, t->id, a->level, raise && t->complaint_escalated,
                                        err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, raise ? CT_EV_ESC_RAISED : CT_EV_ESC_LOWERED);
    snprintf(from, sizeof(from), "%d", t->escalation_level);
    snprintf(to, sizeof(to), "%d", a->level);
    ev.from_value = from;
    ev.to_value = to;
    ct_event_text(&ev, "reason", a->reason, CT_SCOPE_STAFF);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc do_priority(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                         struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[24];
    ct_rc rc = ct_tickets_check_priority(t, j->a->priority, err);

    if (rc == CT_OK)
        rc = ct_store_ticket_set_priority(tx, t->id, j->a->priority, err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, CT_EV_PRIORITY);
    ev.from_value = ct_priority_name(t->priority);
    ev.to_value = ct_priority_name(j->a->priority);
    staff_text(&ev, "reason", j->a->reason);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc do_note(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                     struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[24];
    ct_rc rc = ct_store_ticket_touch(tx, t->id, 0, err);

    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, CT_EV_NOTE);
    ct_event_text(&ev, "note", j->a->note, CT_SCOPE_STAFF);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc action_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct action_job *j = arg;
    struct ct_ticket_ref t;
    ct_rc rc;

    /* lock first: concurrent actions on one ticket queue here and see each other's result */
    rc = ct_store_ticket_lock(tx, j->ticket_id, &t, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_tickets_check_actor(j->actor, &t, j->a->kind, err);
    if (rc != CT_OK)
        return rc;
    switch (j->a->kind) {
    case CT_ACT_ASSIGN:
    case CT_ACT_UNASSIGN:
        rc = do_assign(tx, j, &t, err);
        break;
    case CT_ACT_STATUS:
        rc = change_status(tx, j->actor, &t, j->a->status, j->a->reason, err);
        break;
    case CT_ACT_ESCALATE:
    case CT_ACT_DEESCALATE:
        rc = do_escalation(tx, j, &t, err);
        break;
    case CT_ACT_PRIORITY:
        rc = do_priority(tx, j, &t, err);
        break;
    case CT_ACT_NOTE:
        rc = do_note(tx, j, &t, err);
        break;
    default:
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "not a ticket action");
        break;
    }
    if (rc == CT_OK) {
        cJSON_Delete(j->ticket); /* a retried transaction may have built one already */
        j->ticket = NULL;
        rc = ct_store_ticket_get(tx, t.id, &j->ticket, err);
    }
    return rc;
}

ct_rc ct_workflow_ticket_action(struct ct_pool *pool, const struct ct_user *actor,
                                long long ticket_id, const struct ct_ticket_action *a,
                                cJSON **ticket_out, struct ct_err *err)
{
    struct action_job j = {actor, ticket_id, a, NULL};
    *ticket_out = NULL;
    if (ct_tickets_check_action(a, err) != CT_OK)
        return err->rc;
    return in_tx_with_result(pool, action_tx, &j, &j.ticket, ticket_out, err);
}

/* ---- approvals ---- */

struct approval_job {
    const struct ct_user *actor;
    long long ticket_id, approval_id;
    const struct ct_approval_request *req;
    const char *currency;
    enum ct_approval_status decision;
    const char *reason;
    cJSON *out;
};

static void approval_data(cJSON *data, const struct ct_approval *a)
{
    cJSON_AddNumberToObject(data, "approval_id", (double)a->id);
    cJSON_AddStringToObject(data, "approval_kind", ct_kind_name(a->kind));
    if (a->has_amount) {
        cJSON_AddNumberToObject(data, "amount_minor", (double)a->amount_minor);
        cJSON_AddStringToObject(data, "currency", a->currency);
    }
    cJSON_AddNumberToObject(data, "requested_by", (double)a->requested_by);
}

/* Appends an approval event (data: the approval), touches the ticket and reads the approval
 * back into j->out. */
static ct_rc record_approval(struct ct_tx *tx, struct approval_job *j, struct ct_event_new *ev,
                             const struct ct_approval *a, long long ticket_id, const char *reason,
                             struct ct_err *err)
{
    cJSON *data = cJSON_CreateObject();
    ct_rc rc;
    approval_data(data, a);
    ev->data = data;
    ct_event_text(ev, "reason", reason, CT_SCOPE_STAFF);
    rc = ct_store_event_append(tx, ev, NULL, err);
    cJSON_Delete(data);
    if (rc == CT_OK)
        rc = ct_store_ticket_touch(tx, ticket_id, 0, err);
    if (rc == CT_OK) {
        cJSON_Delete(j->out);
        j->out = NULL;
        rc = ct_store_approval_get(tx, a->id, &j->out, err);
    }
    return rc;
}

static ct_rc request_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct approval_job *j = arg;
    struct ct_ticket_ref t;
    struct ct_approval a;
    struct ct_event_new ev;
    char idbuf[24];
    ct_rc rc;

    rc = ct_store_ticket_lock(tx, j->ticket_id, &t, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_tickets_check_actor(j->actor, &t, CT_ACT_APPROVAL_REQUEST, err);
    if (rc != CT_OK)
        return rc;
    memset(&a, 0, sizeof(a));
    a.ticket_id = t.id;
    a.kind = j->req->kind;
    a.has_amount = j->req->has_amount;
    a.amount_minor = j->req->amount_minor;
    if (a.has_amount)
        snprintf(a.currency, sizeof(a.currency), "%s", j->currency);
    a.requested_by = j->actor->id;
    rc = ct_store_approval_insert(tx, &a, j->req->reason, err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t.id, CT_EV_APPROVAL_REQ);
    ev.to_value = ct_approval_status_name(CT_APPR_PENDING);
    return record_approval(tx, j, &ev, &a, t.id, j->req->reason, err);
}

ct_rc ct_workflow_request_approval(struct ct_pool *pool, const struct ct_user *actor,
                                   long long ticket_id, const struct ct_approval_request *r,
                                   const char *deployment_currency, cJSON **out,
                                   struct ct_err *err)
{
    struct approval_job j = {.actor = actor, .ticket_id = ticket_id, .req = r,
                             .currency = deployment_currency};

    *out = NULL;
    if (ct_tickets_check_request(r, deployment_currency, err) != CT_OK)
        return err->rc;
    return in_tx_with_result(pool, request_tx, &j, &j.out, out, err);
}

static ct_rc decide_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct approval_job *j = arg;
    struct ct_approval a;
    struct ct_ticket_ref t;
    struct ct_event_new ev;
    char idbuf[24];
    ct_rc rc;

    /* approval row first (it names the ticket), then the ticket. No path locks them the other
     * way round: requests insert a new approval row and actions never touch approvals */
    rc = ct_store_approval_lock(tx, j->approval_id, &a, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_store_ticket_lock(tx, a.ticket_id, &t, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_tickets_check_decision(j->actor, &a, &t, j->decision, err);
    if (rc != CT_OK)
        return rc;
    rc = ct_store_approval_decide(tx, a.id, j->decision, j->actor->id, j->reason, err);
    if (rc != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t.id, CT_EV_APPROVAL_DEC);
    ev.from_value = ct_approval_status_name(CT_APPR_PENDING);
    ev.to_value = ct_approval_status_name(j->decision);
    return record_approval(tx, j, &ev, &a, t.id, j->reason, err);
}

ct_rc ct_workflow_decide(struct ct_pool *pool, const struct ct_user *actor, long long approval_id,
                         enum ct_approval_status decision, const char *reason, cJSON **out,
                         struct ct_err *err)
{
    struct approval_job j = {.actor = actor, .approval_id = approval_id, .decision = decision,
                             .reason = reason};
    *out = NULL;
    if (ct_tickets_check_reason(CT_ACT_APPROVAL_DECIDE, reason, err) != CT_OK)
        return err->rc;
    if (decision != CT_APPR_APPROVED && decision != CT_APPR_DENIED)
        return ct_err_set(err, CT_E_INVALID, "invalid_decision",
                          "invalid decision: expected approved or denied");
    return in_tx_with_result(pool, decide_tx, &j, &j.out, out, err);
}

/* ---- complaint rules ---- */

struct rules_job {
    const struct ct_user *actor;
    const cJSON *rules;
    cJSON *out;
};

static ct_rc rules_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct rules_job *j = arg;
    struct ct_event_new ev;
    char idbuf[24];
    char *text = NULL;
    cJSON *data = NULL;
    struct ct_actor who = ct_actor_staff(j->actor, idbuf);
    ct_rc rc;

    rc = ct_store_rules_replace(tx, j->rules, err);
    if (rc != CT_OK)
        return rc;
    cJSON_Delete(j->out);
    j->out = NULL;
    rc = ct_store_rules_list(tx, &j->out, err);
    if (rc != CT_OK)
        return rc;
    text = cJSON_PrintUnformatted(j->rules);
    if (text == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    ct_event_begin(&ev, CT_CHAIN_USER, j->actor->id, CT_EV_RULES_REPLACED, &who);
    ct_event_text(&ev, "rules", text, CT_SCOPE_STAFF);
    data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "count", cJSON_GetArraySize(j->rules));
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    free(text);
    return rc;
}

ct_rc ct_workflow_replace_rules(struct ct_pool *pool, const struct ct_user *actor,
                                const cJSON *rules, cJSON **out, struct ct_err *err)
{
    struct rules_job j = {actor, rules, NULL};
    return in_tx_with_result(pool, rules_tx, &j, &j.out, out, err);
}

/* The actor of automatic escalations. */
static const struct ct_actor complaint_rules = {CT_ACTOR_SYSTEM, "complaint-rules", NULL, NULL};

ct_rc ct_workflow_detect_complaint(struct ct_tx *tx, const struct ct_ticket_ref *t,
                                   const char *text, long long occurred_us, struct ct_err *err)
{
    struct ct_event_new ev;
    char pattern[1024], reason[1100];
    long long rule_id = 0;
    cJSON *data = NULL;
    ct_rc rc;

    /* once per ticket until de-escalated; a ticket people already escalated stays as it is */
    if (!ct_text_present(text) || t->complaint_escalated || t->escalation_level > 0)
        return CT_OK;
    rc = ct_store_rule_match(tx, text, &rule_id, pattern, err);
    if (rc != CT_OK || rule_id == 0)
        return rc;
    rc = ct_store_ticket_set_escalation(tx, t->id, 1, true, err);
    if (rc != CT_OK)
        return rc;
    ct_event_begin(&ev, CT_CHAIN_TICKET, t->id, CT_EV_ESC_RAISED, &complaint_rules);
    ev.from_value = "0";
    ev.to_value = "1";
    ev.occurred_us = occurred_us;
    snprintf(reason, sizeof(reason), "complaint rule matched: %s", pattern);
    ct_event_text(&ev, "reason", reason, CT_SCOPE_STAFF);
    data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "rule_id", (double)rule_id);
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}
