/* cli.c: `casetrail COMMAND ...`. Each command is one row in a table; usage errors print a
 * clear message and exit 2, runtime failures exit 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "casetrail/audit.h"
#include "casetrail/cli.h"
#include "casetrail/config.h"
#include "casetrail/json.h"
#include "casetrail/server.h"
#include "casetrail/store.h"
#include "casetrail/users.h"
#include "casetrail/verify.h"

#define EXIT_USAGE 2

struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command (or sub-command) name */
    const char *usage;
    const char *help;
};

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "casetrail: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: %s\n", usage);
    return EXIT_USAGE;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

/* Loads the configuration or prints why not (naming the variable). */
static bool load_config(struct ct_config *cfg)
{
    struct ct_err err;
    if (ct_config_load(cfg, NULL, NULL, &err) != CT_OK) {
        fprintf(stderr, "casetrail: %s\n", err.message);
        return false;
    }
    ct_log_set_level(cfg->log_level);
    return true;
}

static int cmd_serve(int argc, char **argv)
{
    struct ct_config cfg;
    if (argc > 1)
        return usage_error("casetrail serve", "unrecognized argument \"%s\"", argv[1]);
    if (!load_config(&cfg))
        return 1;
    return ct_server_run(&cfg);
}

static int cmd_migrate(int argc, char **argv)
{
    struct ct_config cfg;
    struct ct_err err;
    int applied = 0;
    if (argc > 1)
        return usage_error("casetrail migrate", "unrecognized argument \"%s\"", argv[1]);
    if (!load_config(&cfg))
        return 1;
    ct_rc rc = ct_store_migrate(cfg.database_url, cfg.migrations_dir, &applied, &err);
    ct_config_free(&cfg);
    if (rc != CT_OK) {
        fprintf(stderr, "casetrail: %s\n", err.message);
        return 1;
    }
    printf("migrations applied: %d\n", applied);
    return 0;
}

/* Runs fn with a one-connection pool built from the environment. */
static int with_pool(int (*fn)(struct ct_pool *pool, void *arg), void *arg)
{
    struct ct_config cfg;
    struct ct_pool *pool;
    int code;
    if (!load_config(&cfg))
        return 1;
    pool = ct_pool_new(cfg.database_url, 1);
    if (pool != NULL)
        ct_pool_set_prepare(pool, cfg.db_prepare);
    ct_config_free(&cfg);
    if (pool == NULL) {
        fprintf(stderr, "casetrail: out of memory\n");
        return 1;
    }
    code = fn(pool, arg);
    ct_pool_free(pool);
    return code;
}

static int report(ct_rc rc, const struct ct_err *err)
{
    if (rc == CT_OK)
        return 0;
    fprintf(stderr, "casetrail: %s\n", err->message);
    return 1;
}

struct user_args {
    const char *name;
    enum ct_role role;
    long long limit;
    bool json;
};

static int do_user_add(struct ct_pool *pool, void *arg)
{
    struct user_args *a = arg;
    struct ct_err err;
    char token[CT_TOKEN_LEN + 1];
    ct_rc rc = ct_users_add(pool, &CT_ACTOR_CLI, a->name, a->role, a->limit, token, &err);
    if (rc != CT_OK)
        return report(rc, &err);
    fprintf(stderr, "created %s %s; its API token follows and is shown only this once:\n",
            ct_role_name(a->role), a->name);
    printf("%s\n", token); /* alone on the last line: docs/DECISIONS.md#tokens-and-cli-output */
    fflush(stdout);
    memset(token, 0, sizeof(token));
    return 0;
}

static bool parse_limit(const char *s, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 999999999999999LL)
        return false;
    *out = v;
    return true;
}

#define USAGE_ADD                                                                                  \
    "casetrail user add NAME --role agent|supervisor|qa|admin [--approval-limit AMOUNT_MINOR]"

