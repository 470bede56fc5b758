/* metrics.c: request counters by route and status, one latency histogram, body timeouts, pool
 * gauges, in Prometheus text exposition format. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/buf.h"
#include "casetrail/metrics.h"
#include "casetrail/store.h"

#define MIN_STATUS 100
#define NSTATUS 500 /* 100..599 */

static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct ct_metrics {
    pthread_mutex_t mu;
    size_t nslots;
    char (*labels)[160];
    unsigned long long *counts; /* [slot][status - 100] */
    unsigned long long buckets[NBOUNDS + 1];
    double sum;
    unsigned long long total;
    unsigned long long counters[CT_COUNTER_COUNT];
    int graph_codes[64];
    unsigned long long graph_counts[64];
    int ngraph;
    long long outbox_depth;
    double outbox_oldest_s;
};

/* Name and help of each counter, by enum ct_counter. */
static const struct {
    const char *name, *help;
} counter_info[CT_COUNTER_COUNT] = {
    [CT_COUNTER_WEBHOOK_REJECTS] = {"casetrail_webhook_rejected_entries_total",
                                    "Webhook entries refused and recorded beside their receipt."},
    [CT_COUNTER_BODY_TIMEOUTS] = {"casetrail_http_body_timeouts_total",
                                  "Request bodies cut off (408) for arriving too slowly."},
    [CT_COUNTER_CONNS_RECLAIMED] = {"casetrail_http_connections_reclaimed_total",
                                    "Connections closed while they only waited for a request "
                                    "head, to give their worker to a waiting connection."},
    [CT_COUNTER_SENDS_SENT] = {"casetrail_sends_sent_total", "Replies the Graph API accepted."},
    [CT_COUNTER_SENDS_RETRIED] = {"casetrail_sends_retried_total",
                                  "Reply send attempts that will be retried."},
    [CT_COUNTER_SENDS_FAILED] = {"casetrail_sends_failed_total", "Replies failed for good."},
    [CT_COUNTER_READS_SENT] = {"casetrail_read_marks_sent_total",
                               "Inbound messages marked read on the Graph API."},
    [CT_COUNTER_READS_FAILED] = {"casetrail_read_marks_failed_total",
                                 "Read marks failed for good."},
};

void ct_metrics_count(struct ct_metrics *m, enum ct_counter c, long long n)
{
    if (c < 0 || c >= CT_COUNTER_COUNT || n <= 0)
        return;
    pthread_mutex_lock(&m->mu);
    m->counters[c] += (unsigned long long)n;
    pthread_mutex_unlock(&m->mu);
}

void ct_metrics_graph_error(struct ct_metrics *m, int code)
{
    int i;
    pthread_mutex_lock(&m->mu);
    for (i = 0; i < m->ngraph && m->graph_codes[i] != code; i++)
        ;
    if (i == m->ngraph && m->ngraph < 64)
        m->graph_codes[m->ngraph++] = code;
    if (i < m->ngraph)
        m->graph_counts[i]++;
    pthread_mutex_unlock(&m->mu);
}

void ct_metrics_outbox(struct ct_metrics *m, long long depth, double oldest_s)
{
    pthread_mutex_lock(&m->mu);
    m->outbox_depth = depth;
    m->outbox_oldest_s = oldest_s;
    pthread_mutex_unlock(&m->mu);
}

