/* metrics.h: Prometheus counters and a latency histogram, safe to update from every worker. */
#ifndef CASETRAIL_METRICS_H
#define CASETRAIL_METRICS_H

#include <stddef.h>

struct ct_metrics;
struct ct_pool;

/* nslots: one counter family per route slot, labelled by label(i). Returns NULL on OOM;
 * free with ct_metrics_free(). */
struct ct_metrics *ct_metrics_new(size_t nslots, void (*label)(size_t i, char *buf, size_t len));
void ct_metrics_free(struct ct_metrics *m);
/* Event counters beyond requests; each is rendered as casetrail_<name>_total. */
enum ct_counter {
    CT_COUNTER_WEBHOOK_REJECTS, /* webhook entries refused and recorded beside their receipt */
    CT_COUNTER_BODY_TIMEOUTS,   /* request bodies cut off with 408 */
    CT_COUNTER_CONNS_RECLAIMED, /* workers taken back from connections waiting for a head */
    CT_COUNTER_SENDS_SENT,      /* replies Graph accepted */
    CT_COUNTER_SENDS_RETRIED,   /* send attempts that will be retried */
    CT_COUNTER_SENDS_FAILED,    /* replies failed for good */
    CT_COUNTER_READS_SENT,      /* read marks Graph accepted (CASETRAIL_MARK_READ) */
    CT_COUNTER_READS_FAILED,    /* read marks failed for good */
    CT_COUNTER_COUNT
};

/* Adds n to counter c. */
void ct_metrics_count(struct ct_metrics *m, enum ct_counter c, long long n);

/* Counts a Graph error answer by its code (the first 64 distinct codes are kept). */
void ct_metrics_graph_error(struct ct_metrics *m, int code);
/* The outbox as a sender last saw it: replies waiting and the oldest one's age. */
void ct_metrics_outbox(struct ct_metrics *m, long long depth, double oldest_s);

/* Counts one request of slot with its status and duration. */
void ct_metrics_observe(struct ct_metrics *m, size_t slot, int status, double seconds);
/* Renders the exposition text, including pool gauges. Returns malloc'd text (caller frees). */
char *ct_metrics_render(struct ct_metrics *m, struct ct_pool *pool);

#endif