static int cmd_user_add(int argc, char **argv)
{
    struct user_args a = {NULL, CT_ROLE_NONE, -1, false};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            a.role = ct_role_parse(argv[++i]);
            if (a.role == CT_ROLE_NONE)
                return usage_error(USAGE_ADD,
                                   "invalid role \"%s\": expected agent, supervisor, qa or admin",
                                   argv[i]);
        } else if (strcmp(argv[i], "--approval-limit") == 0 && i + 1 < argc) {
            if (!parse_limit(argv[++i], &a.limit))
                return usage_error(
                    USAGE_ADD,
                    "invalid approval limit \"%s\": expected a non-negative integer in minor units",
                    argv[i]);
        } else if (argv[i][0] == '-') {
            return usage_error(USAGE_ADD, "unrecognized option \"%s\" (or missing value)", argv[i]);
        } else if (a.name == NULL) {
            a.name = argv[i];
        } else {
            return usage_error(USAGE_ADD, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (a.name == NULL)
        return usage_error(USAGE_ADD, "%s", "missing NAME");
    if (a.role == CT_ROLE_NONE)
        return usage_error(USAGE_ADD, "%s", "missing --role");
    if (!ct_users_name_valid(a.name))
        return usage_error(
            USAGE_ADD,
            "invalid user name \"%s\": use 1 to 64 letters, digits, '.', '_', '@' or '-'", a.name);
    return with_pool(do_user_add, &a);
}

static ct_rc list_users(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct user_args *a = arg;
    struct ct_user *u = NULL;
    size_t n = 0;
    ct_rc rc = ct_store_user_list(tx, &u, &n, err);
    if (rc != CT_OK)
        return rc;
    if (a->json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"name\":\"%s\",\"role\":\"%s\",\"active\":%s,\"approval_limit_minor\":",
                   i ? "," : "", u[i].name, ct_role_name(u[i].role),
                   u[i].active ? "true" : "false");
            if (u[i].has_limit)
                printf("%lld", u[i].approval_limit_minor);
            else
                printf("null");
            printf(",\"created_at\":\"%s\"}", u[i].created_at);
        }
        printf("]\n");
    } else {
        printf("%-24s %-10s %-8s %-14s %s\n", "NAME", "ROLE", "ACTIVE", "LIMIT", "CREATED");
        for (size_t i = 0; i < n; i++) {
            char limit[32] = "-";
            if (u[i].has_limit)
                snprintf(limit, sizeof(limit), "%lld", u[i].approval_limit_minor);
            printf("%-24s %-10s %-8s %-14s %s\n", u[i].name, ct_role_name(u[i].role),
                   u[i].active ? "yes" : "no", limit, u[i].created_at);
        }
    }
    free(u);
    return CT_OK;
}

static int do_user_list(struct ct_pool *pool, void *arg)
{
    struct ct_err err;
    return report(ct_store_with_conn(pool, list_users, arg, &err), &err);
}

static int cmd_user_list(int argc, char **argv)
{
    struct user_args a = {NULL, CT_ROLE_NONE, -1, false};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            a.json = true;
        else
            return usage_error("casetrail user list [--json]", "unrecognized argument \"%s\"",
                               argv[i]);
    }
    return with_pool(do_user_list, &a);
}

static int do_set_role(struct ct_pool *pool, void *arg)
{
    struct user_args *a = arg;
    struct ct_err err;
    ct_rc rc = ct_users_set_role(pool, &CT_ACTOR_CLI, a->name, a->role, &err);
    if (rc == CT_OK)
        fprintf(stderr, "%s is now %s\n", a->name, ct_role_name(a->role));
    return report(rc, &err);
}

static int cmd_user_set_role(int argc, char **argv)
{
    const char *usage = "casetrail user set-role NAME agent|supervisor|qa|admin";
    struct user_args a = {NULL, CT_ROLE_NONE, -1, false};
    if (argc != 3)
        return usage_error(usage, "%s", "expected NAME and ROLE");
    a.name = argv[1];
    a.role = ct_role_parse(argv[2]);
    if (a.role == CT_ROLE_NONE)
        return usage_error(usage, "invalid role \"%s\": expected agent, supervisor, qa or admin",
                           argv[2]);
    return with_pool(do_set_role, &a);
}

static int do_deactivate(struct ct_pool *pool, void *arg)
{
    struct user_args *a = arg;
    struct ct_err err;
    ct_rc rc = ct_users_deactivate(pool, &CT_ACTOR_CLI, a->name, &err);
    if (rc == CT_OK)
        fprintf(stderr, "%s is deactivated; its token no longer works\n", a->name);
    return report(rc, &err);
}

static int cmd_user_deactivate(int argc, char **argv)
{
    struct user_args a = {NULL, CT_ROLE_NONE, -1, false};
    if (argc != 2)
        return usage_error("casetrail user deactivate NAME", "%s", "expected exactly one NAME");
    a.name = argv[1];
    return with_pool(do_deactivate, &a);
}

