/* tickets.h: ticket domain rules, all of them: the status transition table, which action needs
 * which role and which reason, escalation levels, approval kinds and decisions. Pure functions
 * over the model's structs: no SQL, no HTTP. Every rule is a row in a table in tickets.c, read
 * by these functions, so no caller can skip one and a unit test walks every row. */
#ifndef CASETRAIL_TICKETS_H
#define CASETRAIL_TICKETS_H

#include <stdbool.h>

#include "casetrail/err.h"
#include "casetrail/model.h"

#define CT_REASON_MAX 2000
#define CT_NOTE_MAX 10000
#define CT_ESCALATION_MAX 3

/* Everything staff can do to a ticket, one row each in tickets.c's action table. */
enum ct_action_kind { CT_ACT_ASSIGN, CT_ACT_UNASSIGN, CT_ACT_STATUS, CT_ACT_ESCALATE,
                      CT_ACT_DEESCALATE, CT_ACT_PRIORITY, CT_ACT_NOTE, CT_ACT_APPROVAL_REQUEST,
                      CT_ACT_APPROVAL_DECIDE, CT_ACT_REPLY, CT_ACT_COUNT };

#define CT_REPLY_MAX_CHARS 4096  /* WhatsApp's limit for a text body */
#define CT_CAPTION_MAX_CHARS 1024 /* WhatsApp's limit for a media caption */
#define CT_WINDOW_S (24 * 3600)  /* the customer service window after the customer's message */

/* A free-form reply needs text of 1 to 4,096 characters (400 otherwise) and an open 24-hour
 * window: the customer wrote within the last 24 hours (409 window_closed, saying a template
 * is needed). now_us and last_inbound_us are Unix microseconds; has_inbound false means the
 * customer never wrote. */
ct_rc ct_tickets_check_reply_text(const char *text, struct ct_err *err);
ct_rc ct_tickets_check_window(bool has_inbound, long long last_inbound_us, long long now_us,
                              struct ct_err *err);

/* One staff action on a ticket, as decoded from a request. Strings are borrowed. */
struct ct_ticket_action {
    enum ct_action_kind kind;
    const char *assignee;      /* ASSIGN: user name */
    enum ct_status status;     /* STATUS */
    int level;                 /* ESCALATE: 1..3; DEESCALATE: target level, below the current */
    enum ct_priority priority; /* PRIORITY */
    const char *reason;        /* required or optional by kind (the action table) */
    const char *note;          /* ASSIGN: optional hand-off note; NOTE: the body */
};

/* Checks what can be checked before touching the ticket: reasons the action table requires,
 * the escalation level's range, a note's text. CT_E_INVALID (reason_required, invalid_level,
 * missing_field) otherwise. */
ct_rc ct_tickets_check_action(const struct ct_ticket_action *a, struct ct_err *err);

/* Whether actor may take action kind on ticket t at all: closed is final for people (409
 * ticket_closed); the action's minimum role (403: qa only reads, only supervisors and admins
 * de-escalate and decide); an agent acts on tickets unassigned or assigned to them (403). */
ct_rc ct_tickets_check_actor(const struct ct_user *actor, const struct ct_ticket_ref *t,
                             enum ct_action_kind kind, struct ct_err *err);

/* Checks a status change against the transition table: CT_E_CONFLICT (invalid_transition,
 * naming both statuses) when not allowed, CT_E_FORBIDDEN when the role may not make it,
 * CT_E_INVALID (reason_required) when a needed reason is missing, CT_E_INVALID
 * (invalid_status) for an invalid status. */
ct_rc ct_tickets_check_transition(enum ct_status from, enum ct_status to, enum ct_role role,
                                  const char *reason, struct ct_err *err);

/* Assignment rules: an agent takes an unassigned ticket for themself or hands off their own;
 * supervisors and admins assign anything. The assignee must be active and not qa, and not
 * already the assignee. */
ct_rc ct_tickets_check_assign(const struct ct_user *actor, const struct ct_ticket_ref *t,
                              const struct ct_user *assignee, struct ct_err *err);
/* Unassigning needs an assignee (409 not_assigned). */
ct_rc ct_tickets_check_unassign(const struct ct_ticket_ref *t, struct ct_err *err);
/* Raising must go above the current level (409 already_escalated); lowering needs an escalated
 * ticket (409 not_escalated) and a target below the current level (400 invalid_level). */
ct_rc ct_tickets_check_escalation(const struct ct_ticket_ref *t, bool raise, int level,
                                  struct ct_err *err);
/* Setting the priority a ticket already has is 409 unchanged. */
ct_rc ct_tickets_check_priority(const struct ct_ticket_ref *t, enum ct_priority p,
                                struct ct_err *err);

/* Kinds that move money need a positive amount. */
bool ct_tickets_kind_needs_amount(enum ct_kind kind);

/* An approval request as decoded from a request. Strings are borrowed. */
struct ct_approval_request {
    enum ct_kind kind;
    bool has_amount;
    long long amount_minor;
    const char *currency;  /* NULL: the deployment's */
    const char *reason;
};

/* A request's own rules: a reason, and a positive amount for kinds that move money (400
 * amount_required), in the deployment's currency (422 wrong_currency naming it). */
ct_rc ct_tickets_check_request(const struct ct_approval_request *r, const char *currency,
                               struct ct_err *err);

/* Approval decision rules: a pending approval (409 already_decided) on a ticket that is not
 * closed (409), by a supervisor or admin, never on their own request, and approving an amount
 * needs an approval limit at least that high (403 naming the limit). */
ct_rc ct_tickets_check_decision(const struct ct_user *decider, const struct ct_approval *a,
                                const struct ct_ticket_ref *t, enum ct_approval_status decision,
                                struct ct_err *err);

/* The reason rule of the action table for kind: CT_E_INVALID reason_required when kind needs
 * a reason and reason is NULL or blank. Status changes take theirs from the transition table. */
ct_rc ct_tickets_check_reason(enum ct_action_kind kind, const char *reason, struct ct_err *err);

/* The role an action needs at least (from the action table). */
enum ct_role ct_tickets_action_min_role(enum ct_action_kind kind);

#endif
