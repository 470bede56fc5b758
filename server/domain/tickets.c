/* tickets.c: ticket domain rules. Each rule is a row in one of the tables below (transitions,
 * actions, approval kinds); the functions only read them, so changing a rule is changing a row
 * and tests/unit/test_tickets.c walks every row. See docs/DECISIONS.md#status-transitions. */
#include <stddef.h>
#include <string.h>

#include "casetrail/auth.h"
#include "casetrail/text.h"
#include "casetrail/tickets.h"

enum need { NO = -1, FREE = 0, REASON, NOTE, SUPERVISOR_REASON };

/* Rows are from, columns to (new, open, pending, resolved, closed). NO: not allowed.
 * closed has no way out: it is final. */
static const enum need moves[CT_STATUS_COUNT][CT_STATUS_COUNT] = {
    /* new      */ {NO, FREE, REASON, NOTE, SUPERVISOR_REASON},
    /* open     */ {NO, NO, REASON, NOTE, SUPERVISOR_REASON},
    /* pending  */ {NO, FREE, NO, NOTE, SUPERVISOR_REASON},
    /* resolved */ {NO, FREE, NO, NO, FREE},
    /* closed   */ {NO, NO, NO, NO, NO},
};

/* Per action: the least role that may take it, and whether it needs a reason (the phrase
 * completes "reason is required when ..."; NULL: optional or, for status, by transition). */
static const struct action_rule {
    enum ct_role min_role;
    const char *reason_when;
} actions[CT_ACT_COUNT] = {
    [CT_ACT_ASSIGN] = {CT_ROLE_AGENT, NULL},
    [CT_ACT_UNASSIGN] = {CT_ROLE_AGENT, "returning a ticket to the queue"},
    [CT_ACT_STATUS] = {CT_ROLE_AGENT, NULL},
    [CT_ACT_ESCALATE] = {CT_ROLE_AGENT, "escalating"},
    /* lowering undoes someone's judgement (or a complaint rule's): supervisors only */
    [CT_ACT_DEESCALATE] = {CT_ROLE_SUPERVISOR, "de-escalating"},
    [CT_ACT_PRIORITY] = {CT_ROLE_AGENT, NULL},
    [CT_ACT_NOTE] = {CT_ROLE_AGENT, NULL},
    [CT_ACT_APPROVAL_REQUEST] = {CT_ROLE_AGENT, "requesting an approval"},
    [CT_ACT_APPROVAL_DECIDE] = {CT_ROLE_SUPERVISOR, "deciding an approval"},
    [CT_ACT_REPLY] = {CT_ROLE_AGENT, NULL},
};

/* Approval kinds that move money need a positive amount. */
static const bool kind_needs_amount[] = {
    [CT_KIND_REFUND] = true, [CT_KIND_CREDIT] = true, [CT_KIND_COMP] = false,
    [CT_KIND_DISCOUNT] = false, [CT_KIND_EXCEPTION] = false, [CT_KIND_OFF_POLICY_REPLY] = false,
};

static bool valid_kind(enum ct_action_kind kind)
{
    return kind >= CT_ACT_ASSIGN && kind < CT_ACT_COUNT;
}

enum ct_role ct_tickets_action_min_role(enum ct_action_kind kind)
{
    return valid_kind(kind) ? actions[kind].min_role : CT_ROLE_ADMIN;
}

bool ct_tickets_kind_needs_amount(enum ct_kind kind)
{
    return kind >= CT_KIND_REFUND && kind <= CT_KIND_OFF_POLICY_REPLY && kind_needs_amount[kind];
}

ct_rc ct_tickets_check_reason(enum ct_action_kind kind, const char *reason, struct ct_err *err)
{
    if (valid_kind(kind) && actions[kind].reason_when != NULL && !ct_text_present(reason))
        return ct_err_set(err, CT_E_INVALID, "reason_required", "reason is required when %s",
                          actions[kind].reason_when);
    return CT_OK;
}

