/* model.h: casetrail's domain model: roles, ticket statuses and priorities, approval kinds,
 * the event action names, and the plain structs every layer passes around. It depends on
 * nothing but the C library, so the store, the domain rules and the HTTP layer all build on it
 * and none of them has to include another's header for a type. */
#ifndef CASETRAIL_MODEL_H
#define CASETRAIL_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* ---- enumerations; each has one name table in model.c ---- */

enum ct_role { CT_ROLE_NONE = 0, CT_ROLE_AGENT, CT_ROLE_SUPERVISOR, CT_ROLE_QA, CT_ROLE_ADMIN };

enum ct_status { CT_ST_INVALID = -1, CT_ST_NEW = 0, CT_ST_OPEN, CT_ST_PENDING, CT_ST_RESOLVED,
                 CT_ST_CLOSED };
#define CT_STATUS_COUNT 5

enum ct_priority { CT_PRIO_INVALID = -1, CT_PRIO_LOW = 0, CT_PRIO_NORMAL, CT_PRIO_HIGH,
                   CT_PRIO_URGENT };

enum ct_kind { CT_KIND_INVALID = -1, CT_KIND_REFUND = 0, CT_KIND_CREDIT, CT_KIND_COMP,
               CT_KIND_DISCOUNT, CT_KIND_EXCEPTION, CT_KIND_OFF_POLICY_REPLY };

enum ct_approval_status { CT_APPR_INVALID = -1, CT_APPR_PENDING = 0, CT_APPR_APPROVED,
                          CT_APPR_DENIED };

/* Static names ("agent", "open", ...); parse is exact and case-sensitive and returns the
 * INVALID value (CT_ROLE_NONE for roles) for NULL or anything else. */
const char *ct_role_name(enum ct_role role);           /* "none" for CT_ROLE_NONE */
enum ct_role ct_role_parse(const char *s);
const char *ct_status_name(enum ct_status st);         /* "invalid" outside the enum */
enum ct_status ct_status_parse(const char *s);
const char *ct_priority_name(enum ct_priority p);
enum ct_priority ct_priority_parse(const char *s);
const char *ct_kind_name(enum ct_kind k);
enum ct_kind ct_kind_parse(const char *s);
const char *ct_approval_status_name(enum ct_approval_status s);
enum ct_approval_status ct_approval_status_parse(const char *s);

/* The names of an enum joined for error messages: "new, open, pending, resolved or closed". */
const char *ct_status_names_text(void);
const char *ct_priority_names_text(void);
const char *ct_kind_names_text(void);

/* ---- event actions: the strings stored in events.action, named once ----
 * String literals, so SQL in the store can splice them in at compile time. */
#define CT_EV_TICKET_CREATED "ticket.created"
#define CT_EV_TICKET_REOPENED "ticket.reopened"
#define CT_EV_MESSAGE_RECEIVED "message.received"
#define CT_EV_MESSAGE_STATUS "message.status"
#define CT_EV_MESSAGE_ECHOED "message.echoed"   /* sent from the WhatsApp Business app */
#define CT_EV_CONTACT_LINKED "contact.linked"
#define CT_EV_MESSAGE_QUEUED "message.queued"   /* an agent's reply, written to the outbox */
#define CT_EV_MESSAGE_SENT "message.sent"       /* Graph accepted it: it has a wamid */
#define CT_EV_MESSAGE_FAILED "message.failed"   /* Graph refused it for good */
#define CT_EV_MEDIA_STORED "media.stored"       /* a customer's file kept; data: its SHA-256 */
#define CT_EV_MEDIA_FAILED "media.failed"
#define CT_EV_ASSIGNMENT "assignment.changed"
#define CT_EV_STATUS "status.changed"
#define CT_EV_ESC_RAISED "escalation.raised"
#define CT_EV_ESC_LOWERED "escalation.lowered"
#define CT_EV_PRIORITY "priority.changed"
#define CT_EV_NOTE "note.added"
#define CT_EV_APPROVAL_REQ "approval.requested"
#define CT_EV_APPROVAL_DEC "approval.decided"
#define CT_EV_RULES_REPLACED "rules.complaints_replaced"
#define CT_EV_USER_CREATED "user.created"
#define CT_EV_USER_ROLE "user.role_changed"
#define CT_EV_USER_DEACTIVATED "user.deactivated"
#define CT_EV_USER_TOKEN "user.token_rotated"
#define CT_EV_USER_PASSWORD "user.password_set"
/* Settled, not built yet (docs/DECISIONS.md#erasure): a contact's texts and salt destroyed. The
 * verifier accepts a missing text or salt only in a chain that records one. */
