/* live.c: the hub of live updates and GET /api/live. The listener thread appends each changed
 * ticket id to a ring and wakes the streams; each stream remembers how far it has read, so a
 * slow one never holds the others or the listener back, and one that falls a whole ring behind
 * is told to re-fetch instead of being sent a partial story. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/live.h"
#include "casetrail/server.h"

#define RING 4096

struct ct_live {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    unsigned long long seq;       /* number of changes ever recorded */
    long long ring[RING];         /* ring[s % RING]: ticket id of change s+1; 0 = resync */
};

struct ct_live *ct_live_new(void)
{
    struct ct_live *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->changed, &ca);
    pthread_condattr_destroy(&ca);
    return h;
}

void ct_live_free(struct ct_live *h)
{
    if (h == NULL)
        return;
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void ct_live_notify(void *hub, const char *payload)
{
    struct ct_live *h = hub;
    long long id = 0;
    if (payload != NULL && strcmp(payload, "resync") != 0) {
        char *end;
        errno = 0;
        id = strtoll(payload, &end, 10);
        if (errno != 0 || *end != '\0' || id <= 0)
            return; /* not one of ours */
    }
    pthread_mutex_lock(&h->mu);
    h->ring[h->seq % RING] = id;
    h->seq++;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->mu);
}

struct ct_live_cursor ct_live_now(struct ct_live *h)
{
    struct ct_live_cursor c;
    pthread_mutex_lock(&h->mu);
    c.seq = h->seq;
    pthread_mutex_unlock(&h->mu);
    return c;
}

int ct_live_wait(struct ct_live *h, struct ct_live_cursor *cur, int wait_ms, long long *ids,
                 int max, bool *resync)
{
    struct timespec until;
    int n = 0;

    *resync = false;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    while (h->seq == cur->seq &&
           pthread_cond_timedwait(&h->changed, &h->mu, &until) != ETIMEDOUT)
        ;
    if (h->seq - cur->seq > RING) {
        *resync = true;
        cur->seq = h->seq;
    }
    for (; cur->seq < h->seq && !*resync; cur->seq++) {
        long long id = h->ring[cur->seq % RING];
        bool seen = false;
        if (id == 0) {
            *resync = true;
            continue;
        }
        for (int i = 0; i < n && !seen; i++)
            seen = ids[i] == id;
        if (seen)
            continue;
        if (n == max) {
            *resync = true; /* more tickets changed than we may list: re-fetch instead */
            continue;
        }
        ids[n++] = id;
    }
    cur->seq = h->seq;
    pthread_mutex_unlock(&h->mu);
    return *resync ? 0 : n;
}

/* ---- GET /api/live ---- */

#define PING_S 5          /* a comment keeps proxies from closing an idle stream, and finds
                           * viewers that left (the second write to a closed socket fails) */
#define LIFETIME_S 300    /* then the browser reconnects, and authenticates again */
#define BATCH_MS 200      /* changes are sent at most five times a second */
#define MAX_IDS 64

static bool send_text(struct ct_req *req, const char *s)
{
    return mg_write(req->conn, s, strlen(s)) > 0;
}

void ct_api_live(struct ct_req *req)
{
    static const char head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
        "retry: 2000\n\n";
    struct ct_server *srv = req->srv;
    struct ct_live_cursor cur;
    long long ids[MAX_IDS];
    time_t start = time(NULL), last_sent = start;
    /* the stream's body ends when the connection does */
    mg_disable_connection_keep_alive(req->conn);

    /* each stream holds a worker thread for minutes: a bounded number at once */
    if (atomic_fetch_add(&srv->live_streams, 1) >= srv->cfg.live_max) {
        atomic_fetch_sub(&srv->live_streams, 1);
        ct_http_fail(req, CT_E_UNAVAILABLE, "live_busy",
                     "%d live streams are open; the viewer falls back to refreshing",
                     srv->cfg.live_max);
        return;
    }
    cur = ct_live_now(srv->live);
    req->status = 200;
    bool ok = send_text(req, head) && send_text(req, "event: hello\ndata: {}\n\n");
    while (ok && !atomic_load(&srv->draining) && time(NULL) - start < LIFETIME_S) {
        bool resync;
        int n = ct_live_wait(srv->live, &cur, 1000, ids, MAX_IDS, &resync);
        if (resync) {
            ok = send_text(req, "event: resync\ndata: {}\n\n");
            last_sent = time(NULL);
        }
        for (int i = 0; i < n && ok; i++) {
            char line[96];
            snprintf(line, sizeof(line), "event: change\ndata: {\"ticket_id\":%lld}\n\n", ids[i]);
            ok = send_text(req, line);
            last_sent = time(NULL);
        }
        if (ok && time(NULL) - last_sent >= PING_S) {
            ok = send_text(req, ": ping\n\n");
            last_sent = time(NULL);
        }
        if (n > 0 || resync)
            nanosleep(&(struct timespec){0, BATCH_MS * 1000000L}, NULL);
    }
    atomic_fetch_sub(&srv->live_streams, 1);
}
