/* test_config.c: environment parsing: defaults, every bad value names its variable. */
#include <stdlib.h>
#include <unistd.h>

#include "casetrail/config.h"
#include "t.h"

struct kv {
    const char *k, *v;
};

static const char *lookup(const char *name, void *arg)
{
    for (const struct kv *p = arg; p->k != NULL; p++) {
        if (strcmp(p->k, name) == 0)
            return p->v;
    }
    return NULL;
}

static void expect_bad(const char *var, const char *value)
{
    struct kv env[] = {{var, value}, {NULL, NULL}};
    struct ct_config cfg;
    struct ct_err err;
    ct_rc rc = ct_config_load(&cfg, lookup, env, &err);
    CHECK(rc == CT_E_INVALID);
    if (rc == CT_E_INVALID && strstr(err.message, var) == NULL) {
        fprintf(stderr, "message for %s does not name it: %s\n", var, err.message);
        t_failures++;
    }
    if (rc == CT_OK)
        ct_config_free(&cfg);
}

/* Every variable the table reads is documented in the README's configuration table (run from
 * the repository root, as ctest does). */
static void readme_lists_every_variable(void)
{
    FILE *f = fopen("README.md", "r");
    char *text = NULL;
    size_t n = 0, cap = 0, got;
    char chunk[4096];
    CHECK(f != NULL);
    if (f == NULL)
        return;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (n + got + 1 > cap) {
            cap = (n + got + 1) * 2;
            text = realloc(text, cap);
        }
        memcpy(text + n, chunk, got);
        n += got;
    }
    fclose(f);
    text[n] = '\0';
    size_t count;
    const char *const *names = ct_config_names(&count);
    CHECK(count >= 17);
    for (size_t i = 0; i < count; i++) {
        char cell[80];
        snprintf(cell, sizeof(cell), "| `%s`", names[i]);
        if (strstr(text, cell) == NULL) {
            fprintf(stderr, "README.md has no table row for %s\n", names[i]);
            t_failures++;
        }
    }
    free(text);
}

int main(void)
{
    struct kv none[] = {{NULL, NULL}};
    struct ct_config cfg;
    struct ct_err err;

    CHECK(ct_config_load(&cfg, lookup, none, &err) == CT_OK);
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK(cfg.listen_port == 8080);
    CHECK(cfg.max_body == 4u * 1024 * 1024);
    CHECK(cfg.database_url == NULL);
    CHECK(cfg.app_secret == NULL);
    CHECK_STR(cfg.web_root, "web");
    CHECK_STR(cfg.migrations_dir, "migrations");
    CHECK_STR(cfg.graph_url, CT_DEFAULT_GRAPH_URL);
    CHECK_STR(cfg.currency, "USD");
    CHECK(cfg.db_pool >= 1 && cfg.db_pool <= 16);
    CHECK(!cfg.insecure_no_signature);
    CHECK(cfg.db_prepare);
    CHECK(cfg.threads == 128);
    CHECK(cfg.header_timeout_ms == 5000);
    CHECK(cfg.body_timeout_ms == 10000);
    CHECK(cfg.keepalive_timeout_ms == 5000);
    CHECK(cfg.ingest_batched);
    /* lanes: one per core and one more, at least 2, never more than the pool */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int lanes = cores < 1 ? 2 : (int)cores + 1;
    CHECK(cfg.ingest_lanes == (lanes < cfg.db_pool ? lanes : cfg.db_pool));
    ct_config_free(&cfg);

    struct kv good[] = {{"CASETRAIL_LISTEN", "0.0.0.0:0"},
                        {"CASETRAIL_MAX_BODY", "3M"},
                        {"WHATSAPP_APP_SECRET", "s3cret"},
                        {"WHATSAPP_GRAPH_URL", "http://127.0.0.1:9/v21.0/"},
                        {"CASETRAIL_DB_POOL", "7"},
                        {"CASETRAIL_INGEST_BATCHED", "0"},
                        {"CASETRAIL_INSECURE_NO_SIGNATURE", "1"},
                        {"CASETRAIL_CURRENCY", "PKR"},
                        {"CASETRAIL_HEADER_TIMEOUT", "500"},
                        {"CASETRAIL_BODY_TIMEOUT", "600000"},
                        {NULL, NULL}};
    CHECK(ct_config_load(&cfg, lookup, good, &err) == CT_OK);
    CHECK(cfg.listen_port == 0);
    CHECK(cfg.max_body == 3u * 1024 * 1024);
    CHECK_STR(cfg.app_secret, "s3cret");
    CHECK_STR(cfg.graph_url, "http://127.0.0.1:9/v21.0");
    CHECK(cfg.db_pool == 7);
    CHECK(!cfg.ingest_batched);
    CHECK(cfg.ingest_lanes >= 2 && cfg.ingest_lanes <= 7);
    CHECK(cfg.insecure_no_signature);
    CHECK_STR(cfg.currency, "PKR");
    CHECK(cfg.header_timeout_ms == 500);
    CHECK(cfg.body_timeout_ms == 600000);
    ct_config_free(&cfg);

    expect_bad("CASETRAIL_LISTEN", "8080");
    expect_bad("CASETRAIL_LISTEN", "127.0.0.1:99999");
    expect_bad("CASETRAIL_LISTEN", "127.0.0.1:");
    expect_bad("CASETRAIL_THREADS", "lots");
    expect_bad("CASETRAIL_THREADS", "0");
    expect_bad("CASETRAIL_DB_POOL", "-1");
    expect_bad("CASETRAIL_MAX_BODY", "12X");
    expect_bad("CASETRAIL_MAX_BODY", "10");
    expect_bad("WHATSAPP_GRAPH_URL", "ftp://example");
    expect_bad("CASETRAIL_INSECURE_NO_SIGNATURE", "yes");
    expect_bad("CASETRAIL_CURRENCY", "usd");
    expect_bad("CASETRAIL_LOG_LEVEL", "loud");
    expect_bad("CASETRAIL_DB_PREPARE", "yes");
    expect_bad("CASETRAIL_INGEST_BATCHED", "on");
    expect_bad("CASETRAIL_HEADER_TIMEOUT", "499");
    expect_bad("CASETRAIL_HEADER_TIMEOUT", "5s");
    expect_bad("CASETRAIL_BODY_TIMEOUT", "600001");
    expect_bad("CASETRAIL_KEEPALIVE_TIMEOUT", "-1");

    size_t sz;
    CHECK(ct_config_parse_size("4MiB", &sz) && sz == 4u * 1024 * 1024);
    CHECK(ct_config_parse_size("512k", &sz) && sz == 512u * 1024);
    CHECK(!ct_config_parse_size("", &sz));
    CHECK(!ct_config_parse_size("-1", &sz));
    readme_lists_every_variable();
    T_DONE();
}