static int do_rotate(struct ct_pool *pool, void *arg)
{
    struct user_args *a = arg;
    struct ct_err err;
    char token[CT_TOKEN_LEN + 1];
    ct_rc rc = ct_users_rotate_token(pool, &CT_ACTOR_CLI, a->name, token, &err);
    if (rc != CT_OK)
        return report(rc, &err);
    fprintf(stderr, "new API token for %s (the old one stopped working):\n", a->name);
    printf("%s\n", token);
    fflush(stdout);
    memset(token, 0, sizeof(token));
    return 0;
}

static int cmd_user_rotate(int argc, char **argv)
{
    struct user_args a = {NULL, CT_ROLE_NONE, -1, false};
    if (argc != 2)
        return usage_error("casetrail user rotate-token NAME", "%s", "expected exactly one NAME");
    a.name = argv[1];
    return with_pool(do_rotate, &a);
}

struct password_args {
    const char *name;
    char *password;
    size_t len;
};

static int do_set_password(struct ct_pool *pool, void *arg)
{
    struct password_args *a = arg;
    struct ct_err err;
    ct_rc rc = ct_users_set_password(pool, &CT_ACTOR_CLI, a->name, a->password, a->len, &err);
    if (rc == CT_OK)
        fprintf(stderr, "password set for %s; their earlier sessions ended\n", a->name);
    return report(rc, &err);
}

/* Reads the password from stdin, never argv (which other users can read in ps): the first
 * line, without its line ending. An interactive terminal gets a prompt. */
static int cmd_user_set_password(int argc, char **argv)
{
    static const char usage[] = "casetrail user set-password NAME  (password on stdin)";
    struct password_args a = {NULL, NULL, 0};
    char buf[CT_PASSWORD_MAX + 4];
    int code;

    if (argc != 2)
        return usage_error(usage, "%s", "expected exactly one NAME");
    a.name = argv[1];
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "new password for %s (%d to %d characters), then Enter: ", a.name,
                CT_PASSWORD_MIN, CT_PASSWORD_MAX);
    size_t n = fread(buf, 1, sizeof(buf) - 1, stdin);
    buf[n] = '\0';
    char *nl = memchr(buf, '\n', n);
    if (nl == NULL && n == sizeof(buf) - 1) {
        OPENSSL_cleanse(buf, sizeof(buf));
        _Static_assert(CT_PASSWORD_MAX == 1024, "the message names the limit");
        return usage_error(usage, "%s", "the password is longer than 1024 bytes");
    }
    a.len = nl != NULL ? (size_t)(nl - buf) : n;
    if (a.len > 0 && buf[a.len - 1] == '\r')
        a.len--;
    a.password = buf;
    code = with_pool(do_set_password, &a);
    OPENSSL_cleanse(buf, sizeof(buf));
    return code;
}

static const struct command user_commands[] = {
    {"add", cmd_user_add, USAGE_ADD,
     "Creates a user and prints its API token once, alone on the last line of stdout."},
    {"list", cmd_user_list, "casetrail user list [--json]", "Lists users (never their tokens)."},
    {"set-role", cmd_user_set_role, "casetrail user set-role NAME agent|supervisor|qa|admin",
     "Changes a user's role; recorded as a user.role_changed event."},
    {"deactivate", cmd_user_deactivate, "casetrail user deactivate NAME",
     "Deactivates a user; its token stops working at once."},
    {"set-password", cmd_user_set_password, "casetrail user set-password NAME",
     "Sets the password NAME signs in to the viewer with, read from stdin (first line); ends "
     "their sessions; recorded as a user.password_set event."},
    {"rotate-token", cmd_user_rotate, "casetrail user rotate-token NAME",
     "Replaces a user's token and prints the new one alone on the last line of stdout."},
};

static void print_table(const struct command *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(stdout, "  %s\n      %s\n", t[i].usage, t[i].help);
}

static int run_table(const struct command *t, size_t n, const char *what, int argc, char **argv)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[0], t[i].name) != 0)
            continue;
        if (wants_help(argc, argv)) {
            printf("usage: %s\n\n%s\n", t[i].usage, t[i].help);
            return 0;
        }
        return t[i].run(argc, argv);
    }
    fprintf(stderr, "casetrail: unrecognized %s \"%s\" (see casetrail --help)\n", what, argv[0]);
    return EXIT_USAGE;
}

