/* listen.h: one PostgreSQL connection that LISTENs on a channel and hands each notification's
 * payload to a callback, from its own thread. It reconnects by itself when the database goes
 * away, and says so (payload NULL) so listeners can catch up on what they missed. */
#ifndef CASETRAIL_LISTEN_H
#define CASETRAIL_LISTEN_H

#include <stdbool.h>

struct ct_listener;

/* Called from the listener's thread: payload is the notification's text, or NULL after a
 * (re)connection, when notifications may have been missed. */
typedef void (*ct_listen_fn)(void *arg, const char *payload);

/* Starts listening on channel (a plain identifier) of the database at database_url (NULL:
 * libpq defaults). Returns NULL when the thread cannot start. Stop with ct_listener_stop. */
struct ct_listener *ct_listener_start(const char *database_url, const char *channel,
                                      ct_listen_fn fn, void *arg);
/* Stops the thread (within about a quarter of a second), closes the connection, frees l. */
void ct_listener_stop(struct ct_listener *l);

/* The sending side: collects the tickets committed transactions changed (a ct_commit_fn for
 * ct_pool_on_commit) and NOTIFYs them on channel every 100 ms from its own thread, in one
 * transaction per round, outside the writers' commits; "resync" when more changed than it
 * could keep. A failed round is retried. */
struct ct_pool;
struct ct_notifier;
struct ct_notifier *ct_notifier_start(struct ct_pool *pool, const char *channel);
void ct_notifier_add(void *notifier, const long long *ids, int n, bool overflow);
/* Sends what is waiting, then stops the thread and frees nt (NULL is fine). */
void ct_notifier_stop(struct ct_notifier *nt);

#endif
