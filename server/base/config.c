/* config.c: environment -> struct ct_config. Every bad value fails start with a message that
 * names its variable; secrets are copied but never echoed in messages. */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "casetrail/config.h"

static const char *real_getenv(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

bool ct_config_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long p;
    size_t n;

    if (colon == NULL || colon == s)
        return false;
    n = (size_t)(colon - s);
    if (n >= hostlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
        return false;
    memcpy(host, s, n);
    host[n] = '\0';
    *port = (int)p;
    return true;
}

bool ct_config_parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    unsigned long long v;
    unsigned long long mult = 1;

    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return false;
    if (*end == 'K' || *end == 'k')
        mult = 1024ULL;
    else if (*end == 'M' || *end == 'm')
        mult = 1024ULL * 1024;
    else if (*end == 'G' || *end == 'g')
        mult = 1024ULL * 1024 * 1024;
    else if (*end != '\0')
        return false;
    if (mult != 1 && end[1] != '\0' && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
        return false;
    if (v > SIZE_MAX / mult)
        return false;
    *out = (size_t)(v * mult);
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static int default_pool(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    /* four per core, the best measured on 2 cores (bench/ab --loadgen, one ingest lane per
     * connection: 8 took 1.09x the webhooks of 4 and 1.18x those of 16, where backends only
     * competed for the cores); docs/PERFORMANCE.md */
    return (int)(cores * 4 < 4 ? 4 : (cores * 4 > 16 ? 16 : cores * 4));
}

/* ---- one parser per kind of value; each reads v (never NULL) into the field at out ---- */

struct var;
typedef bool (*parse_fn)(const struct var *var, const char *v, void *out);

/* One environment variable: its field, parser, default (used when unset or empty), range for
 * numbers, and the message that names it when its value is bad. */
struct var {
    const char *name;
    size_t offset;
    parse_fn parse;
    const char *fallback; /* NULL: the field stays zero/NULL when unset */
    long long lo, hi;
    const char *message;
};

static bool p_string(const struct var *var, const char *v, void *out)
{
    (void)var;
    *(char **)out = strdup(v);
    return *(char **)out != NULL;
}

/* Secrets are strings too; an empty one stays NULL (it would accept an empty HMAC key). */
static bool p_secret(const struct var *var, const char *v, void *out)
{
    return p_string(var, v, out);
}

static bool p_int(const struct var *var, const char *v, void *out)
{
    return parse_int(v, (int)var->lo, (int)var->hi, (int *)out);
}

static bool p_flag(const struct var *var, const char *v, void *out)
{
    (void)var;
    if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0)
        return false;
    *(bool *)out = strcmp(v, "1") == 0;
    return true;
}

static bool p_size(const struct var *var, const char *v, void *out)
{
    size_t n;
    if (!ct_config_parse_size(v, &n) || n < (size_t)var->lo || n > (size_t)var->hi)
        return false;
    *(size_t *)out = n;
    return true;
}

static bool p_listen(const struct var *var, const char *v, void *out)
{
    struct ct_config *cfg = (struct ct_config *)((char *)out - var->offset);
    return ct_config_parse_listen(v, cfg->listen_host, sizeof(cfg->listen_host),
                                  &cfg->listen_port);
}

static bool p_url(const struct var *var, const char *v, void *out)
{
    /* plain http would carry the access token in clear: only to this machine (tests, a proxy) */
    bool loopback = strncmp(v, "http://127.0.0.1", 16) == 0 ||
                    strncmp(v, "http://localhost", 16) == 0;
    if (strncmp(v, "https://", 8) != 0 && !loopback)
        return false;
    if (!p_string(var, v, out))
        return false;
    char *url = *(char **)out;
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    return true;
}

static bool p_currency(const struct var *var, const char *v, void *out)
{
    (void)var;
    if (strlen(v) != 3 || !isupper((unsigned char)v[0]) || !isupper((unsigned char)v[1]) ||
        !isupper((unsigned char)v[2]))
        return false;
    memcpy(out, v, 4);
    return true;
}

static bool p_level(const struct var *var, const char *v, void *out)
{
    (void)var;
    return ct_log_parse_level(v, (enum ct_log_level *)out);
}

/* Where staff reach casetrail (the reverse proxy's address): https makes cookies Secure. */
static bool p_public_url(const struct var *var, const char *v, void *out)
{
    struct ct_config *cfg = (struct ct_config *)((char *)out - var->offset);
    if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
        return false;
    for (const char *c = v; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return false;
    }
    if (!p_string(var, v, out))
        return false;
    cfg->secure_cookies = strncmp(v, "https://", 8) == 0;
    return true;
}

/* An IANA zone name such as Asia/Karachi: letters, digits and / _ + - only, no "..", and
 * (where the zone files are installed) one that exists. PostgreSQL does the arithmetic. */
static bool p_timezone(const struct var *var, const char *v, void *out)
{
    char path[128];
    struct stat st;
    size_t n = strlen(v);
    (void)var;
    if (n == 0 || n >= 64 || strstr(v, "..") != NULL || v[0] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '+' && c != '-')
            return false;
    }
    if (strcmp(v, "UTC") != 0 && stat("/usr/share/zoneinfo", &st) == 0) {
        snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", v);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return false;
    }
    memcpy(out, v, n + 1);
    return true;
}

