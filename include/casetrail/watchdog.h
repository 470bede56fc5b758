/* watchdog.h: a deadline on reading a request body, and workers taken back from connections
 * that wait for a request head while others wait for a worker. civetweb's reads cannot be
 * interrupted, so a watchdog thread ends them from outside by shutting their sockets. */
#ifndef CASETRAIL_WATCHDOG_H
#define CASETRAIL_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

struct ct_watchdog;

/* Which socket a connection is: its two ends, as civetweb reports them. */
struct ct_peer {
    int family;                /* AF_INET or AF_INET6; 0 when the peer address did not parse */
    unsigned char addr[16];    /* the peer's address, network order (IPv4: the first 4 bytes) */
    int peer_port, local_port; /* the connection's ports, peer's and ours */
};

/* One watched read. It lives on the reading thread's stack from arm to disarm; only the
 * watchdog (under its mutex) touches the members meanwhile. */
struct ct_watch {
    struct ct_watch *prev, *next;
    struct ct_peer peer;
    int64_t deadline_ns;       /* CLOCK_MONOTONIC time the read must end by */
    int64_t next_try_ns;       /* when the watchdog next acts on it */
    int shut;                  /* 0 untouched, 1 read side shut, 2 both sides shut */
    bool missed;               /* its socket was not found once (logged once) */
    /* for reclaiming: a body arriving too slowly to keep a worker others wait for */
    int tid;                   /* the reading thread (Linux thread id) */
    int fd;                    /* its socket, once a look for waiting connections found it */
    int64_t seen_ns;           /* when that look was, */
    unsigned long long seen_bytes; /* and what the socket had received by then */
    bool reclaimed;            /* shut for a waiting connection, not for its deadline */
    bool skipped;              /* passed over in the current look (watchdog only) */
};

/* Fills in p from a peer address as civetweb prints it and the two ports. */
void ct_peer_set(struct ct_peer *p, const char *peer_addr, int peer_port, int local_port);

/* Reads a held connection's ends into *peer; false when they cannot be read yet. */
typedef bool (*ct_peer_fn)(const void *conn, struct ct_peer *peer);

/* One connection a worker holds, from civetweb's init_connection to its connection_close.
 * The caller allocates it; while registered only the watchdog (under its mutex) touches it. */
struct ct_conn_watch {
    struct ct_conn_watch *prev, *next;
    ct_peer_fn peer_fn;      /* how to learn its ends, */
    const void *conn;        /* from this (civetweb's connection) */
    struct ct_peer peer;     /* valid once known */
    bool known;
    int fd;                  /* its socket, once a reclaim pass found it; -1 before */
    int tid;                 /* the worker thread holding it (Linux thread id) */
    int64_t head_since_ns;   /* waiting for a request head since (CLOCK_MONOTONIC); 0 in one */
    int64_t escalate_ns;     /* after its read side was shut: when both sides are */
    int shut;                /* 0 untouched, 1 read side shut, 2 both sides shut */
    bool reclaimed;          /* its worker was taken back while it waited for a head */
    bool skipped;            /* passed over in the current look (watchdog only) */
};

/* Starts the watchdog thread. NULL when it cannot (out of memory or threads). */
struct ct_watchdog *ct_watchdog_start(void);
/* Stops and joins the thread and frees wd (NULL is fine). No read may still be armed. */
void ct_watchdog_stop(struct ct_watchdog *wd);

/* Watches the connection from peer_addr:peer_port (as civetweb prints it) to our local_port:
 * once timeout_ms have passed, the watchdog shuts the read side of its socket so a blocked
 * mg_read returns short; a second later, if the read is still armed, both sides. */
void ct_watchdog_arm(struct ct_watchdog *wd, struct ct_watch *w, const char *peer_addr,
                     int peer_port, int local_port, int timeout_ms);
/* Ends the watch (call it as soon as the read returns, before the connection can close).
 * Returns true when the watchdog shut the socket: for the deadline, or (w->reclaimed) for a
 * connection waiting for a worker. */
bool ct_watchdog_disarm(struct ct_watchdog *wd, struct ct_watch *w);

/* Turns reclaiming on: when all `workers` hold a connection and a connection accepted on
 * listen_port waits for one, the connections that have waited longest for a request head
 * (idle between requests, or trickling one in) get the read side of their socket shut, one
 * for each connection waiting, so their workers move on. Only a connection whose worker is
 * asleep waiting on the client, with nothing unread in its socket, for at least
 * CT_RECLAIM_MIN_AGE_MS (CT_RECLAIM_FRESH_MS while its client has sent no byte at all). */
#define CT_RECLAIM_MIN_AGE_MS 5
#define CT_RECLAIM_FRESH_MS 100
/* With no such head left, armed body reads are taken back too, longest watched first: one
 * whose body has arrived at under CT_RECLAIM_BODY_RATE bytes a second over at least the last
 * CT_RECLAIM_BODY_MIN_MS, with its worker asleep and nothing unread (its handler answers 503
 * server_busy). A webhook's body arrives in milliseconds; a trickled one would otherwise hold
 * its worker until CASETRAIL_BODY_TIMEOUT. */
#define CT_RECLAIM_BODY_MIN_MS 100
#define CT_RECLAIM_BODY_RATE 8192
void ct_watchdog_reclaim(struct ct_watchdog *wd, int workers, int listen_port);

/* A worker took connection conn (call it on that worker's thread); it now waits for a request
 * head. Its ends are learnt through peer_fn(conn) when the watchdog first needs them: from the
 * watchdog's thread, under its mutex, while c is registered. */
void ct_watchdog_conn_open(struct ct_watchdog *wd, struct ct_conn_watch *c, ct_peer_fn peer_fn,
                           const void *conn);
/* The connection's request head arrived (busy) or its request ended (waiting for a head).
 * Returns true when its worker was already reclaimed: answer 503 and close. */
bool ct_watchdog_conn_busy(struct ct_watchdog *wd, struct ct_conn_watch *c, bool busy);
/* Unregisters c (before civetweb closes its socket). Returns whether it was reclaimed. */
bool ct_watchdog_conn_close(struct ct_watchdog *wd, struct ct_conn_watch *c);

#endif