static int cmd_user(int argc, char **argv)
{
    size_t n = sizeof(user_commands) / sizeof(user_commands[0]);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: casetrail user SUBCOMMAND ...\n\n");
        print_table(user_commands, n);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    return run_table(user_commands, n, "user subcommand", argc - 1, argv + 1);
}

/* ---- verify and digest ---- */

struct audit_args {
    const char *digest_arg;   /* --digest value, or NULL */
    const char *signing_key;  /* CASETRAIL_SIGNING_KEY */
    const char *verify_key;   /* CASETRAIL_VERIFY_KEY, else the signing key */
};

struct list_job {
    char (*kinds)[8];
    long long *ids;
    size_t n;
};

static ct_rc list_chains_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct list_job *j = arg;
    return ct_store_chain_list(tx, &j->kinds, &j->ids, &j->n, err);
}

struct digest_job {
    struct ct_digest d;
    const char *signing_key; /* digest: sign with it when set */
    long long events, chains;
    char root[65];
};

/* Computes, signs and keeps the digest in one transaction, so a digest that is printed is
 * also stored (and one that failed to sign is neither). */
static ct_rc digest_now_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct digest_job *j = arg;
    char reason[300];
    ct_rc rc = ct_store_digest_now(tx, &j->d, err);
    if (rc != CT_OK)
        return rc;
    if (j->signing_key != NULL &&
        !ct_audit_digest_sign(&j->d, j->signing_key, reason, sizeof(reason)))
        return ct_err_set(err, CT_E_INTERNAL, "signing_failed", "%s (CASETRAIL_SIGNING_KEY)",
                          reason);
    return ct_store_digest_save(tx, &j->d, err);
}

static ct_rc digest_at_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct digest_job *j = arg;
    return ct_store_digest_at(tx, j->d.upto_id, j->d.version, &j->events, &j->chains, j->root,
                              err);
}

