/* webhook.h: WhatsApp Cloud API webhook verification and parsing into plain structs. No I/O.
 * Built from the documented envelope of Meta's WhatsApp Cloud API webhooks, tolerant of unknown
 * fields and unknown message types: those are kept (raw JSON), never a crash. */
#ifndef CASETRAIL_WEBHOOK_H
#define CASETRAIL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"

/* One message in a conversation: from the customer, or (echo) sent by the business from the
 * WhatsApp Business app. Strings point into the parsed tree owned by the batch. */
struct ct_wa_message {
    const char *phone_number_id; /* business number that received (or, echoed, sent) it */
    const char *from;            /* the customer's phone number (wa_id), NULL when hidden;
                                  * for system messages the old number */
    const char *user_id;         /* the customer's business-scoped user id (BSUID), or NULL */
    const char *parent_user_id;  /* the parent BSUID, or NULL */
    const char *username;        /* the customer's username from value.contacts[], or NULL */
    const char *wamid;
    const char *type;
    long long ts;                /* WhatsApp timestamp, Unix seconds */
    const char *profile_name;    /* from value.contacts[], NULL when absent or empty */
    const char *text;            /* human-readable content: body, caption, title, emoji ... */
    const char *context_wamid;   /* reply: the quoted message; reaction: the reacted message */
    const char *target_wamid;    /* edit / revoke: the message it changes */
    bool echo;                   /* smb_message_echoes: the business sent it from its phone */
    /* system messages user_changed_number / customer_changed_number / user_changed_user_id:
     * the customer's new ids (NULL when the message does not change that id) */
    const char *new_wa_id;
    const char *new_user_id;
    const cJSON *raw;            /* the message object */
};

/* What the customer is keyed by: BSUID when present, else the phone number. */
const char *ct_wa_customer_id(const struct ct_wa_message *m);

struct ct_wa_status {
    const char *phone_number_id;
    const char *wamid;
    const char *status;          /* sent | delivered | read | failed | played | ... */
    long long ts;
    const char *recipient_id;    /* phone number; NULL when sent to a BSUID */
    const char *recipient_user_id; /* BSUID, when the status names one */
    const char *username;        /* from value.contacts[] (delivered/read), or NULL */
    int error_code;              /* first errors[].code, 0 when none */
    const char *error_title;
    const cJSON *raw;
};

/* An entry the batch cannot store as it is: a missing or malformed id, sender, timestamp,
 * business number or other keyed field. It costs only itself: the rest of the batch is stored,
 * and the entry is recorded beside the receipt with its reason. */
#define CT_WA_WHERE_MAX 80
#define CT_WA_REASON_MAX 200
struct ct_wa_reject {
    const char *kind;                 /* "message" | "status" */
    char where[CT_WA_WHERE_MAX];      /* "entry[0].changes[1].value.messages[2]" */
    char reason[CT_WA_REASON_MAX];
    const cJSON *raw;                 /* the entry as received (borrowed from root) */
};

/* A user_id_update webhook: the customer old_user_id is now new_user_id. */
struct ct_wa_id_update {
    const char *phone_number_id;
    const char *old_user_id;
    const char *new_user_id;
    const char *wa_id;           /* when the update names the phone number too, or NULL */
    long long ts;                /* 0 when the update carries no time */
    const cJSON *raw;
};

struct ct_wa_batch {
    cJSON *root;                 /* owned */
    struct ct_wa_message *messages;
    size_t nmessages;
    struct ct_wa_status *statuses;
    size_t nstatuses;
    struct ct_wa_reject *rejects;
    size_t nrejects;
    struct ct_wa_id_update *id_updates;
    size_t nid_updates;
    size_t nerrors;              /* value.errors[] entries (kept in the raw receipt) */
};

/* Longest accepted keyed fields; longer is a reject (PostgreSQL's btree rows have a limit, and
 * no real WhatsApp id comes near these). */
#define CT_WA_ID_MAX 255         /* wamid, context ids */
#define CT_WA_USER_MAX 64        /* wa_id, BSUID, recipient */
#define CT_WA_PNID_MAX 32        /* phone_number_id: digits */
#define CT_WA_NAME_MAX 1024      /* profile name, bytes */
#define CT_WA_BSUID_MAX 160      /* "PK." + up to 128 alphanumerics, parent "US.ENT." ... */

/* Checks "sha256=<64 hex>" against HMAC-SHA256(secret, body) in constant time. False for a
 * missing header, wrong prefix, wrong length, non-hex or mismatch. */
bool ct_webhook_signature_ok(const char *secret, const char *body, size_t len, const char *header);

/* Parses a webhook body. Borrows body for the call only; on success fills *out, which the
 * caller releases with ct_webhook_batch_free(). CT_E_INVALID (code invalid_json or
 * not_whatsapp) when the body is not JSON or not a whatsapp_business_account object.
 * Entries with a missing or malformed keyed field are listed in out->rejects with a reason
 * instead of out->messages / out->statuses. */
ct_rc ct_webhook_parse(const char *body, size_t len, struct ct_wa_batch *out, struct ct_err *err);
void ct_webhook_batch_free(struct ct_wa_batch *batch);

/* Rank of a delivery status for monotonic updates: sent 1, delivered 2, read 3, played 4,
 * failed 100 (terminal); 0 for unknown values. */
int ct_webhook_status_rank(const char *status);

#endif
