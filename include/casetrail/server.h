/* server.h: struct ct_server, the one shared context of a running casetrail process. Everything
 * a request handler may touch hangs off it; there is no other mutable global state. */
#ifndef CASETRAIL_SERVER_H
#define CASETRAIL_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "casetrail/config.h"
#include "casetrail/err.h"

struct mg_context;
struct ct_pool;
struct ct_metrics;
struct ct_sender;
struct ct_media_worker;
struct ct_watchdog;
struct ct_live;
struct ct_listener;
struct ct_notifier;

struct ct_server {
    struct ct_config cfg;       /* owned; read-only after start */
    struct ct_pool *pool;       /* owned; thread-safe */
    struct ct_metrics *metrics; /* owned; thread-safe */
    struct mg_context *mg;      /* owned; civetweb worker threads */
    struct ct_sender *sender;   /* owned; reply delivery threads, NULL without a Graph token */
    struct ct_media_worker *media; /* owned; fetches customers' media, NULL without a token */
    struct ct_watchdog *watchdog; /* owned; ends request bodies that arrive too slowly */
    struct ct_live *live;       /* owned; recent ticket changes for GET /api/live */
    struct ct_listener *listener; /* owned; feeds live from the database's NOTIFY */
    struct ct_notifier *notifier; /* owned; NOTIFYs the tickets this instance's commits changed */
    struct ct_ingester *ingester; /* owned; group-commit lanes, NULL when CASETRAIL_INGEST_LANES=0 */
    int schema_latest;          /* highest migration shipped with this binary's migrations dir */
    int port;                   /* the port actually bound (CASETRAIL_LISTEN may say 0) */
    atomic_int inflight;        /* requests being handled now */
    atomic_bool draining;       /* set on SIGTERM/SIGINT: new requests get 503 */
    atomic_int verifying;       /* GET /api/tickets/{id}/verify running now (bounded) */
    atomic_int live_streams;    /* GET /api/live streams open now (bounded) */
    atomic_int exporting;       /* CSV exports streaming now (bounded: each holds a connection) */
    atomic_int signing_in;      /* password checks running now (scrypt: 32 MiB each, bounded) */
    atomic_int open_conns;      /* connections a worker holds, request head read or not */
};

/* Runs `casetrail serve`: migrates, starts civetweb, waits for SIGTERM/SIGINT, drains in-flight
 * requests, closes connections. Takes ownership of cfg. Returns the process exit code. */
int ct_server_run(struct ct_config *cfg);

#endif
