/* config.h: the process configuration, read once from the environment at start.
 * Field names mirror their environment variables (cfg->max_body is CASETRAIL_MAX_BODY). */
#ifndef CASETRAIL_CONFIG_H
#define CASETRAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "casetrail/err.h"
#include "casetrail/log.h"

#define CT_DEFAULT_GRAPH_URL "https://graph.facebook.com/v21.0"

struct ct_config {
    char *database_url;      /* DATABASE_URL; NULL means libpq defaults (PG* variables) */
    char listen_host[64];    /* CASETRAIL_LISTEN host part */
    int listen_port;         /* CASETRAIL_LISTEN port part; 0 picks a free port */
    int threads;             /* CASETRAIL_THREADS */
    int header_timeout_ms;   /* CASETRAIL_HEADER_TIMEOUT: whole request head */
    int body_timeout_ms;     /* CASETRAIL_BODY_TIMEOUT: whole request body */
    int keepalive_timeout_ms; /* CASETRAIL_KEEPALIVE_TIMEOUT: idle wait for a next request */
    int db_pool;             /* CASETRAIL_DB_POOL */
    int ingest_lanes;        /* CASETRAIL_INGEST_LANES: group-commit lanes, 0 off */
    int ingest_group;        /* CASETRAIL_INGEST_GROUP: most webhooks in one transaction */
    bool ingest_batched;     /* CASETRAIL_INGEST_BATCHED: a group's rows written set-based */
    bool db_prepare;         /* CASETRAIL_DB_PREPARE: prepare statements once per connection */
    char *web_root;          /* CASETRAIL_WEB_ROOT */
    char *migrations_dir;    /* CASETRAIL_MIGRATIONS_DIR */
    size_t max_body;         /* CASETRAIL_MAX_BODY, bytes */
    char *app_secret;        /* WHATSAPP_APP_SECRET; secret, never logged */
    char *verify_token;      /* WHATSAPP_VERIFY_TOKEN; secret, never logged */
    char *access_token;      /* WHATSAPP_ACCESS_TOKEN; secret, never logged */
    char *graph_url;         /* WHATSAPP_GRAPH_URL, no trailing slash */
    bool insecure_no_signature; /* CASETRAIL_INSECURE_NO_SIGNATURE=1 */
    char currency[4];        /* CASETRAIL_CURRENCY, ISO 4217 */
    enum ct_log_level log_level; /* CASETRAIL_LOG_LEVEL */
    char *signing_key;       /* CASETRAIL_SIGNING_KEY: Ed25519 private key PEM file, or NULL */
    char *verify_key;        /* CASETRAIL_VERIFY_KEY: Ed25519 public key PEM file, or NULL */
    int verify_concurrency;  /* CASETRAIL_VERIFY_CONCURRENCY: API verifies running at once */
    int db_timeout;          /* CASETRAIL_DB_TIMEOUT: ms a request's statement may take; 0 none */
    bool mark_read;          /* CASETRAIL_MARK_READ: opening a ticket marks its inbound read */
    int senders;             /* CASETRAIL_SENDERS: threads delivering replies; 0 none */
    int send_attempts;       /* CASETRAIL_SEND_ATTEMPTS: tries before a retryable error is final */
    int pace_ms;             /* CASETRAIL_PACE_MS: between two messages to one recipient */
    int send_rate;           /* CASETRAIL_SEND_RATE: messages/s per business number; 0 no cap */
    int send_backoff_ms;     /* CASETRAIL_SEND_BACKOFF_MS: first retry delay */
    int graph_timeout_ms;    /* CASETRAIL_GRAPH_TIMEOUT: ms for one Graph exchange */
    char *media_dir;         /* CASETRAIL_MEDIA_DIR: where customers' media is kept by hash */
    int media_workers;       /* CASETRAIL_MEDIA_WORKERS: threads fetching media; 0 none */
    size_t media_max;        /* CASETRAIL_MEDIA_MAX: largest media kept, bytes */
    char *public_url;        /* CASETRAIL_PUBLIC_URL: where staff reach casetrail, or NULL */
    bool secure_cookies;     /* derived: CASETRAIL_PUBLIC_URL is https */
    char timezone[64];       /* CASETRAIL_TIMEZONE: IANA name for people's days and times */
    int session_idle_min;    /* CASETRAIL_SESSION_IDLE: minutes a session lives unused */
    int session_max_h;       /* CASETRAIL_SESSION_MAX: hours a session lives at most */
    int live_max;            /* CASETRAIL_LIVE_MAX: GET /api/live streams open at once */
};

/* Looks a variable up; NULL when unset. Tests pass their own table instead of getenv. */
typedef const char *(*ct_getenv_fn)(const char *name, void *arg);

/* Fills cfg from the environment seen through get (getenv when get is NULL).
 * On a bad value returns CT_E_INVALID with a message naming the variable; cfg is then freed.
 * On success the caller releases cfg with ct_config_free(). */
ct_rc ct_config_load(struct ct_config *cfg, ct_getenv_fn get, void *arg, struct ct_err *err);
void ct_config_free(struct ct_config *cfg);

/* The names of every variable ct_config_load reads, in table order (for docs and tests). */
const char *const *ct_config_names(size_t *n);

/* Parses "HOST:PORT" (HOST may be an IPv4 address or "localhost"). */
bool ct_config_parse_listen(const char *s, char *host, size_t hostlen, int *port);
/* Parses a byte size: digits with an optional K, M or G suffix (powers of 1024). */
bool ct_config_parse_size(const char *s, size_t *out);

#endif