struct ct_metrics *ct_metrics_new(size_t nslots, void (*label)(size_t i, char *buf, size_t len))
{
    struct ct_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->nslots = nslots;
    m->labels = calloc(nslots, sizeof(*m->labels));
    m->counts = calloc(nslots * NSTATUS, sizeof(*m->counts));
    if (m->labels == NULL || m->counts == NULL) {
        ct_metrics_free(m);
        return NULL;
    }
    for (size_t i = 0; i < nslots; i++)
        label(i, m->labels[i], sizeof(m->labels[i]));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void ct_metrics_free(struct ct_metrics *m)
{
    if (m == NULL)
        return;
    if (m->labels != NULL && m->counts != NULL)
        pthread_mutex_destroy(&m->mu);
    free(m->labels);
    free(m->counts);
    free(m);
}

void ct_metrics_observe(struct ct_metrics *m, size_t slot, int status, double seconds)
{
    size_t b = 0;
    if (slot >= m->nslots)
        return;
    if (status < MIN_STATUS || status >= MIN_STATUS + NSTATUS)
        status = 500;
    while (b < NBOUNDS && seconds > bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->counts[slot * NSTATUS + (size_t)(status - MIN_STATUS)]++;
    m->buckets[b]++;
    m->sum += seconds;
    m->total++;
    if (status == 408)
        m->counters[CT_COUNTER_BODY_TIMEOUTS]++; /* only ct_http_read_body answers 408 */
    pthread_mutex_unlock(&m->mu);
}

char *ct_metrics_render(struct ct_metrics *m, struct ct_pool *pool)
{
    struct ct_buf o = {0};
    unsigned long long cum = 0;

    ct_buf_addf(&o, "# HELP casetrail_http_requests_total HTTP requests by route and status.\n"
             "# TYPE casetrail_http_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (size_t s = 0; s < m->nslots; s++) {
        for (size_t st = 0; st < NSTATUS; st++) {
            unsigned long long c = m->counts[s * NSTATUS + st];
            if (c > 0)
                ct_buf_addf(&o, "casetrail_http_requests_total{route=\"%s\",status=\"%zu\"} %llu\n",
                     m->labels[s], st + MIN_STATUS, c);
        }
    }
    ct_buf_addf(
        &o, "# HELP casetrail_http_request_duration_seconds Time from request start to answer.\n"
            "# TYPE casetrail_http_request_duration_seconds histogram\n");
    for (size_t b = 0; b < NBOUNDS; b++) {
        cum += m->buckets[b];
        ct_buf_addf(&o, "casetrail_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                    bounds[b], cum);
    }
    cum += m->buckets[NBOUNDS];
    ct_buf_addf(&o, "casetrail_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    ct_buf_addf(&o, "casetrail_http_request_duration_seconds_sum %.6f\n", m->sum);
    ct_buf_addf(&o, "casetrail_http_request_duration_seconds_count %llu\n", m->total);
    for (int c = 0; c < CT_COUNTER_COUNT; c++)
        ct_buf_addf(&o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_info[c].name,
                    counter_info[c].help, counter_info[c].name, counter_info[c].name,
                    m->counters[c]);
    ct_buf_addf(&o, "# HELP casetrail_graph_errors_total Graph API error answers by code.\n"
                    "# TYPE casetrail_graph_errors_total counter\n");
    for (int i = 0; i < m->ngraph; i++)
        ct_buf_addf(&o, "casetrail_graph_errors_total{code=\"%d\"} %llu\n", m->graph_codes[i],
                    m->graph_counts[i]);
    ct_buf_addf(&o, "# HELP casetrail_outbox_depth Replies queued or being sent.\n"
                    "# TYPE casetrail_outbox_depth gauge\ncasetrail_outbox_depth %lld\n"
                    "# HELP casetrail_outbox_oldest_seconds Age of the oldest waiting reply.\n"
                    "# TYPE casetrail_outbox_oldest_seconds gauge\n"
                    "casetrail_outbox_oldest_seconds %.3f\n",
                    m->outbox_depth, m->outbox_oldest_s);
    pthread_mutex_unlock(&m->mu);
    ct_buf_addf(&o,
                "# HELP casetrail_db_pool_connections_in_use Database connections borrowed now.\n"
                "# TYPE casetrail_db_pool_connections_in_use gauge\n"
                "casetrail_db_pool_connections_in_use %d\n",
                ct_pool_in_use(pool));
    ct_buf_addf(&o,
                "# HELP casetrail_db_pool_connections_max Size of the database connection pool.\n"
                "# TYPE casetrail_db_pool_connections_max gauge\n"
                "casetrail_db_pool_connections_max %d\n",
                ct_pool_size(pool));
    ct_buf_addf(&o, "# HELP casetrail_db_up 1 when the last use of the database succeeded.\n"
             "# TYPE casetrail_db_up gauge\n"
             "casetrail_db_up %d\n", ct_pool_db_up(pool) ? 1 : 0);
    return ct_buf_take(&o, NULL);
}
