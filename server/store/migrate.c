/* migrate.c: applies migrations/NNNN_name.sql in order, each in its own transaction, recorded in
 * schema_migrations. An advisory lock makes concurrent starts of several instances safe. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "casetrail/audit.h"
#include "casetrail/log.h"
#include "store_internal.h"

/* Arbitrary constant that names casetrail's migration lock among advisory locks. */
#define MIGRATION_LOCK_KEY "7420250001"

struct mig {
    int version;
    char name[256];
};

static int parse_version(const char *name)
{
    size_t n = strlen(name);
    if (n < 10 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
        return -1;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)name[i]))
            return -1;
    }
    return atoi(name);
}

static int cmp_mig(const void *a, const void *b)
{
    return ((const struct mig *)a)->version - ((const struct mig *)b)->version;
}

/* Lists migration files sorted by version; *out is malloc'd (caller frees). -1 on error. */
static int list_migrations(const char *dir, struct mig **out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct mig *v = NULL;
    int n = 0, cap = 0;

    *out = NULL;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        int ver = parse_version(de->d_name);
        if (ver < 0 || strlen(de->d_name) >= sizeof(v->name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct mig *nv = realloc(v, (size_t)cap * sizeof(*v));
            if (nv == NULL) {
                free(v);
                closedir(d);
                return -1;
            }
            v = nv;
        }
        v[n].version = ver;
        snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
        n++;
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof(*v), cmp_mig);
    *out = v;
    return n;
}

int ct_migrations_latest(const char *dir)
{
    struct mig *v = NULL;
    int n = list_migrations(dir, &v);
    int latest = n > 0 ? v[n - 1].version : -1;
    free(v);
    return latest;
}

/* Reads a whole file; returns malloc'd NUL-terminated text or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)len + 1);
    if (buf == NULL)
        goto out;
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    return buf;
}

static ct_rc exec_ok(PGconn *c, const char *sql, struct ct_err *err, const char *what)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    ct_rc rc = CT_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[240];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        msg[strcspn(msg, "\n")] = '\0';
        rc = ct_err_set(err, PQstatus(c) == CONNECTION_OK ? CT_E_INTERNAL : CT_E_UNAVAILABLE,
                        "migration_failed", "could not %s: %s", what, msg);
    }
    PQclear(res);
    return rc;
}

static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    ct_hex_encode(md, 32, out);
}

/* Applies one file inside its own transaction, or checks an applied one is unchanged. */
static ct_rc apply_one(PGconn *c, const char *dir, const struct mig *m, int *applied,
                       struct ct_err *err)
{
    char path[1024], ver[16], sum[65];
    char *sql = NULL;
    PGresult *res = NULL;
    ct_rc rc = CT_OK;

    snprintf(path, sizeof(path), "%s/%s", dir, m->name);
    snprintf(ver, sizeof(ver), "%d", m->version);
    sql = read_file(path);
    if (sql == NULL) {
        rc = ct_err_set(err, CT_E_INTERNAL, "migration_failed", "could not read %s", path);
        goto out;
    }
    sha256_hex(sql, sum);
    const char *p1[] = {ver};
    res = PQexecParams(c, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, NULL, p1,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "migration_failed",
                        "could not read schema_migrations");
        goto out;
    }
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), sum) != 0)
            ct_log_warn("migration %s was edited after it was applied (checksum differs)", m->name);
        goto out;
    }
    PQclear(res);
    res = NULL;
    rc = exec_ok(c, "BEGIN", err, "begin a migration");
    if (rc != CT_OK)
        goto out;
    rc = exec_ok(c, sql, err, m->name);
    if (rc != CT_OK) {
        struct ct_err ignore;
        exec_ok(c, "ROLLBACK", &ignore, "roll back");
        goto out;
    }
    const char *p3[] = {ver, m->name, sum};
    res = PQexecParams(
        c, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3, NULL,
        p3, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        struct ct_err ignore;
        exec_ok(c, "ROLLBACK", &ignore, "roll back");
        rc = ct_err_set(err, CT_E_INTERNAL, "migration_failed", "could not record %s", m->name);
        goto out;
    }
    rc = exec_ok(c, "COMMIT", err, "commit a migration");
    if (rc != CT_OK)
        goto out;
    ct_log_info("applied migration %s", m->name);
    (*applied)++;
out:
    PQclear(res);
    free(sql);
    return rc;
}

ct_rc ct_store_migrate(const char *database_url, const char *dir, int *applied_out,
                       struct ct_err *err)
{
    struct mig *v = NULL;
    PGconn *c = NULL;
    int n, applied = 0;
    ct_rc rc = CT_OK;

    n = list_migrations(dir, &v);
    if (n <= 0) {
        rc = ct_err_set(err, CT_E_INTERNAL, "migration_failed",
                        "no migrations found in \"%s\" (set CASETRAIL_MIGRATIONS_DIR)", dir);
        goto out;
    }
    c = ct_store_connect(database_url);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        char msg[240];
        snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        rc = ct_err_set(err, CT_E_UNAVAILABLE, "database_unavailable",
                        "could not connect to the database: %s", msg);
        goto out;
    }
    /* quiet the NOTICEs of CREATE ... IF NOT EXISTS */
    rc = exec_ok(c, "SET client_min_messages = warning", err, "configure");
    if (rc != CT_OK)
        goto out;
    rc = exec_ok(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, "lock");
    if (rc != CT_OK)
        goto out;
    /* only create what is missing: a least-privilege role (no CREATE on the schema) can then
     * start `serve` against a database its owner already migrated */
    {
        PGresult *res = PQexec(c, "SELECT to_regclass('schema_migrations') IS NULL");
        bool missing =
            PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (missing)
            rc = exec_ok(c,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                         " applied_at timestamptz NOT NULL DEFAULT now())",
                         err, "create schema_migrations");
    }
    for (int i = 0; rc == CT_OK && i < n; i++)
        rc = apply_one(c, dir, &v[i], &applied, err);
    {
        struct ct_err ignore;
        exec_ok(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", &ignore, "unlock");
    }
out:
    if (c != NULL)
        PQfinish(c);
    free(v);
    if (applied_out != NULL)
        *applied_out = applied;
    return rc;
}

ct_rc ct_store_schema_version(struct ct_tx *tx, int *version, struct ct_err *err)
{
    /* two statements: a single one naming a missing table would fail at parse time */
    PGresult *res = ct_tx_exec(tx, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                               err);
    if (res == NULL)
        return err->rc;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) {
        *version = -1;
        return CT_OK;
    }
    res = ct_tx_exec(tx, "SELECT coalesce(max(version), -1) FROM schema_migrations", 0, NULL, err);
    if (res == NULL)
        return err->rc;
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_durable(struct ct_tx *tx, bool *durable, struct ct_err *err)
{
    PGresult *res = ct_tx_exec(tx, "SELECT current_setting('synchronous_commit')", 0, NULL, err);
    if (res == NULL)
        return err->rc;
    /* every value but off (local, on, remote_write, remote_apply) flushes the local WAL before
     * COMMIT returns */
    *durable = strcmp(PQgetvalue(res, 0, 0), "off") != 0;
    PQclear(res);
    return CT_OK;
}