/* Reads --digest: the JSON line itself, or @FILE / FILE holding it. Caller frees. */
static char *digest_text(const char *arg)
{
    const char *path = arg[0] == '@' ? arg + 1 : arg;
    char buf[2048];
    FILE *f;
    if (arg[0] == '{')
        return strdup(arg);
    f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Checks the digest against the stored events; prints a FAIL line and returns false on any
 * mismatch. */
static bool check_digest(struct ct_pool *pool, const struct audit_args *a)
{
    struct digest_job j;
    struct ct_err err;
    char reason[300];
    char *text = digest_text(a->digest_arg);
    const char *key = a->verify_key ? a->verify_key : a->signing_key;
    bool ok;

    memset(&j, 0, sizeof(j));
    if (text == NULL) {
        printf("FAIL digest: could not read %s\n", a->digest_arg);
        return false;
    }
    ok = ct_audit_digest_parse(text, &j.d, reason, sizeof(reason));
    free(text);
    if (!ok) {
        printf("FAIL digest: %s\n", reason);
        return false;
    }
    if (key != NULL && !ct_audit_digest_check(&j.d, key, reason, sizeof(reason))) {
        printf("FAIL digest: %s\n", reason);
        return false;
    }
    if (key == NULL && j.d.signature[0] != '\0')
        fprintf(stderr, "casetrail: the digest is signed but no key is set "
                        "(CASETRAIL_VERIFY_KEY): its signature was not checked\n");
    if (ct_store_in_tx(pool, digest_at_tx, &j, &err) != CT_OK) {
        printf("FAIL digest: %s\n", err.message);
        return false;
    }
    if (j.events != j.d.events || strcmp(j.root, j.d.root) != 0 ||
        (j.d.version == 2 && j.chains != j.d.chains)) {
        printf("FAIL digest: records from before %s were altered or removed "
               "(digest: %lld events, root %.16s...; now: %lld events, root %.16s...)\n",
               j.d.time, j.d.events, j.d.root, j.events, j.root);
        return false;
    }
    printf("digest of %s: %lld events unchanged%s\n", j.d.time, j.events,
           key != NULL ? ", signature valid" : "");
    return true;
}

static int do_verify(struct ct_pool *pool, void *arg)
{
    const struct audit_args *a = arg;
    struct list_job l = {0};
    struct ct_err err;
    long long events = 0, redacted = 0, failures = 0;
    bool digest_ok = true;

    if (ct_store_with_conn(pool, list_chains_tx, &l, &err) != CT_OK) {
        fprintf(stderr, "casetrail: %s\n", err.message);
        free(l.kinds);
        free(l.ids);
        return 1;
    }
    for (size_t i = 0; i < l.n; i++) {
        struct ct_verify_result r;
        if (ct_verify_chain(pool, l.kinds[i], l.ids[i], &r, &err) != CT_OK) {
            printf("FAIL %s %lld: %s\n", l.kinds[i], l.ids[i], err.message);
            failures++;
            continue;
        }
        events += r.events;
        redacted += r.redacted;
        if (!r.ok) {
            printf("FAIL %s %lld seq %lld: %s\n", l.kinds[i], l.ids[i], r.first_bad_seq,
                   r.reason);
            failures++;
        }
    }
    if (a->digest_arg != NULL) {
        digest_ok = check_digest(pool, a);
        if (!digest_ok)
            failures++;
    }
    printf("{\"ok\":%s,\"chains\":%zu,\"events\":%lld,\"redacted\":%lld,\"failures\":%lld}\n",
           failures == 0 ? "true" : "false", l.n, events, redacted, failures);
    free(l.kinds);
    free(l.ids);
    return failures == 0 ? 0 : 1;
}

/* Runs fn with a pool and the audit key settings from the environment. */
static int with_audit(int (*fn)(struct ct_pool *, void *), struct audit_args *a)
{
    struct ct_config cfg;
    struct ct_pool *pool;
    int code;
    if (!load_config(&cfg))
        return 1;
    a->signing_key = cfg.signing_key;
    a->verify_key = cfg.verify_key;
    pool = ct_pool_new(cfg.database_url, 1);
    if (pool != NULL)
        ct_pool_set_prepare(pool, cfg.db_prepare);
    code = pool != NULL ? fn(pool, a) : 1;
    ct_pool_free(pool);
    ct_config_free(&cfg);
    return code;
}

#define USAGE_VERIFY "casetrail verify [--digest DIGEST_JSON|@FILE]"

static int cmd_verify(int argc, char **argv)
{
    struct audit_args a = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--digest") == 0 && i + 1 < argc)
            a.digest_arg = argv[++i];
        else
            return usage_error(USAGE_VERIFY, "unrecognized argument \"%s\"", argv[i]);
    }
    return with_audit(do_verify, &a);
}

static int do_digest(struct ct_pool *pool, void *arg)
{
    const struct audit_args *a = arg;
    struct digest_job j;
    struct ct_err err;
    char *line;

    memset(&j, 0, sizeof(j));
    j.signing_key = a->signing_key;
    if (ct_store_in_tx(pool, digest_now_tx, &j, &err) != CT_OK) {
        fprintf(stderr, "casetrail: %s\n", err.message);
        return 1;
    }
    line = ct_audit_digest_json(&j.d);
    if (line == NULL)
        return 1;
    printf("%s\n", line);
    free(line);
    return 0;
}

static int cmd_digest(int argc, char **argv)
{
    struct audit_args a = {0};
    if (argc > 1)
        return usage_error("casetrail digest", "unrecognized argument \"%s\"", argv[1]);
    return with_audit(do_digest, &a);
}

