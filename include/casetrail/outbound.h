/* outbound.h: agent replies. A reply (free-form text or an approved template) is written as an
 * outbound message, an outbox row and its event in one transaction and answered 202 at once;
 * sender threads (sender.h) deliver it. Idempotency keys make a double click send once. */
#ifndef CASETRAIL_OUTBOUND_H
#define CASETRAIL_OUTBOUND_H

#include <stdbool.h>

#include "casetrail/err.h"
#include "casetrail/model.h"

/* the store's handle, used by pointer only */
struct ct_pool;

#define CT_IDEMPOTENCY_KEY_MAX 255

struct ct_reply_request {
    long long ticket_id;
    bool is_template;
    const char *text;            /* text reply: 1 to 4,096 characters */
    const char *reply_to;        /* text reply: a wamid of this ticket, or NULL */
    const char *template_name;   /* template: approved name */
    const char *language;        /* template: language code, e.g. en_US */
    const char *components_json; /* template: the components array as JSON text, or NULL */
    const char *shown;           /* template: what the timeline shows (name and parameters) */
    const char *media_kind;      /* media reply: "image" or "document" (text is the caption,
                                  * may be NULL); NULL for text and templates */
    const char *media_link;      /* media reply: the https URL the Graph API fetches */
    const char *filename;        /* media reply: a document's file name, or NULL */
    const char *idempotency_key; /* Idempotency-Key header, or NULL */
    const char *request_sha256;  /* hex SHA-256 of the request body (with a key) */
};

struct ct_reply_answer {
    int status;                  /* 202, or the stored status of a replayed key */
    char *body;                  /* JSON text to send as it is (malloc'd; caller frees) */
};

/* Queues a reply as actor. An agent may reply on a ticket assigned to them or unassigned (which
 * takes it: assignment.changed, and status.changed when it was new); supervisors and admins on
 * any ticket that is not closed. A free-form text needs the 24-hour window open (409
 * window_closed). The same key from the same user within 24 hours answers the first answer
 * again and queues nothing; the same key with another body is 422 idempotency_mismatch. */
ct_rc ct_outbound_queue(struct ct_pool *pool, const struct ct_user *actor,
                        const struct ct_reply_request *r, struct ct_reply_answer *out,
                        struct ct_err *err);

/* Marks the ticket's newest inbound message read on the Graph API (the customer sees blue
 * ticks), on behalf of actor who opened it: queues one read mark through the outbox unless one
 * exists for that message, the ticket is closed or unknown, or nothing can be marked. */
ct_rc ct_outbound_mark_read(struct ct_pool *pool, const struct ct_user *actor, long long ticket_id,
                            struct ct_err *err);

#endif