#define AT(f) offsetof(struct ct_config, f)
#define GIB (1024LL * 1024 * 1024)
static const struct var vars[] = {
    {"DATABASE_URL", AT(database_url), p_string, NULL, 0, 0, NULL},
    {"CASETRAIL_LISTEN", AT(listen_host), p_listen, "127.0.0.1:8080", 0, 0,
     "CASETRAIL_LISTEN must be HOST:PORT with a port from 0 to 65535"},
    /* each worker is held by one connection while its request arrives: enough of them that
     * a few dozen slow clients leave room for everyone else (stacks are small, ~100 KiB) */
    {"CASETRAIL_THREADS", AT(threads), p_int, "128", 2, 1024,
     "CASETRAIL_THREADS must be an integer from 2 to 1024"},
    {"CASETRAIL_HEADER_TIMEOUT", AT(header_timeout_ms), p_int, "5000", 500, 120000,
     "CASETRAIL_HEADER_TIMEOUT must be milliseconds from 500 to 120000"},
    {"CASETRAIL_BODY_TIMEOUT", AT(body_timeout_ms), p_int, "10000", 500, 600000,
     "CASETRAIL_BODY_TIMEOUT must be milliseconds from 500 to 600000"},
    {"CASETRAIL_KEEPALIVE_TIMEOUT", AT(keepalive_timeout_ms), p_int, "5000", 100, 120000,
     "CASETRAIL_KEEPALIVE_TIMEOUT must be milliseconds from 100 to 120000"},
    {"CASETRAIL_DB_POOL", AT(db_pool), p_int, NULL, 1, 256,
     "CASETRAIL_DB_POOL must be an integer from 1 to 256"},
    {"CASETRAIL_INGEST_LANES", AT(ingest_lanes), p_int, NULL, 0, 64,
     "CASETRAIL_INGEST_LANES must be an integer from 0 (group commit off) to 64"},
    {"CASETRAIL_INGEST_GROUP", AT(ingest_group), p_int, "64", 1, 1024,
     "CASETRAIL_INGEST_GROUP must be an integer from 1 to 1024"},
    {"CASETRAIL_INGEST_BATCHED", AT(ingest_batched), p_flag, "1", 0, 0,
     "CASETRAIL_INGEST_BATCHED must be 1 or 0"},
    {"CASETRAIL_DB_PREPARE", AT(db_prepare), p_flag, "1", 0, 0,
     "CASETRAIL_DB_PREPARE must be 1 or 0"},
    {"CASETRAIL_WEB_ROOT", AT(web_root), p_string, "web", 0, 0, NULL},
    {"CASETRAIL_MIGRATIONS_DIR", AT(migrations_dir), p_string, "migrations", 0, 0, NULL},
    {"CASETRAIL_MAX_BODY", AT(max_body), p_size, "4M", 1024, GIB,
     "CASETRAIL_MAX_BODY must be a size from 1K to 1G (bytes, or with a K/M/G suffix)"},
    {"WHATSAPP_APP_SECRET", AT(app_secret), p_secret, NULL, 0, 0, NULL},
    {"WHATSAPP_VERIFY_TOKEN", AT(verify_token), p_secret, NULL, 0, 0, NULL},
    {"WHATSAPP_ACCESS_TOKEN", AT(access_token), p_secret, NULL, 0, 0, NULL},
    {"WHATSAPP_GRAPH_URL", AT(graph_url), p_url, CT_DEFAULT_GRAPH_URL, 0, 0,
     "WHATSAPP_GRAPH_URL must start with https:// (http:// only to 127.0.0.1 or localhost)"},
    {"CASETRAIL_INSECURE_NO_SIGNATURE", AT(insecure_no_signature), p_flag, "0", 0, 0,
     "CASETRAIL_INSECURE_NO_SIGNATURE must be 1 or 0"},
    {"CASETRAIL_CURRENCY", AT(currency), p_currency, "USD", 0, 0,
     "CASETRAIL_CURRENCY must be an ISO 4217 code of three capital letters, e.g. USD"},
    {"CASETRAIL_LOG_LEVEL", AT(log_level), p_level, "info", 0, 0,
     "CASETRAIL_LOG_LEVEL must be debug, info, warn or error"},
    {"CASETRAIL_SIGNING_KEY", AT(signing_key), p_string, NULL, 0, 0, NULL},
    {"CASETRAIL_VERIFY_KEY", AT(verify_key), p_string, NULL, 0, 0, NULL},
    {"CASETRAIL_DB_TIMEOUT", AT(db_timeout), p_int, "5000", 0, 600000,
     "CASETRAIL_DB_TIMEOUT must be milliseconds from 0 (no bound) to 600000"},
    {"CASETRAIL_SENDERS", AT(senders), p_int, "2", 0, 64,
     "CASETRAIL_SENDERS must be an integer from 0 to 64"},
    {"CASETRAIL_MARK_READ", AT(mark_read), p_flag, "0", 0, 0,
     "CASETRAIL_MARK_READ must be 1 or 0"},
    {"CASETRAIL_SEND_ATTEMPTS", AT(send_attempts), p_int, "8", 1, 100,
     "CASETRAIL_SEND_ATTEMPTS must be an integer from 1 to 100"},
    /* Meta's pair rate limit (131056): about one message every 6 s to one recipient */
    {"CASETRAIL_PACE_MS", AT(pace_ms), p_int, "6000", 0, 600000,
     "CASETRAIL_PACE_MS must be milliseconds from 0 to 600000"},
    {"CASETRAIL_SEND_RATE", AT(send_rate), p_int, "20", 0, 1000,
     "CASETRAIL_SEND_RATE must be messages per second from 0 (no cap) to 1000"},
    {"CASETRAIL_SEND_BACKOFF_MS", AT(send_backoff_ms), p_int, "1000", 10, 600000,
     "CASETRAIL_SEND_BACKOFF_MS must be milliseconds from 10 to 600000"},
    {"CASETRAIL_GRAPH_TIMEOUT", AT(graph_timeout_ms), p_int, "15000", 100, 600000,
     "CASETRAIL_GRAPH_TIMEOUT must be milliseconds from 100 to 600000"},
    {"CASETRAIL_MEDIA_DIR", AT(media_dir), p_string, ".data/media", 0, 0, NULL},
    {"CASETRAIL_MEDIA_WORKERS", AT(media_workers), p_int, "1", 0, 16,
     "CASETRAIL_MEDIA_WORKERS must be an integer from 0 to 16"},
    /* WhatsApp's own ceiling is 100 MB (documents); larger is refused before it is read */
    {"CASETRAIL_MEDIA_MAX", AT(media_max), p_size, "100M", 1024, GIB,
     "CASETRAIL_MEDIA_MAX must be a size from 1K to 1G (bytes, or with a K/M/G suffix)"},
    {"CASETRAIL_PUBLIC_URL", AT(public_url), p_public_url, NULL, 0, 0,
     "CASETRAIL_PUBLIC_URL must be an http:// or https:// URL without spaces"},
    {"CASETRAIL_TIMEZONE", AT(timezone), p_timezone, "UTC", 0, 0,
     "CASETRAIL_TIMEZONE must be an IANA time zone name such as Asia/Karachi or UTC"},
    {"CASETRAIL_SESSION_IDLE", AT(session_idle_min), p_int, "120", 1, 10080,
     "CASETRAIL_SESSION_IDLE must be minutes from 1 to 10080"},
    {"CASETRAIL_SESSION_MAX", AT(session_max_h), p_int, "12", 1, 720,
     "CASETRAIL_SESSION_MAX must be hours from 1 to 720"},
    {"CASETRAIL_LIVE_MAX", AT(live_max), p_int, "32", 0, 1000,
     "CASETRAIL_LIVE_MAX must be an integer from 0 to 1000"},
    {"CASETRAIL_VERIFY_CONCURRENCY", AT(verify_concurrency), p_int, "2", 1, 64,
     "CASETRAIL_VERIFY_CONCURRENCY must be an integer from 1 to 64"},
};
#undef AT