#define USAGE_BUNDLE "casetrail verify-bundle FILE [--app-secret-file FILE] [--verify-key PEM]"
#define BUNDLE_MAX (1024L * 1024 * 1024)

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer (caller frees). */
static char *read_file(const char *path, long max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n <= max && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) != NULL) {
            *len = fread(buf, 1, (size_t)n, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Checks an evidence bundle offline: no database, no configuration. */
static int cmd_verify_bundle(int argc, char **argv)
{
    const char *path = NULL, *secret_path = NULL, *key_path = NULL;
    char *body = NULL, *secret = NULL, why[320];
    size_t len = 0, slen = 0;
    struct ct_bundle_counts n;
    struct ct_err err;
    cJSON *b = NULL;
    int code = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--app-secret-file") == 0 && i + 1 < argc)
            secret_path = argv[++i];
        else if (strcmp(argv[i], "--verify-key") == 0 && i + 1 < argc)
            key_path = argv[++i];
        else if (argv[i][0] != '-' && path == NULL)
            path = argv[i];
        else
            return usage_error(USAGE_BUNDLE, "unrecognized argument \"%s\"", argv[i]);
    }
    if (path == NULL)
        return usage_error(USAGE_BUNDLE, "%s", "expected the bundle's FILE");
    if (secret_path != NULL) {
        secret = read_file(secret_path, 4096, &slen);
        if (secret == NULL) {
            fprintf(stderr, "casetrail: cannot read the app secret from %s\n", secret_path);
            return 1;
        }
        secret[strcspn(secret, "\r\n")] = '\0'; /* the first line, without its ending */
    }
    body = read_file(path, BUNDLE_MAX, &len);
    if (body == NULL) {
        fprintf(stderr, "casetrail: cannot read %s (missing, or larger than 1 GiB)\n", path);
        goto out;
    }
    /* strict: a bundle with two readings (duplicate keys) is not evidence */
    b = ct_json_parse_strict(body, len, CT_JSON_DEPTH_WEBHOOK, &err);
    if (b == NULL) {
        printf("BAD bundle: %s\n", err.message);
        goto out;
    }
    if (!ct_audit_check_bundle(b, secret, key_path, &n, why, sizeof(why))) {
        printf("BAD %s\n", why);
        goto out;
    }
    printf("ok %zu events, %zu texts, %zu receipts%s\n", n.events, n.texts, n.receipts,
           secret != NULL ? ", signatures checked" : " (signatures not checked: no app secret)");
    if (n.digest_seq > 0)
        printf("digest of %s covers seq 1..%lld%s\n", n.digest_time, n.digest_seq,
               n.digest_signed ? ", signature valid"
                               : " (its signature not checked: no --verify-key)");
    else
        printf("no signed digest covers this ticket yet\n");
    code = 0;
out:
    cJSON_Delete(b);
    free(body);
    if (secret != NULL)
        OPENSSL_cleanse(secret, slen);
    free(secret);
    return code;
}

static const struct command commands[] = {
    {"serve", cmd_serve, "casetrail serve",
     "Applies pending migrations, then serves HTTP on CASETRAIL_LISTEN until SIGTERM/SIGINT."},
    {"migrate", cmd_migrate, "casetrail migrate",
     "Applies pending migrations from CASETRAIL_MIGRATIONS_DIR (idempotent)."},
    {"user", cmd_user, "casetrail user add|list|set-role|deactivate|rotate-token ...",
     "Manages staff users and their API tokens (casetrail user --help)."},
    {"verify", cmd_verify, USAGE_VERIFY,
     "Recomputes every hash chain and text digest; prints FAIL lines naming ticket (or user) and\n"
     "      seq, then a JSON summary; exits 1 on any break. With --digest, also proves that\n"
     "      nothing recorded before that digest was altered or removed."},
    {"verify-bundle", cmd_verify_bundle, USAGE_BUNDLE,
     "Checks an evidence bundle (GET /api/tickets/{id}/evidence) offline, with no database:\n"
     "      every hash and link, text digest, raw receipt SHA-256 and, with the app secret, its\n"
     "      X-Hub-Signature-256; the signed digest's inclusion proof and, with --verify-key (the\n"
     "      Ed25519 public key PEM), its signature. Prints ok, or BAD naming the first bad item\n"
     "      and exits 1."},
    {"digest", cmd_digest, "casetrail digest",
     "Prints one JSON line (time, event and chain counts, Merkle root over all chain heads),\n"
     "      signed with CASETRAIL_SIGNING_KEY (Ed25519 PEM) when set, and keeps it in the\n"
     "      digests table for evidence bundles. Keep the line outside the database too."},
};

static void print_help(void)
{
    printf("casetrail: WhatsApp-first ticketing with a tamper-evident audit trail\n\n"
           "usage: casetrail COMMAND [ARGS]\n\ncommands:\n");
    print_table(commands, sizeof(commands) / sizeof(commands[0]));
    printf("\nConfiguration comes from the environment (DATABASE_URL, CASETRAIL_*, WHATSAPP_*);"
           " see README.md.\n");
}

int ct_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return 0;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "casetrail: unrecognized option \"%s\" (see casetrail --help)\n", argv[1]);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "user") == 0)
        return cmd_user(argc - 1, argv + 1);
    return run_table(commands, sizeof(commands) / sizeof(commands[0]), "command", argc - 1,
                     argv + 1);
}
