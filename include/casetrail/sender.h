/* sender.h: the threads that deliver queued replies through the Graph API. Each claims a due
 * outbox row (several casetrail instances share the work), sends it, and records the outcome
 * with its event: sent (wamid), retried later with backoff, or failed with Graph's code. */
#ifndef CASETRAIL_SENDER_H
#define CASETRAIL_SENDER_H

#include "casetrail/err.h"

struct ct_pool;
struct ct_metrics;
struct ct_sender;

struct ct_sender_config {
    int threads;             /* CASETRAIL_SENDERS */
    int max_attempts;        /* CASETRAIL_SEND_ATTEMPTS: then a retryable failure is final */
    int pace_ms;             /* CASETRAIL_PACE_MS: between two messages to one recipient */
    int rate_per_s;          /* CASETRAIL_SEND_RATE: per business number, 0 no cap */
    int backoff_ms;          /* first retry delay; doubles per attempt, capped at 5 minutes */
    const char *graph_url;   /* borrowed for the sender's life */
    const char *token;       /* borrowed; never logged */
    long connect_timeout_ms;
    long total_timeout_ms;
};

/* Requeues rows a dead process left 'sending', then starts the threads. Returns NULL (err
 * filled) when they cannot start. Stop with ct_sender_stop. */
struct ct_sender *ct_sender_start(struct ct_pool *pool, struct ct_metrics *metrics,
                                  const struct ct_sender_config *cfg, struct ct_err *err);
/* Asks every thread to finish its current send, joins them and frees s (NULL is fine). */
void ct_sender_stop(struct ct_sender *s);

#endif
