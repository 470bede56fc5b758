/* live.h: the viewer's live updates. A hub fed by the database's NOTIFY (listen.h) keeps the
 * recent ticket ids that changed; each open GET /api/live stream (Server-Sent Events) sends
 * the ids it has not sent yet. Ids only: the viewer fetches what it may see through the API. */
#ifndef CASETRAIL_LIVE_H
#define CASETRAIL_LIVE_H

#include <stdbool.h>

struct ct_live;

/* Returns a hub, or NULL on OOM. Thread-safe; free with ct_live_free once no stream runs. */
struct ct_live *ct_live_new(void);
void ct_live_free(struct ct_live *h);

/* A ct_listen_fn: payload is a ticket id; NULL means "anything may have changed". */
void ct_live_notify(void *hub, const char *payload);

/* What a stream has sent so far. */
struct ct_live_cursor {
    unsigned long long seq;
};

/* The position of the newest change now (a new stream starts there). */
struct ct_live_cursor ct_live_now(struct ct_live *h);

/* Waits up to wait_ms for changes after *cur; fills ids (deduplicated, at most max) and
 * advances *cur. Returns how many ids were filled; *resync is set when the stream fell too far
 * behind (or the listener reconnected) and should tell its viewer to re-fetch everything. */
int ct_live_wait(struct ct_live *h, struct ct_live_cursor *cur, int wait_ms, long long *ids,
                 int max, bool *resync);

#endif
