/* tickets.c: ticket domain rules. The transition table below is the only place that says which
 * status may follow which, who may make the move and what it needs. */
#include <ctype.h>
#include <string.h>

#include "casetrail/tickets.h"

static const char *const status_names[] = {"new", "open", "pending", "resolved", "closed"};

enum ct_status ct_tickets_status_parse(const char *s)
{
    for (int i = 0; s != NULL && i < 5; i++) {
        if (strcmp(s, status_names[i]) == 0)
            return (enum ct_status)i;
    }
    return CT_ST_INVALID;
}

const char *ct_tickets_status_name(enum ct_status st)
{
    return (st >= CT_ST_NEW && st <= CT_ST_CLOSED) ? status_names[st] : "invalid";
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, list[i]) == 0)
            return true;
    }
    return false;
}

bool ct_tickets_priority_valid(const char *s)
{
    static const char *const p[] = {"low", "normal", "high", "urgent"};
    return in_list(s, p, 4);
}

bool ct_tickets_approval_kind_valid(const char *s)
{
    static const char *const k[] = {"refund", "credit", "comp", "discount", "exception",
                                    "off_policy_reply"};
    return in_list(s, k, 6);
}

bool ct_tickets_approval_needs_amount(const char *kind)
{
    static const char *const k[] = {"refund", "credit"};
    return in_list(kind, k, 2);
}

bool ct_tickets_has_text(const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (!isspace((unsigned char)*s))
            return true;
    }
    return false;
}

enum need { NONE = 0, REASON, NOTE, SUPERVISOR_REASON };

/* DECISIONS "Workflow": rows are from, columns to (new, open, pending, resolved, closed).
 * -1: not allowed. closed has no way out: it is final. */
static const int moves[5][5] = {
    /* new      */ {-1, NONE, REASON, NOTE, SUPERVISOR_REASON},
    /* open     */ {-1, -1, REASON, NOTE, SUPERVISOR_REASON},
    /* pending  */ {-1, NONE, -1, NOTE, SUPERVISOR_REASON},
    /* resolved */ {-1, NONE, -1, -1, NONE},
    /* closed   */ {-1, -1, -1, -1, -1},
};

ct_rc ct_tickets_check_transition(enum ct_status from, enum ct_status to, enum ct_role role,
                                  const char *reason, struct ct_err *err)
{
    if (from == CT_ST_INVALID || to == CT_ST_INVALID)
        return ct_err_set(err, CT_E_INVALID, "invalid_status",
                          "invalid status: expected new, open, pending, resolved or closed");
    int need = moves[from][to];
    if (need < 0)
        return ct_err_set(err, CT_E_CONFLICT, "invalid_transition",
                          "cannot move a ticket from %s to %s", status_names[from],
                          status_names[to]);
    if (need == SUPERVISOR_REASON && role != CT_ROLE_SUPERVISOR && role != CT_ROLE_ADMIN)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "only a supervisor or admin may close a ticket that is %s",
                          status_names[from]);
    if (need == REASON && !ct_tickets_has_text(reason))
        return ct_err_set(err, CT_E_INVALID, "reason_required",
                          "reason is required when moving to %s: say what it waits for "
                          "(e.g. awaiting_customer, awaiting_courier, awaiting_internal)",
                          status_names[to]);
    if (need == NOTE && !ct_tickets_has_text(reason))
        return ct_err_set(err, CT_E_INVALID, "reason_required",
                          "a resolution note (reason) is required when resolving a ticket");
    if (need == SUPERVISOR_REASON && !ct_tickets_has_text(reason))
        return ct_err_set(err, CT_E_INVALID, "reason_required",
                          "reason is required when closing a ticket that is %s", status_names[from]);
    return CT_OK;
}

ct_rc ct_tickets_check_actor(const struct ct_user *actor, const struct ct_ticket_ref *t,
                             struct ct_err *err)
{
    if (strcmp(t->status, "closed") == 0)
        return ct_err_set(err, CT_E_CONFLICT, "ticket_closed",
                          "ticket %lld is closed: closed is final", t->id);
    if (actor->role == CT_ROLE_QA || actor->role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden", "role %s may only read tickets",
                          ct_auth_role_name(actor->role));
    if (actor->role == CT_ROLE_AGENT && t->assignee_id != 0 && t->assignee_id != actor->id)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "ticket %lld is assigned to someone else", t->id);
    return CT_OK;
}

ct_rc ct_tickets_check_assign(const struct ct_user *actor, const struct ct_ticket_ref *t,
                              const struct ct_user *assignee, struct ct_err *err)
{
    if (!assignee->active)
        return ct_err_set(err, CT_E_UNPROCESSABLE, "assignee_inactive",
                          "user \"%s\" is deactivated", assignee->name);
    if (assignee->role == CT_ROLE_QA)
        return ct_err_set(err, CT_E_UNPROCESSABLE, "assignee_not_agent",
                          "user \"%s\" has role qa and cannot work tickets", assignee->name);
    if (t->assignee_id == assignee->id)
        return ct_err_set(err, CT_E_CONFLICT, "already_assigned",
                          "ticket %lld is already assigned to %s", t->id, assignee->name);
    if (actor->role == CT_ROLE_AGENT && t->assignee_id == 0 && assignee->id != actor->id)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "an agent takes unassigned tickets for themself only");
    return CT_OK;
}

ct_rc ct_tickets_check_decision(const struct ct_user *decider, long long requested_by,
                                bool approve, bool has_amount, long long amount_minor,
                                const char *currency, struct ct_err *err)
{
    if (decider->role != CT_ROLE_SUPERVISOR && decider->role != CT_ROLE_ADMIN)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "only a supervisor or admin may decide approvals");
    if (decider->id == requested_by)
        return ct_err_set(err, CT_E_FORBIDDEN, "own_request",
                          "nobody decides their own request");
    if (approve && has_amount) {
        if (!decider->has_limit)
            return ct_err_set(err, CT_E_FORBIDDEN, "over_limit",
                              "you have no approval limit: you cannot approve %lld %s",
                              amount_minor, currency);
        if (amount_minor > decider->approval_limit_minor)
            return ct_err_set(err, CT_E_FORBIDDEN, "over_limit",
                              "amount %lld %s is above your approval limit of %lld %s",
                              amount_minor, currency, decider->approval_limit_minor, currency);
    }
    return CT_OK;
}
