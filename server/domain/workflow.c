/* workflow.c: staff actions on tickets, approvals and complaint rules. Decisions come from
 * tickets.c; this file sequences lock -> check -> change -> event inside one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* An event by a staff member on a ticket, with their name as it was. */
static void staff_event(struct ct_event_new *ev, const struct ct_user *actor, char idbuf[32],
                        long long ticket_id, const char *action)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(idbuf, 32, "%lld", actor->id);
    ev->chain_kind = "ticket";
    ev->chain_id = ticket_id;
    ev->action = action;
    ev->actor_type = "agent";
    ev->actor_id = idbuf;
    ev->texts[ev->ntexts++] = (struct ct_event_text){"actor_name", actor->name, "staff"};
}

static void add_text(struct ct_event_new *ev, const char *field, const char *body)
{
    if (body != NULL && ev->ntexts < CT_EVENT_MAX_TEXTS)
        ev->texts[ev->ntexts++] = (struct ct_event_text){field, body, "staff"};
}

struct action_job {
    const struct ct_user *actor;
    long long ticket_id;
    const struct ct_ticket_action *a;
    cJSON *ticket;
};

static ct_rc change_status(struct ct_tx *tx, const struct ct_user *actor,
                           const struct ct_ticket_ref *t, const char *to, const char *reason,
                           struct ct_err *err)
{
    struct ct_event_new ev;
    char idbuf[32];
    ct_rc rc = ct_tickets_check_transition(ct_tickets_status_parse(t->status),
                                           ct_tickets_status_parse(to), actor->role, reason, err);
    if (rc != CT_OK)
        return rc;
    if ((rc = ct_store_ticket_set_status(tx, t->id, to, err)) != CT_OK)
        return rc;
    staff_event(&ev, actor, idbuf, t->id, CT_EV_STATUS);
    ev.from_value = t->status;
    ev.to_value = to;
    add_text(&ev, "reason", ct_tickets_has_text(reason) ? reason : NULL);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc do_assign(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                       struct ct_err *err)
{
    const struct ct_ticket_action *a = j->a;
    struct ct_user assignee;
    struct ct_event_new ev;
    char idbuf[32], from[32], to[32];
    ct_rc rc;

    memset(&assignee, 0, sizeof(assignee));
    if (a->kind == CT_ACT_ASSIGN) {
        rc = ct_store_user_by_name(tx, a->assignee, false, &assignee, err);
        if (rc == CT_E_NOT_FOUND)
            return ct_err_set(err, CT_E_UNPROCESSABLE, "unknown_assignee", "no user named \"%.64s\"",
                              a->assignee);
        if (rc != CT_OK)
            return rc;
        if ((rc = ct_tickets_check_assign(j->actor, t, &assignee, err)) != CT_OK)
            return rc;
    } else if (t->assignee_id == 0) {
        return ct_err_set(err, CT_E_CONFLICT, "not_assigned", "ticket %lld is not assigned", t->id);
    }
    if ((rc = ct_store_ticket_set_assignee(tx, t->id, assignee.id, err)) != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, CT_EV_ASSIGNMENT);
    snprintf(from, sizeof(from), "%lld", t->assignee_id);
    snprintf(to, sizeof(to), "%lld", assignee.id);
    ev.from_value = t->assignee_id ? from : NULL;
    ev.to_value = assignee.id ? to : NULL;
    add_text(&ev, "reason", a->reason);
    add_text(&ev, "note", a->note);
    if ((rc = ct_store_event_append(tx, &ev, NULL, err)) != CT_OK)
        return rc;
    /* DECISIONS: assigning a new ticket opens it, as its own event by the same actor */
    if (a->kind == CT_ACT_ASSIGN && strcmp(t->status, "new") == 0)
        rc = change_status(tx, j->actor, t, "open", NULL, err);
    return rc;
}

static ct_rc do_escalation(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                           struct ct_err *err)
{
    const struct ct_ticket_action *a = j->a;
    struct ct_event_new ev;
    char idbuf[32], from[8], to[8];
    bool raise = a->kind == CT_ACT_ESCALATE;
    ct_rc rc;

    if (raise && a->level <= t->escalation_level)
        return ct_err_set(err, CT_E_CONFLICT, "already_escalated",
                          "ticket %lld is already at escalation level %d", t->id,
                          t->escalation_level);
    if (!raise && t->escalation_level == 0)
        return ct_err_set(err, CT_E_CONFLICT, "not_escalated", "ticket %lld is not escalated",
                          t->id);
    if (!raise && a->level >= t->escalation_level)
        return ct_err_set(err, CT_E_INVALID, "invalid_level",
                          "level must be below the current escalation level %d",
                          t->escalation_level);
    /* de-escalating re-arms automatic complaint detection for this ticket */
    if ((rc = ct_store_ticket_set_escalation(tx, t->id, a->level, raise && t->complaint_escalated,
                                             err)) != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t->id, raise ? CT_EV_ESC_RAISED : CT_EV_ESC_LOWERED);
    snprintf(from, sizeof(from), "%d", t->escalation_level);
    snprintf(to, sizeof(to), "%d", a->level);
    ev.from_value = from;
    ev.to_value = to;
    add_text(&ev, "reason", a->reason);
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc do_simple(struct ct_tx *tx, struct action_job *j, const struct ct_ticket_ref *t,
                       struct ct_err *err)
{
    const struct ct_ticket_action *a = j->a;
    struct ct_event_new ev;
    char idbuf[32];
    ct_rc rc;

    if (a->kind == CT_ACT_PRIORITY) {
        if (strcmp(t->priority, a->priority) == 0)
            return ct_err_set(err, CT_E_CONFLICT, "unchanged", "ticket %lld already has priority %s",
                              t->id, a->priority);
        if ((rc = ct_store_ticket_set_priority(tx, t->id, a->priority, err)) != CT_OK)
            return rc;
        staff_event(&ev, j->actor, idbuf, t->id, CT_EV_PRIORITY);
        ev.from_value = t->priority;
        ev.to_value = a->priority;
        add_text(&ev, "reason", ct_tickets_has_text(a->reason) ? a->reason : NULL);
    } else {
        if ((rc = ct_store_ticket_touch(tx, t->id, 0, err)) != CT_OK)
            return rc;
        staff_event(&ev, j->actor, idbuf, t->id, CT_EV_NOTE);
        add_text(&ev, "note", a->note);
    }
    return ct_store_event_append(tx, &ev, NULL, err);
}

static ct_rc action_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct action_job *j = arg;
    struct ct_ticket_ref t;
    ct_rc rc;

    /* lock first: concurrent actions on one ticket queue here and see each other's result */
    if ((rc = ct_store_ticket_lock(tx, j->ticket_id, &t, err)) != CT_OK)
        return rc;
    if ((rc = ct_tickets_check_actor(j->actor, &t, err)) != CT_OK)
        return rc;
    if ((j->a->kind == CT_ACT_DEESCALATE) && j->actor->role == CT_ROLE_AGENT)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "only a supervisor or admin may de-escalate");
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
    default:
        rc = do_simple(tx, j, &t, err);
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
    return in_tx_with_result(pool, action_tx, &j, &j.ticket, ticket_out, err);
}