ct_rc ct_tickets_check_action(const struct ct_ticket_action *a, struct ct_err *err)
{
    ct_rc rc = ct_tickets_check_reason(a->kind, a->reason, err);
    if (rc != CT_OK)
        return rc;
    switch (a->kind) {
    case CT_ACT_STATUS:
        if (a->status == CT_ST_INVALID)
            return ct_err_set(err, CT_E_INVALID, "invalid_status",
                              "invalid status: expected %s", ct_status_names_text());
        break;
    case CT_ACT_ESCALATE:
        /* wrong_type, as the API always answered an out-of-range level */
        if (a->level < 1 || a->level > CT_ESCALATION_MAX)
            return ct_err_set(err, CT_E_INVALID, "wrong_type",
                              "level must be an integer from 1 to %d", CT_ESCALATION_MAX);
        break;
    case CT_ACT_DEESCALATE:
        if (a->level < 0 || a->level >= CT_ESCALATION_MAX)
            return ct_err_set(err, CT_E_INVALID, "wrong_type",
                              "level must be an integer from 0 to %d", CT_ESCALATION_MAX - 1);
        break;
    case CT_ACT_PRIORITY:
        if (a->priority == CT_PRIO_INVALID)
            return ct_err_set(err, CT_E_INVALID, "invalid_priority",
                              "invalid priority: expected %s", ct_priority_names_text());
        break;
    case CT_ACT_NOTE:
        if (!ct_text_present(a->note))
            return ct_err_set(err, CT_E_INVALID, "missing_field", "body must not be empty");
        break;
    default:
        break;
    }
    return CT_OK;
}

ct_rc ct_tickets_check_reply_text(const char *text, struct ct_err *err)
{
    if (!ct_text_present(text))
        return ct_err_set(err, CT_E_INVALID, "missing_field", "text must not be empty");
    if (ct_utf8_chars(text) > CT_REPLY_MAX_CHARS)
        return ct_err_set(err, CT_E_INVALID, "too_long", "text is longer than %d characters",
                          CT_REPLY_MAX_CHARS);
    return CT_OK;
}

ct_rc ct_tickets_check_window(bool has_inbound, long long last_inbound_us, long long now_us,
                              struct ct_err *err)
{
    if (!has_inbound || now_us - last_inbound_us > (long long)CT_WINDOW_S * 1000000LL)
        return ct_err_set(err, CT_E_CONFLICT, "window_closed",
                          "the customer last wrote more than 24 hours ago: only an approved "
                          "template may be sent (POST /api/tickets/{id}/templates)");
    return CT_OK;
}

ct_rc ct_tickets_check_transition(enum ct_status from, enum ct_status to, enum ct_role role,
                                  const char *reason, struct ct_err *err)
{
    if (from < 0 || from >= CT_STATUS_COUNT || to < 0 || to >= CT_STATUS_COUNT)
        return ct_err_set(err, CT_E_INVALID, "invalid_status", "invalid status: expected %s",
                          ct_status_names_text());
    enum need need = moves[from][to];
    if (need == NO)
        return ct_err_set(err, CT_E_CONFLICT, "invalid_transition",
                          "cannot move a ticket from %s to %s", ct_status_name(from),
                          ct_status_name(to));
    if (need == SUPERVISOR_REASON && !ct_auth_role_at_least(role, CT_ROLE_SUPERVISOR))
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "only a supervisor or admin may close a ticket that is %s",
                          ct_status_name(from));
    if (need == FREE || ct_text_present(reason))
        return CT_OK;
    if (need == REASON)
        return ct_err_set(err, CT_E_INVALID, "reason_required",
                          "reason is required when moving to %s: say what it waits for "
                          "(e.g. awaiting_customer, awaiting_courier, awaiting_internal)",
                          ct_status_name(to));
    if (need == NOTE)
        return ct_err_set(err, CT_E_INVALID, "reason_required",
                          "a resolution note (reason) is required when resolving a ticket");
    return ct_err_set(err, CT_E_INVALID, "reason_required",
                      "reason is required when closing a ticket that is %s", ct_status_name(from));
}

/* closed is final for people: docs/DECISIONS.md#closed-is-final */
static ct_rc check_not_closed(const struct ct_ticket_ref *t, struct ct_err *err)
{
    if (t->status == CT_ST_CLOSED)
        return ct_err_set(err, CT_E_CONFLICT, "ticket_closed",
                          "ticket %lld is closed: closed is final", t->id);
    return CT_OK;
}

ct_rc ct_tickets_check_actor(const struct ct_user *actor, const struct ct_ticket_ref *t,
                             enum ct_action_kind kind, struct ct_err *err)
{
    enum ct_role need = ct_tickets_action_min_role(kind);
    ct_rc rc = check_not_closed(t, err);
    if (rc != CT_OK)
        return rc;
    if (actor->role == CT_ROLE_QA || actor->role == CT_ROLE_NONE)
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden", "role %s may only read tickets",
                          ct_role_name(actor->role));
    if (!ct_auth_role_at_least(actor->role, need))
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden", "only a %s or admin may do this",
                          ct_role_name(need));
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

