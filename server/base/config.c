/* config.c: environment -> struct ct_config. Every bad value fails start with a message that
 * names its variable; secrets are copied but never echoed in messages. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Reads a secret: unset or empty is NULL (an empty secret would accept an empty HMAC key). */
static char *secret(const char *s)
{
    return (s == NULL || s[0] == '\0') ? NULL : strdup(s);
}

static int default_pool(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    /* a few connections per core: more only costs PostgreSQL (backends compete for the cores) */
    return (int)(cores * 2 < 4 ? 4 : (cores * 2 > 16 ? 16 : cores * 2));
}

ct_rc ct_config_load(struct ct_config *cfg, ct_getenv_fn get, void *arg, struct ct_err *err)
{
    const char *v;

    memset(cfg, 0, sizeof(*cfg));
    if (get == NULL)
        get = real_getenv;

    v = get("DATABASE_URL", arg);
    cfg->database_url = (v != NULL && v[0] != '\0') ? strdup(v) : NULL;

    v = get("CASETRAIL_LISTEN", arg);
    if (!ct_config_parse_listen(v ? v : "127.0.0.1:8080", cfg->listen_host,
                                sizeof(cfg->listen_host), &cfg->listen_port)) {
        ct_err_set(err, CT_E_INVALID, "bad_config",
                   "CASETRAIL_LISTEN must be HOST:PORT with a port from 0 to 65535");
        goto fail;
    }
    v = get("CASETRAIL_THREADS", arg);
    cfg->threads = 32;
    if (v != NULL && !parse_int(v, 2, 1024, &cfg->threads)) {
        ct_err_set(err, CT_E_INVALID, "bad_config", "CASETRAIL_THREADS must be an integer from 2 to 1024");
        goto fail;
    }
    v = get("CASETRAIL_DB_POOL", arg);
    cfg->db_pool = default_pool();
    if (v != NULL && !parse_int(v, 1, 256, &cfg->db_pool)) {
        ct_err_set(err, CT_E_INVALID, "bad_config", "CASETRAIL_DB_POOL must be an integer from 1 to 256");
        goto fail;
    }
    v = get("CASETRAIL_DB_PREPARE", arg);
    cfg->db_prepare = true;
    if (v != NULL && v[0] != '\0') {
        if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0) {
            ct_err_set(err, CT_E_INVALID, "bad_config", "CASETRAIL_DB_PREPARE must be 1 or 0");
            goto fail;
        }
        cfg->db_prepare = strcmp(v, "1") == 0;
    }
    v = get("CASETRAIL_WEB_ROOT", arg);
    cfg->web_root = strdup(v != NULL && v[0] != '\0' ? v : "web");
    v = get("CASETRAIL_MIGRATIONS_DIR", arg);
    cfg->migrations_dir = strdup(v != NULL && v[0] != '\0' ? v : "migrations");

    v = get("CASETRAIL_MAX_BODY", arg);
    cfg->max_body = 4u * 1024 * 1024;
    if (v != NULL && (!ct_config_parse_size(v, &cfg->max_body) || cfg->max_body < 1024 ||
                      cfg->max_body > 1024u * 1024 * 1024)) {
        ct_err_set(err, CT_E_INVALID, "bad_config",
                   "CASETRAIL_MAX_BODY must be a size from 1K to 1G (bytes, or with a K/M/G suffix)");
        goto fail;
    }

    cfg->app_secret = secret(get("WHATSAPP_APP_SECRET", arg));
    cfg->verify_token = secret(get("WHATSAPP_VERIFY_TOKEN", arg));
    cfg->access_token = secret(get("WHATSAPP_ACCESS_TOKEN", arg));

    v = get("WHATSAPP_GRAPH_URL", arg);
    if (v == NULL || v[0] == '\0')
        v = CT_DEFAULT_GRAPH_URL;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
        ct_err_set(err, CT_E_INVALID, "bad_config", "WHATSAPP_GRAPH_URL must start with http:// or https://");
        goto fail;
    }
    cfg->graph_url = strdup(v);
    for (size_t n = strlen(cfg->graph_url); n > 0 && cfg->graph_url[n - 1] == '/'; n--)
        cfg->graph_url[n - 1] = '\0';

    v = get("CASETRAIL_INSECURE_NO_SIGNATURE", arg);
    if (v != NULL && strcmp(v, "1") != 0 && strcmp(v, "0") != 0 && v[0] != '\0') {
        ct_err_set(err, CT_E_INVALID, "bad_config", "CASETRAIL_INSECURE_NO_SIGNATURE must be 1 or 0");
        goto fail;
    }
    cfg->insecure_no_signature = v != NULL && strcmp(v, "1") == 0;

    v = get("CASETRAIL_CURRENCY", arg);
    if (v == NULL || v[0] == '\0')
        v = "USD";
    if (strlen(v) != 3 || !isupper((unsigned char)v[0]) || !isupper((unsigned char)v[1]) ||
        !isupper((unsigned char)v[2])) {
        ct_err_set(err, CT_E_INVALID, "bad_config",
                   "CASETRAIL_CURRENCY must be an ISO 4217 code of three capital letters, e.g. USD");
        goto fail;
    }
    memcpy(cfg->currency, v, 4);

    v = get("CASETRAIL_LOG_LEVEL", arg);
    cfg->log_level = CT_LOG_INFO;
    if (v != NULL && v[0] != '\0' && !ct_log_parse_level(v, &cfg->log_level)) {
        ct_err_set(err, CT_E_INVALID, "bad_config", "CASETRAIL_LOG_LEVEL must be debug, info, warn or error");
        goto fail;
    }
    v = get("CASETRAIL_SIGNING_KEY", arg);
    cfg->signing_key = (v != NULL && v[0] != '\0') ? strdup(v) : NULL;
    v = get("CASETRAIL_VERIFY_KEY", arg);
    cfg->verify_key = (v != NULL && v[0] != '\0') ? strdup(v) : NULL;
    if (cfg->web_root == NULL || cfg->migrations_dir == NULL || cfg->graph_url == NULL) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory reading the configuration");
        goto fail;
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
    free_secret(cfg->app_secret);
    free_secret(cfg->verify_token);
    free_secret(cfg->access_token);
    memset(cfg, 0, sizeof(*cfg));
}