/* ---- approvals ---- */

struct approval_job {
    const struct ct_user *actor;
    long long ticket_id, approval_id;
    const struct ct_approval_request *req;
    const char *currency;
    const char *decision, *reason;
    cJSON *out;
};

static void approval_data(cJSON *data, const struct ct_approval *a)
{
    cJSON_AddNumberToObject(data, "approval_id", (double)a->id);
    cJSON_AddStringToObject(data, "approval_kind", a->kind);
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
    add_text(ev, "reason", reason);
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
    char idbuf[32];
    ct_rc rc;

    if ((rc = ct_store_ticket_lock(tx, j->ticket_id, &t, err)) != CT_OK)
        return rc;
    if ((rc = ct_tickets_check_actor(j->actor, &t, err)) != CT_OK)
        return rc;
    memset(&a, 0, sizeof(a));
    a.ticket_id = t.id;
    snprintf(a.kind, sizeof(a.kind), "%s", j->req->kind);
    a.has_amount = j->req->has_amount;
    a.amount_minor = j->req->amount_minor;
    if (a.has_amount)
        snprintf(a.currency, sizeof(a.currency), "%s", j->currency);
    a.requested_by = j->actor->id;
    if ((rc = ct_store_approval_insert(tx, &a, j->req->reason, err)) != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t.id, CT_EV_APPROVAL_REQ);
    ev.to_value = "pending";
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
    if (r->currency != NULL && strcmp(r->currency, deployment_currency) != 0)
        return ct_err_set(err, CT_E_UNPROCESSABLE, "wrong_currency",
                          "currency \"%.8s\" is not this deployment's currency %s: amounts are "
                          "in %s minor units", r->currency, deployment_currency, deployment_currency);
    return in_tx_with_result(pool, request_tx, &j, &j.out, out, err);
}