ct_rc ct_tickets_check_unassign(const struct ct_ticket_ref *t, struct ct_err *err)
{
    if (t->assignee_id == 0)
        return ct_err_set(err, CT_E_CONFLICT, "not_assigned", "ticket %lld is not assigned",
                          t->id);
    return CT_OK;
}

ct_rc ct_tickets_check_escalation(const struct ct_ticket_ref *t, bool raise, int level,
                                  struct ct_err *err)
{
    if (raise && level <= t->escalation_level)
        return ct_err_set(err, CT_E_CONFLICT, "already_escalated",
                          "ticket %lld is already at escalation level %d", t->id,
                          t->escalation_level);
    if (!raise && t->escalation_level == 0)
        return ct_err_set(err, CT_E_CONFLICT, "not_escalated", "ticket %lld is not escalated",
                          t->id);
    if (!raise && level >= t->escalation_level)
        return ct_err_set(err, CT_E_INVALID, "invalid_level",
                          "level must be below the current escalation level %d",
                          t->escalation_level);
    return CT_OK;
}

ct_rc ct_tickets_check_priority(const struct ct_ticket_ref *t, enum ct_priority p,
                                struct ct_err *err)
{
    if (t->priority == p)
        return ct_err_set(err, CT_E_CONFLICT, "unchanged", "ticket %lld already has priority %s",
                          t->id, ct_priority_name(p));
    return CT_OK;
}

ct_rc ct_tickets_check_request(const struct ct_approval_request *r, const char *currency,
                               struct ct_err *err)
{
    ct_rc rc = ct_tickets_check_reason(CT_ACT_APPROVAL_REQUEST, r->reason, err);
    if (rc != CT_OK)
        return rc;
    if (r->kind == CT_KIND_INVALID)
        return ct_err_set(err, CT_E_INVALID, "invalid_kind", "invalid kind: expected %s",
                          ct_kind_names_text());
    if (ct_tickets_kind_needs_amount(r->kind) && (!r->has_amount || r->amount_minor <= 0))
        return ct_err_set(err, CT_E_INVALID, "amount_required",
                          "a %s needs a positive amount_minor (in %s minor units)",
                          ct_kind_name(r->kind), currency);
    /* one currency per deployment: docs/DECISIONS.md#money */
    if (r->currency != NULL && strcmp(r->currency, currency) != 0)
        return ct_err_set(err, CT_E_UNPROCESSABLE, "wrong_currency",
                          "currency \"%.8s\" is not this deployment's currency %s: amounts are "
                          "in %s minor units", r->currency, currency, currency);
    return CT_OK;
}

ct_rc ct_tickets_check_decision(const struct ct_user *decider, const struct ct_approval *a,
                                const struct ct_ticket_ref *t, enum ct_approval_status decision,
                                struct ct_err *err)
{
    ct_rc rc;
    if (a->status != CT_APPR_PENDING)
        return ct_err_set(err, CT_E_CONFLICT, "already_decided", "approval %lld was already %s",
                          a->id, ct_approval_status_name(a->status));
    rc = check_not_closed(t, err);
    if (rc != CT_OK)
        return rc;
    if (!ct_auth_role_at_least(decider->role, ct_tickets_action_min_role(CT_ACT_APPROVAL_DECIDE)))
        return ct_err_set(err, CT_E_FORBIDDEN, "forbidden",
                          "only a supervisor or admin may decide approvals");
    if (decider->id == a->requested_by)
        return ct_err_set(err, CT_E_FORBIDDEN, "own_request", "nobody decides their own request");
    if (decision == CT_APPR_APPROVED && a->has_amount) {
        if (!decider->has_limit)
            return ct_err_set(err, CT_E_FORBIDDEN, "over_limit",
                              "you have no approval limit: you cannot approve %lld %s",
                              a->amount_minor, a->currency);
        if (a->amount_minor > decider->approval_limit_minor)
            return ct_err_set(err, CT_E_FORBIDDEN, "over_limit",
                              "amount %lld %s is above your approval limit of %lld %s",
                              a->amount_minor, a->currency, decider->approval_limit_minor,
                              a->currency);
    }
    return CT_OK;
}
