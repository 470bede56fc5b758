/* watchdog.h: a deadline on reading a request body. civetweb's mg_read waits for every byte
 * asked for and nothing can interrupt it, so a watchdog thread ends overdue reads from outside. */
#ifndef CASETRAIL_WATCHDOG_H
#define CASETRAIL_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

struct ct_watchdog;

/* One watched read. It lives on the reading thread's stack from arm to disarm; only the
 * watchdog (under its mutex) touches the members meanwhile. */
struct ct_watch {
    struct ct_watch *prev, *next;
    int family;                /* AF_INET or AF_INET6; 0 when the peer address did not parse */
    unsigned char addr[16];    /* the peer's address, network order (IPv4: the first 4 bytes) */
    int peer_port, local_port; /* the connection's ports, peer's and ours */
    int64_t deadline_ns;       /* CLOCK_MONOTONIC time the read must end by */
    int64_t next_try_ns;       /* when the watchdog next acts on it */
    int shut;                  /* 0 untouched, 1 read side shut, 2 both sides shut */
    bool missed;               /* its socket was not found once (logged once) */
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
 * Returns true when the deadline passed and the watchdog shut the socket. */
bool ct_watchdog_disarm(struct ct_watchdog *wd, struct ct_watch *w);

#endif