#define CT_EV_ERASED "contact.erased"

/* Chains and actor types as stored in events. */
#define CT_CHAIN_TICKET "ticket"
#define CT_CHAIN_USER "user"
#define CT_ACTOR_AGENT "agent"       /* any staff member, whatever their role */
#define CT_ACTOR_SYSTEM "system"
#define CT_ACTOR_CUSTOMER "customer"
/* Salt scope of staff text (names, reasons, notes); a contact's is "contact:<id>". */
#define CT_SCOPE_STAFF "staff"

/* ---- structs ---- */

#define CT_USER_NAME_MAX 64

struct ct_user {
    long long id;
    char name[CT_USER_NAME_MAX + 1];
    enum ct_role role;
    bool has_limit;
    long long approval_limit_minor;
    bool active;
    char created_at[40]; /* ISO 8601 UTC */
};

/* A ticket row as the rules need it (locked by the store while a transaction decides). */
struct ct_ticket_ref {
    long long id;              /* 0 when none */
    enum ct_status status;
    long long assignee_id;     /* 0 when unassigned */
    int escalation_level;
    enum ct_priority priority;
    bool complaint_escalated;  /* a complaint rule escalated it (cleared by de-escalation) */
};

struct ct_approval {
    long long id;
    long long ticket_id;
    enum ct_kind kind;
    bool has_amount;
    long long amount_minor;
    char currency[4];
    enum ct_approval_status status;
    long long requested_by;
};

/* Who did something, as recorded in events. Strings are borrowed. */
struct ct_actor {
    const char *type;  /* CT_ACTOR_AGENT | CT_ACTOR_SYSTEM | CT_ACTOR_CUSTOMER */
    const char *id;    /* user id as text, "cli", "whatsapp", a wa_id ... */
    const char *name;  /* display name as it was (a free text, digested); NULL for none */
    const char *scope; /* salt scope of name: CT_SCOPE_STAFF or "contact:<id>" */
};

/* A staff member as an actor; idbuf (caller's, at least 24 bytes) holds the id text. The
 * result borrows u and idbuf. */
struct ct_actor ct_actor_staff(const struct ct_user *u, char idbuf[24]);

/* ---- a new event, before the store chains and hashes it ---- */

struct ct_event_text {
    const char *field;      /* "reason", "note", "actor_name", ... */
    const char *body;       /* free text */
    const char *salt_scope; /* CT_SCOPE_STAFF or "contact:<id>" */
};

#define CT_EVENT_MAX_TEXTS 6

struct ct_event_new {
    const char *chain_kind;  /* CT_CHAIN_TICKET or CT_CHAIN_USER */
    long long chain_id;
    const char *action;      /* CT_EV_* */
    const char *actor_type;
    const char *actor_id;
    const char *from_value;  /* enum value or id; NULL allowed; never free text */
    const char *to_value;
    long long occurred_us;   /* 0 means the recording time */
    const cJSON *data;       /* borrowed; ids, enums, amounts only; NULL allowed */
    struct ct_event_text texts[CT_EVENT_MAX_TEXTS];
    int ntexts;
    /* a ticket event that is also the ticket's activity (a message): the append sets the
     * ticket's updated_at and moves last_message_at to touch_us (0: leaves it), in the same
     * statement, where it used to take one more round trip */
    bool touch;
    long long touch_us;
};

/* The one way events are started: clears ev, names its chain, action and actor, and records
 * the actor's name (when it has one) as the text "actor_name". Borrows every string. */
void ct_event_begin(struct ct_event_new *ev, const char *chain_kind, long long chain_id,
                    const char *action, const struct ct_actor *actor);
/* Adds a free text to ev (nothing when body is NULL). The text is digested into the chain and
 * kept outside it, so erasure can remove it later. At most CT_EVENT_MAX_TEXTS; more is a bug. */
void ct_event_text(struct ct_event_new *ev, const char *field, const char *body,
                   const char *salt_scope);

#endif
