/* ingest.h: turning parsed webhooks into contacts, tickets, messages and events, durably.
 * B-ingest 5: ct_ingest_commit is the one storage step; it returns only after COMMIT, so a
 * later group-commit step can batch concurrent webhooks behind it without touching handlers. */
#ifndef CASETRAIL_INGEST_H
#define CASETRAIL_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "casetrail/err.h"
#include "casetrail/webhook.h"

/* the store's handles, used by pointer only: domain headers do not include store.h */
struct ct_pool;
struct ct_tx;

struct ct_ingest_result {
    long long receipt_id;
    bool receipt_duplicate; /* byte-identical to a stored receipt: nothing new was stored */
    int messages_new;
    int messages_duplicate;
    int tickets_created;
    int tickets_reopened;
    int statuses_new;
    int statuses_duplicate;
    int statuses_unknown;   /* for outbound ids we never sent: kept in the raw receipt only */
    int rejected;           /* entries refused (malformed, or refused by the database) */
};

/* Stores the raw body and everything in batch in one transaction. body/len are the exact bytes
 * received; signature is the X-Hub-Signature-256 value they were checked against, kept beside
 * them as evidence (NULL when signatures are not checked). CT_E_UNAVAILABLE when the database
 * is unreachable: the caller must then answer 503, never 200. */
ct_rc ct_ingest_commit(struct ct_pool *pool, const char *body, size_t len, const char *signature,
                       const struct ct_wa_batch *batch, struct ct_ingest_result *result,
                       struct ct_err *err);

/* Group commit (docs/DECISIONS.md#group-commit): `lanes` threads each commit whatever
 * webhooks wait for them, at most max_group of at most max_bytes together, in one
 * transaction. NULL when threads cannot start. Stop after the HTTP server has stopped: it
 * commits what is queued, then joins the lanes and frees ing (NULL is fine). */
struct ct_ingester;
struct ct_ingester *ct_ingester_start(struct ct_pool *pool, int lanes, int max_group,
                                      size_t max_bytes, bool batched);
void ct_ingester_stop(struct ct_ingester *ing);
/* Since start: groups committed and the webhooks in them; groups whose batched write failed
 * and were written again row by row; contacts of committed groups locked ahead by the group's
 * preload (ct_store_group_open). */
struct ct_ingest_stats {
    long long groups, webhooks, unbatched, preloaded;
};
void ct_ingester_stats(struct ct_ingester *ing, struct ct_ingest_stats *out);
/* ct_ingest_commit through ing's lanes: returns once the webhook's group has committed (or
 * failed), with the same results and errors. ing NULL: ct_ingest_commit itself. */
ct_rc ct_ingest_submit(struct ct_ingester *ing, struct ct_pool *pool, const char *body,
                       size_t len, const char *signature, const struct ct_wa_batch *batch,
                       struct ct_ingest_result *result, struct ct_err *err);

#endif