const char *const *ct_config_names(size_t *n)
{
    static const char *names[sizeof(vars) / sizeof(vars[0])];
    *n = sizeof(vars) / sizeof(vars[0]);
    for (size_t i = 0; i < *n; i++)
        names[i] = vars[i].name;
    return names;
}

ct_rc ct_config_load(struct ct_config *cfg, ct_getenv_fn get, void *arg, struct ct_err *err)
{
    memset(cfg, 0, sizeof(*cfg));
    if (get == NULL)
        get = real_getenv;
    cfg->db_pool = default_pool();
    cfg->ingest_lanes = -1; /* unset: half the pool, worked out below */
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const struct var *var = &vars[i];
        const char *v = get(var->name, arg);
        bool given = v != NULL && v[0] != '\0'; /* empty counts as unset */
        if (!given)
            v = var->fallback;
        if (v == NULL)
            continue;
        if (!var->parse(var, v, (char *)cfg + var->offset)) {
            if (var->message == NULL || !given)
                ct_err_set(err, CT_E_INTERNAL, "internal",
                           "out of memory reading the configuration");
            else
                ct_err_set(err, CT_E_INVALID, "bad_config", "%s", var->message);
            goto fail;
        }
    }
    /* one lane per core and one more (at least 2, at most the pool). Lanes share one queue: a
     * free lane takes everything waiting, so fewer lanes make bigger groups under load, which
     * the set-based writes reward, while one more than the cores keeps a lane free to commit at
     * low load. bench/ab --loadgen on 2 cores, 3 lanes against 8: 1.23x the webhooks at 32
     * senders (p99 77 -> 49 ms), 1.11x at 8; docs/PERFORMANCE.md */
    if (cfg->ingest_lanes < 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->ingest_lanes = cores < 1 ? 2 : (cores >= 63 ? 64 : (int)cores + 1);
        if (cfg->ingest_lanes > cfg->db_pool)
            cfg->ingest_lanes = cfg->db_pool;
    }
    return CT_OK;
fail:
    ct_config_free(cfg);
    return err != NULL ? err->rc : CT_E_INVALID;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        /* wipe secrets before freeing so they do not linger in freed heap memory */
        volatile char *p = s;
        while (*p != '\0')
            *p++ = '\0';
        free(s);
    }
}

void ct_config_free(struct ct_config *cfg)
{
    free(cfg->database_url);
    free(cfg->web_root);
    free(cfg->migrations_dir);
    free(cfg->graph_url);
    free(cfg->signing_key);
    free(cfg->verify_key);
    free(cfg->media_dir);
    free(cfg->public_url);
    free_secret(cfg->app_secret);
    free_secret(cfg->verify_token);
    free_secret(cfg->access_token);
    memset(cfg, 0, sizeof(*cfg));
}
