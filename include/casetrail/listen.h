/* listen.h: one PostgreSQL connection that LISTENs on a channel and hands each notification's
 * payload to a callback, from its own thread. It reconnects by itself when the database goes
 * away, and says so (payload NULL) so listeners can catch up on what they missed. */
#ifndef CASETRAIL_LISTEN_H
#define CASETRAIL_LISTEN_H

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

#endif