static ct_rc decide_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct approval_job *j = arg;
    struct ct_approval a;
    struct ct_ticket_ref t;
    struct ct_event_new ev;
    char idbuf[32];
    bool approve = strcmp(j->decision, "approved") == 0;
    ct_rc rc;

    /* approval row first (it names the ticket), then the ticket. No path locks them the other
     * way round: requests insert a new approval row and actions never touch approvals */
    if ((rc = ct_store_approval_lock(tx, j->approval_id, &a, err)) != CT_OK)
        return rc;
    if ((rc = ct_store_ticket_lock(tx, a.ticket_id, &t, err)) != CT_OK)
        return rc;
    if (strcmp(a.status, "pending") != 0)
        return ct_err_set(err, CT_E_CONFLICT, "already_decided", "approval %lld was already %s",
                          a.id, a.status);
    if (strcmp(t.status, "closed") == 0)
        return ct_err_set(err, CT_E_CONFLICT, "ticket_closed",
                          "ticket %lld is closed: closed is final", t.id);
    rc = ct_tickets_check_decision(j->actor, a.requested_by, approve, a.has_amount, a.amount_minor,
                                   a.currency, err);
    if (rc != CT_OK)
        return rc;
    if ((rc = ct_store_approval_decide(tx, a.id, j->decision, j->actor->id, j->reason, err)) != CT_OK)
        return rc;
    staff_event(&ev, j->actor, idbuf, t.id, CT_EV_APPROVAL_DEC);
    ev.from_value = "pending";
    ev.to_value = j->decision;
    return record_approval(tx, j, &ev, &a, t.id, j->reason, err);
}

ct_rc ct_workflow_decide(struct ct_pool *pool, const struct ct_user *actor, long long approval_id,
                         const char *decision, const char *reason, cJSON **out,
                         struct ct_err *err)
{
    struct approval_job j = {.actor = actor, .approval_id = approval_id, .decision = decision,
                             .reason = reason};
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
    char idbuf[32];
    char *text = NULL;
    cJSON *data = NULL;
    ct_rc rc;

    if ((rc = ct_store_rules_replace(tx, j->rules, err)) != CT_OK)
        return rc;
    cJSON_Delete(j->out);
    j->out = NULL;
    if ((rc = ct_store_rules_list(tx, &j->out, err)) != CT_OK)
        return rc;
    text = cJSON_PrintUnformatted(j->rules);
    memset(&ev, 0, sizeof(ev));
    snprintf(idbuf, sizeof(idbuf), "%lld", j->actor->id);
    ev.chain_kind = "user";
    ev.chain_id = j->actor->id;
    ev.action = "rules.complaints_replaced";
    ev.actor_type = "agent";
    ev.actor_id = idbuf;
    ev.texts[ev.ntexts++] = (struct ct_event_text){"actor_name", j->actor->name, "staff"};
    ev.texts[ev.ntexts++] = (struct ct_event_text){"rules", text, "staff"};
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

ct_rc ct_workflow_detect_complaint(struct ct_tx *tx, const struct ct_ticket_ref *t,
                                   const char *text, long long occurred_us, struct ct_err *err)
{
    struct ct_event_new ev;
    char pattern[1024], reason[1100];
    long long rule_id = 0;
    cJSON *data = NULL;
    ct_rc rc;

    /* once per ticket until de-escalated; a ticket people already escalated stays as it is */
    if (!ct_tickets_has_text(text) || t->complaint_escalated || t->escalation_level > 0)
        return CT_OK;
    if ((rc = ct_store_rule_match(tx, text, &rule_id, pattern, err)) != CT_OK || rule_id == 0)
        return rc;
    if ((rc = ct_store_ticket_set_escalation(tx, t->id, 1, true, err)) != CT_OK)
        return rc;
    memset(&ev, 0, sizeof(ev));
    ev.chain_kind = "ticket";
    ev.chain_id = t->id;
    ev.action = CT_EV_ESC_RAISED;
    ev.actor_type = "system";
    ev.actor_id = "complaint-rules";
    ev.from_value = "0";
    ev.to_value = "1";
    ev.occurred_us = occurred_us;
    snprintf(reason, sizeof(reason), "complaint rule matched: %s", pattern);
    ev.texts[ev.ntexts++] = (struct ct_event_text){"reason", reason, "staff"};
    data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "rule_id", (double)rule_id);
    ev.data = data;
    rc = ct_store_event_append(tx, &ev, NULL, err);
    cJSON_Delete(data);
    return rc;
}
