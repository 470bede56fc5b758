/* webhook.h: WhatsApp Cloud API webhook verification and parsing into plain structs. No I/O.
 * Built from the documented envelope of Meta's WhatsApp Cloud API webhooks, tolerant of unknown
 * fields and unknown message types: those are kept (raw JSON), never a crash. */
#ifndef CASETRAIL_WEBHOOK_H
#define CASETRAIL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"

/* One inbound message. Strings point into the parsed tree owned by the batch. */
struct ct_wa_message {
    const char *phone_number_id; /* business number that received it */
    const char *from;            /* customer wa_id (for system messages: the old number) */
    const char *wamid;
    const char *type;
    long long ts;                /* WhatsApp timestamp, Unix seconds */
    const char *profile_name;    /* from value.contacts[], NULL when absent or empty */
    const char *text;            /* human-readable content: body, caption, title, emoji ... */
    const char *context_wamid;   /* reply: the quoted message; reaction: the reacted message */
    const cJSON *raw;            /* the message object */
};

struct ct_wa_status {
    const char *phone_number_id;
    const char *wamid;
    const char *status;          /* sent | delivered | read | failed | played | ... */
    long long ts;
    const char *recipient_id;
    int error_code;              /* first errors[].code, 0 when none */
    const char *error_title;
    const cJSON *raw;
};

struct ct_wa_batch {
    cJSON *root;                 /* owned */
    struct ct_wa_message *messages;
    size_t nmessages;
    struct ct_wa_status *statuses;
    size_t nstatuses;
    size_t nerrors;              /* value.errors[] entries (kept in the raw receipt) */
    size_t nskipped;             /* messages/statuses without id, sender or timestamp */
};

/* Checks "sha256=<64 hex>" against HMAC-SHA256(secret, body) in constant time. False for a
 * missing header, wrong prefix, wrong length, non-hex or mismatch. */
bool ct_webhook_signature_ok(const char *secret, const char *body, size_t len, const char *header);

/* Parses a webhook body. Borrows body for the call only; on success fills *out, which the
 * caller releases with ct_webhook_batch_free(). CT_E_INVALID (code invalid_json or
 * not_whatsapp) when the body is not JSON or not a whatsapp_business_account object.
 * Entries missing an id, a sender or a valid timestamp are skipped and counted. */
ct_rc ct_webhook_parse(const char *body, size_t len, struct ct_wa_batch *out, struct ct_err *err);
void ct_webhook_batch_free(struct ct_wa_batch *batch);

/* Rank of a delivery status for monotonic updates: sent 1, delivered 2, read 3, played 4,
 * failed 100 (terminal); 0 for unknown values. */
int ct_webhook_status_rank(const char *status);

#endif
